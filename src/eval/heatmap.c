/* heatmap.c — see heatmap.h. */
#include "eval/heatmap.h"

#include <math.h>

#include "eval/eval_util.h"

/* Red → yellow → green, as RULER's pictures. t in [0, 1]. */
static void heat_rgb(double t, int rgb[3]) {
    static const double stops[3][3] = {{215, 48, 39}, {254, 224, 139}, {26, 152, 80}};
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    int k = t < 0.5 ? 0 : 1;
    double u = t < 0.5 ? t * 2 : (t - 0.5) * 2;
    for (int c = 0; c < 3; c++) rgb[c] = (int)lround(stops[k][c] + u * (stops[k + 1][c] - stops[k][c]));
}

/* Text in SVG: &, < and > escaped. */
static void put_text(SwaxStr *s, const char *t) {
    for (; *t; t++) {
        if (*t == '&') swax_str_puts(s, "&amp;");
        else if (*t == '<') swax_str_puts(s, "&lt;");
        else if (*t == '>') swax_str_puts(s, "&gt;");
        else swax_str_append(s, t, 1);
    }
}

int swax_svg_heatmap(const char *path, const char *title, const char *xlabel, const char *ylabel,
                     const char *const *xticks, int nx, const char *const *yticks, int ny, const double *values,
                     double vmin, double vmax) {
    const double L = 90, Tp = 44, cw = nx > 12 ? 48 : 64, ch = ny > 12 ? 22 : 30, bar_w = 16;
    const double pw = cw * nx, ph = ch * ny, W = fmax(L + pw + 110, 520), H = Tp + ph + 60;
    const double span = vmax > vmin ? vmax - vmin : 1;
    SwaxStr s = {0};
    swax_str_printf(&s,
                    "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" font-family=\"sans-serif\" "
                    "font-size=\"12\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
                    W, H);
    swax_str_printf(&s, "<text x=\"%g\" y=\"24\" font-size=\"15\" text-anchor=\"middle\">", W / 2);
    put_text(&s, title);
    swax_str_puts(&s, "</text>\n");
    for (int y = 0; y < ny; y++) {
        for (int x = 0; x < nx; x++) {
            double v = values[(size_t)y * nx + x];
            int rgb[3] = {200, 200, 200};
            if (isfinite(v)) heat_rgb((v - vmin) / span, rgb);
            swax_str_printf(&s,
                            "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"rgb(%d,%d,%d)\" "
                            "stroke=\"white\"/>\n",
                            L + x * cw, Tp + y * ch, cw, ch, rgb[0], rgb[1], rgb[2]);
            if (isfinite(v))
                swax_str_printf(&s, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\" font-size=\"11\">%.0f</text>\n",
                                L + (x + 0.5) * cw, Tp + (y + 0.5) * ch + 4, v);
        }
        swax_str_printf(&s, "<text x=\"%g\" y=\"%g\" text-anchor=\"end\">", L - 6, Tp + (y + 0.5) * ch + 4);
        put_text(&s, yticks[y]);
        swax_str_puts(&s, "</text>\n");
    }
    for (int x = 0; x < nx; x++) {
        swax_str_printf(&s, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", L + (x + 0.5) * cw, Tp + ph + 16);
        put_text(&s, xticks[x]);
        swax_str_puts(&s, "</text>\n");
    }
    swax_str_printf(&s, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n", L, Tp,
                    pw, ph);
    swax_str_printf(&s, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">", L + pw / 2, Tp + ph + 40);
    put_text(&s, xlabel);
    swax_str_printf(&s, "</text>\n<text transform=\"translate(18,%g) rotate(-90)\" text-anchor=\"middle\">",
                    Tp + ph / 2);
    put_text(&s, ylabel);
    swax_str_puts(&s, "</text>\n");
    /* Colour bar: 20 bands from vmax (top) to vmin, five labels. */
    const double bx = L + pw + 24;
    for (int i = 0; i < 20; i++) {
        int rgb[3];
        heat_rgb(1 - (i + 0.5) / 20, rgb);
        swax_str_printf(&s, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"rgb(%d,%d,%d)\"/>\n", bx,
                        Tp + i * ph / 20, bar_w, ph / 20 + 0.5, rgb[0], rgb[1], rgb[2]);
    }
    swax_str_printf(&s, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" stroke=\"#333\"/>\n", bx,
                    Tp, bar_w, ph);
    for (int i = 0; i <= 4; i++)
        swax_str_printf(&s, "<text x=\"%g\" y=\"%g\">%g</text>\n", bx + bar_w + 4, Tp + ph * i / 4 + 4,
                        vmax - span * i / 4);
    swax_str_puts(&s, "</svg>\n");
    int rc = swax_str_write(&s, path);
    swax_str_free(&s);
    return rc;
}
