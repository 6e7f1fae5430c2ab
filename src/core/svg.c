/* svg.c — see svg.h. */
#include "core/svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

typedef struct {
    char *buf;
    size_t len, cap;
} Sb;

static void sb_printf(Sb *s, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && s->len + (size_t)n < s->cap) {
            s->len += (size_t)n;
            return;
        }
        s->cap = (s->cap + (size_t)(n > 0 ? n : 0) + 1) * 2;
        s->buf = realloc(s->buf, s->cap);
        SWAX_ASSERT(s->buf);
    }
}

static double nice_step(double range, int target) {
    double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

int swax_svg_line_chart(const char *path, const char *title, const char *xlabel, const char *ylabel,
                        const SwaxSvgSeries *series, int nseries) {
    const double W = 720, H = 420, L = 70, R = 160, Tp = 40, B = 50;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            x0 = fmin(x0, x), x1 = fmax(x1, x), y0 = fmin(y0, y), y1 = fmax(y1, y);
        }
    if (!isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (x1 <= x0) x1 = x0 + 1;
    if (y1 <= y0) y1 = y0 + 1;
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
    Sb sb = {malloc(4096), 0, 4096};
    SWAX_ASSERT(sb.buf);
#define PX(x) (L + ((x) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (Tp + (1 - ((y) - y0) / (y1 - y0)) * (H - Tp - B))
    sb_printf(&sb,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" "
              "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
              W, H);
    sb_printf(&sb, "<text x=\"%g\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">%s</text>\n", (W - R + L) / 2,
              title);
    /* grid and ticks */
    double ys = nice_step(y1 - y0, 6), xs = nice_step(x1 - x0, 8);
    for (double y = ceil(y0 / ys) * ys; y <= y1; y += ys)
        sb_printf(&sb,
                  "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%g\" y=\"%.1f\" "
                  "text-anchor=\"end\">%g</text>\n",
                  L, PY(y), W - R, PY(y), L - 6, PY(y) + 4, fabs(y) < 1e-12 ? 0 : y);
    for (double x = ceil(x0 / xs) * xs; x <= x1; x += xs)
        sb_printf(&sb,
                  "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#eee\"/><text x=\"%.1f\" y=\"%g\" "
                  "text-anchor=\"middle\">%g</text>\n",
                  PX(x), Tp, PX(x), H - B, PX(x), H - B + 16, x);
    sb_printf(&sb, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n", L, Tp,
              W - L - R, H - Tp - B);
    sb_printf(&sb, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", (W - R + L) / 2, H - 12, xlabel);
    sb_printf(&sb, "<text transform=\"translate(16,%g) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
              (H - B + Tp) / 2, ylabel);
    for (int s = 0; s < nseries; s++) {
        const SwaxSvgSeries *se = &series[s];
        const char *col = se->color ? se->color : "#1f77b4";
        if (se->points) {
            for (size_t i = 0; i < se->n; i++)
                if (isfinite(se->x[i]) && isfinite(se->y[i]))
                    sb_printf(&sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(se->x[i]),
                              PY(se->y[i]), col);
        } else {
            sb_printf(&sb, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
            for (size_t i = 0; i < se->n; i++)
                if (isfinite(se->x[i]) && isfinite(se->y[i]))
                    sb_printf(&sb, "%.1f,%.1f ", PX(se->x[i]), PY(se->y[i]));
            sb_printf(&sb, "\"/>\n");
        }
        sb_printf(&sb,
                  "<rect x=\"%g\" y=\"%g\" width=\"14\" height=\"4\" fill=\"%s\"/><text x=\"%g\" y=\"%g\">%s</text>\n",
                  W - R + 12, Tp + 10 + 20.0 * s, col, W - R + 32, Tp + 15 + 20.0 * s, se->label);
    }
    sb_printf(&sb, "</svg>\n");
#undef PX
#undef PY
    int rc = swax_write_file_atomic(path, sb.buf, sb.len);
    free(sb.buf);
    return rc;
}
