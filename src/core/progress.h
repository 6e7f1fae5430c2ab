/* progress.h — how often a long command may print progress: at most one line
 * per SWAX_PROGRESS_INTERVAL seconds of wall time, however fast the work goes,
 * plus the first and the final line (which the caller prints regardless).
 * Used by `swax train`, `swax tokenizer train` and the eval/data progress bar
 * (SwaxProgress in eval/eval_util.h). */
#ifndef SWAX_PROGRESS_H
#define SWAX_PROGRESS_H

#define SWAX_PROGRESS_INTERVAL 0.25 /* seconds between progress lines, at least */

typedef struct {
    double last; /* when the last line was printed (swax_time_sec) */
} SwaxThrottle;

/* Starts the clock: the next line is due SWAX_PROGRESS_INTERVAL from now. */
void swax_throttle_start(SwaxThrottle *t);
/* 1 if a line may be printed now (and counts it as printed), else 0. */
int swax_throttle_due(SwaxThrottle *t);
/* A line was printed anyway (the first or final one): restart the interval. */
void swax_throttle_mark(SwaxThrottle *t);

#endif
