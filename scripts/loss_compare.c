/* loss_compare.c — two or more training logs (DIR/log.jsonl) as one SVG chart
 * through the project's svg helper (src/core/svg.h): train loss (a running mean
 * over 20 steps, so curves of noisy small batches can be told apart) and val
 * loss points. Built and run by scripts/gdn_demo.sh:
 *   loss_compare OUT.svg TITLE LABEL1 DIR1 LABEL2 DIR2 ... */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/svg.h"

typedef struct {
    double *x, *y, *vx, *vy, *sx, *sy;
    size_t n, nv;
} Log;

static int read_log(const char *dir, Log *g) {
    char path[4096], line[4096];
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) return fprintf(stderr, "loss_compare: cannot open %s\n", path), 1;
    size_t cap = 1 << 16;
    g->x = malloc(8 * cap), g->y = malloc(8 * cap), g->vx = malloc(8 * cap), g->vy = malloc(8 * cap);
    while (fgets(line, sizeof line, f) && g->n < cap) {
        char *s = strstr(line, "\"step\":"), *l = strstr(line, "\"loss\":"), *v = strstr(line, "\"val_loss\":");
        if (!s) continue;
        if (l) g->x[g->n] = strtod(s + 7, NULL), g->y[g->n++] = strtod(l + 7, NULL);
        if (v) g->vx[g->nv] = strtod(s + 7, NULL), g->vy[g->nv++] = strtod(v + 11, NULL);
    }
    fclose(f);
    g->sx = malloc(8 * (g->n + 1)), g->sy = malloc(8 * (g->n + 1));
    for (size_t i = 0; i < g->n; i++) {
        double s = 0;
        size_t k = 0;
        for (size_t j = i >= 19 ? i - 19 : 0; j <= i; j++) s += g->y[j], k++;
        g->sx[i] = g->x[i], g->sy[i] = s / (double)k;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5 || (argc - 3) % 2) return fprintf(stderr, "usage: loss_compare OUT.svg TITLE LABEL DIR ...\n"), 2;
    const char *colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd"};
    const int k = (argc - 3) / 2;
    if (k > 4) return fprintf(stderr, "loss_compare: at most 4 logs\n"), 2;
    SwaxSvgSeries s[8];
    char labels[8][256];
    Log g[4];
    memset(g, 0, sizeof g);
    int ns = 0;
    for (int i = 0; i < k; i++) {
        if (read_log(argv[4 + 2 * i], &g[i])) return 1;
        snprintf(labels[2 * i], 256, "%s train (20-step mean)", argv[3 + 2 * i]);
        snprintf(labels[2 * i + 1], 256, "%s val", argv[3 + 2 * i]);
        s[ns++] = (SwaxSvgSeries){labels[2 * i], g[i].sx, g[i].sy, g[i].n, colors[i], 0};
        if (g[i].nv) s[ns++] = (SwaxSvgSeries){labels[2 * i + 1], g[i].vx, g[i].vy, g[i].nv, colors[i], 1};
    }
    return swax_svg_line_chart(argv[1], argv[2], "step", "cross-entropy (nats)", s, ns) != 0;
}
