/* schedule.h — the stochastic window schedule (SPEC §4, the paper's
 * contribution) and the learning-rate schedule.
 *
 * Window: per optimizer step, draw w from a list of windows with given
 * probabilities, seeded by (seed, step) so every data-parallel rank draws the
 * same w and a resumed run draws what the uninterrupted one did. During the
 * last `anneal` fraction of steps move to the largest window:
 *   linear: the short windows' probabilities fall linearly to 0 over the phase
 *   switch: the largest window only. */
#ifndef SWAX_SCHEDULE_H
#define SWAX_SCHEDULE_H

#include <stdint.h>

#define SWAX_MAX_WINDOWS 16

typedef enum { SWAX_ANNEAL_LINEAR = 0, SWAX_ANNEAL_SWITCH = 1 } SwaxAnnealMode;

typedef struct {
    int n;
    int windows[SWAX_MAX_WINDOWS];
    double probs[SWAX_MAX_WINDOWS];
    double anneal;        /* fraction of steps at the end, in [0, 1] */
    SwaxAnnealMode mode;
} SwaxWindowSchedule;

/* Parses "128:0.5,2048:0.5" (or "128,2048" = equal, or "128" = fixed). */
int swax_window_schedule_parse(SwaxWindowSchedule *s, const char *text);
int swax_window_schedule_validate(const SwaxWindowSchedule *s);
int swax_window_schedule_largest(const SwaxWindowSchedule *s);
/* The probabilities in force at `step` of `total` (anneal applied). */
void swax_window_probs_at(const SwaxWindowSchedule *s, long step, long total, double *probs);
/* The window of `step`. */
int swax_window_at(const SwaxWindowSchedule *s, uint64_t seed, long step, long total);
void swax_window_schedule_format(const SwaxWindowSchedule *s, char *buf, int cap);

/* Linear warm-up from 0 over `warmup` steps, then cosine decay to min_lr at `total`. */
double swax_lr_at(long step, long total, long warmup, double lr, double min_lr);

#endif
