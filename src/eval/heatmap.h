/* heatmap.h — a hand-written SVG heat-map (NIAH accuracy over length ×
 * depth): coloured cells with their values, tick labels, a colour bar.
 * Line charts live in core/svg.h. */
#ifndef SWAX_EVAL_HEATMAP_H
#define SWAX_EVAL_HEATMAP_H

/* values: (ny, nx) row-major, row 0 drawn at the top; NaN = no data (grey).
 * The colour runs red (vmin) → yellow → green (vmax). Written atomically. */
int swax_svg_heatmap(const char *path, const char *title, const char *xlabel, const char *ylabel,
                     const char *const *xticks, int nx, const char *const *yticks, int ny, const double *values,
                     double vmin, double vmax);

#endif
