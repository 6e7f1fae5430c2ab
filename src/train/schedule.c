/* schedule.c — see schedule.h. */
#include "train/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

int swax_window_schedule_parse(SwaxWindowSchedule *s, const char *text) {
    memset(s, 0, sizeof *s);
    s->anneal = 0.1;
    s->mode = SWAX_ANNEAL_LINEAR;
    const char *p = text;
    int any_prob = 0;
    while (*p) {
        if (s->n == SWAX_MAX_WINDOWS) return swax_error(SWAX_E_USAGE, "windows: at most %d", SWAX_MAX_WINDOWS);
        char *end;
        long w = strtol(p, &end, 10);
        if (end == p || w < 1 || w > (1L << 30))
            return swax_error(SWAX_E_USAGE, "windows '%s': expected WINDOW[:PROB],... with windows >= 1", text);
        s->windows[s->n] = (int)w;
        s->probs[s->n] = -1;
        p = end;
        if (*p == ':') {
            double q = strtod(p + 1, &end);
            if (end == p + 1 || !(q >= 0) || q > 1)
                return swax_error(SWAX_E_USAGE, "windows '%s': probabilities must be in [0, 1]", text);
            s->probs[s->n] = q;
            any_prob = 1;
            p = end;
        }
        s->n++;
        if (*p == ',') p++;
        else if (*p) return swax_error(SWAX_E_USAGE, "windows '%s': unexpected '%c'", text, *p);
    }
    if (s->n == 0) return swax_error(SWAX_E_USAGE, "windows: empty list");
    for (int i = 0; i < s->n; i++) {
        if (any_prob && s->probs[i] < 0)
            return swax_error(SWAX_E_USAGE, "windows '%s': give a probability for every window or none", text);
        if (!any_prob) s->probs[i] = 1.0 / s->n;
    }
    return swax_window_schedule_validate(s);
}

int swax_window_schedule_validate(const SwaxWindowSchedule *s) {
    double sum = 0;
    for (int i = 0; i < s->n; i++) sum += s->probs[i];
    if (s->n < 1 || fabs(sum - 1.0) > 1e-6)
        return swax_error(SWAX_E_USAGE, "windows: probabilities sum to %g, not 1", sum);
    if (!(s->anneal >= 0 && s->anneal <= 1)) return swax_error(SWAX_E_USAGE, "anneal fraction must be in [0, 1]");
    return 0;
}

int swax_window_schedule_largest(const SwaxWindowSchedule *s) {
    int w = 0;
    for (int i = 0; i < s->n; i++)
        if (s->windows[i] > w) w = s->windows[i];
    return w;
}

void swax_window_probs_at(const SwaxWindowSchedule *s, long step, long total, double *probs) {
    const int big = swax_window_schedule_largest(s);
    const double start = (double)total * (1.0 - s->anneal);
    double keep = 1.0; /* factor on the short windows' probabilities */
    if (s->anneal > 0 && step >= start) {
        if (s->mode == SWAX_ANNEAL_SWITCH) keep = 0.0;
        else keep = 1.0 - ((double)step - start + 1.0) / ((double)total - start);
        if (keep < 0) keep = 0;
    }
    double rest = 0;
    int nbig = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->windows[i] == big) {
            nbig++;
            probs[i] = 0;
        } else {
            probs[i] = s->probs[i] * keep;
            rest += probs[i];
        }
    }
    for (int i = 0; i < s->n; i++)
        if (s->windows[i] == big) probs[i] = (1.0 - rest) / nbig;
}

int swax_window_at(const SwaxWindowSchedule *s, uint64_t seed, long step, long total) {
    double probs[SWAX_MAX_WINDOWS];
    swax_window_probs_at(s, step, total, probs);
    SwaxRng r;
    swax_rng_seed(&r, seed ^ 0x57494E444F57ull /* "WINDOW" */, (uint64_t)step);
    const double u = swax_rng_uniform(&r);
    double acc = 0;
    for (int i = 0; i < s->n; i++) {
        acc += probs[i];
        if (u < acc) return s->windows[i];
    }
    return swax_window_schedule_largest(s);
}

void swax_window_schedule_format(const SwaxWindowSchedule *s, char *buf, int cap) {
    int n = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n && n < cap; i++)
        n += snprintf(buf + n, (size_t)(cap - n), "%s%d:%.3g", i ? "," : "", s->windows[i], s->probs[i]);
    if (n < cap)
        snprintf(buf + n, (size_t)(cap - n), " (anneal %.3g %s)", s->anneal,
                 s->mode == SWAX_ANNEAL_SWITCH ? "switch" : "linear");
}

double swax_lr_at(long step, long total, long warmup, double lr, double min_lr) {
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    if (total <= warmup) return lr;
    double prog = (double)(step - warmup) / (double)(total - warmup);
    if (prog > 1) prog = 1;
    return min_lr + 0.5 * (lr - min_lr) * (1.0 + cos(M_PI * prog));
}
