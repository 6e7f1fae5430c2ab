/* svg.h — small hand-written SVG line charts (loss curves, loss by position). */
#ifndef SWAX_SVG_H
#define SWAX_SVG_H

#include <stddef.h>

typedef struct {
    const char *label;
    const double *x, *y;
    size_t n;
    const char *color;  /* e.g. "#1f77b4" */
    int points;         /* 1: draw markers instead of a line */
} SwaxSvgSeries;

/* Writes a chart to `path` atomically. NaN/Inf points are skipped. */
int swax_svg_line_chart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                        const SwaxSvgSeries *series, int nseries);

#endif
