/* progress.c — see progress.h. */
#include "core/progress.h"

#include "core/common.h"

void swax_throttle_start(SwaxThrottle *t) { t->last = swax_time_sec(); }

int swax_throttle_due(SwaxThrottle *t) {
    double now = swax_time_sec();
    if (now - t->last < SWAX_PROGRESS_INTERVAL) return 0;
    t->last = now;
    return 1;
}

void swax_throttle_mark(SwaxThrottle *t) { t->last = swax_time_sec(); }
