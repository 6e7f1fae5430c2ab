/* gemm_picks.c — see gemm_picks.h. */
#include "ops/gemm_picks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"

int swax_gemm_picks_read(const char *path, int max_index, SwaxGemmPick **out, int *n) {
    *out = NULL, *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return swax_error(SWAX_E_IO, "%s: cannot open: %s", path, strerror(errno));
    SwaxGemmPick *v = NULL;
    int cap = 0, rc = 0, lineno = 0;
    char line[512];
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        const size_t len = strlen(line);
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            rc = swax_error(SWAX_E_INPUT, "%s:%d: line longer than %zu bytes", path, lineno, sizeof line - 2);
            break;
        }
        const char *s = line + strspn(line, " \t");
        if (*s == '#' || *s == '\n' || *s == '\r' || !*s) continue;
        SwaxGemmPick p;
        char out[8] = "f32", extra;
        const int got = sscanf(s, "%d %d %d %d %d %d %d %7s %c", &p.ta, &p.tb, &p.m, &p.n, &p.k, &p.accumulate,
                               &p.index, out, &extra);
        p.out16 = !strcmp(out, "bf16");
        if ((got != 7 && got != 8) || (!p.out16 && strcmp(out, "f32")) || (p.ta | p.tb | p.accumulate) & ~1 ||
            p.m < 1 || p.n < 1 || p.k < 1 || p.index < 0 || p.index > max_index) {
            rc = swax_error(SWAX_E_INPUT,
                            "%s:%d: expected \"ta tb m n k accumulate index [out]\" (ta, tb, accumulate 0 or 1; m, n, "
                            "k >= 1; index 0..%d; out f32 or bf16)",
                            path, lineno, max_index);
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            SwaxGemmPick *t = realloc(v, sizeof *t * (size_t)cap);
            if (!t) {
                rc = swax_error(SWAX_E_NOMEM, "%s: picks", path);
                break;
            }
            v = t;
        }
        v[(*n)++] = p;
    }
    fclose(f);
    if (rc) {
        free(v);
        *n = 0;
        return rc;
    }
    *out = v;
    return 0;
}

int swax_gemm_pick_find(const SwaxGemmPick *picks, int n_picks, int ta, int tb, int m, int n, int k, int accumulate,
                        int out16) {
    for (int i = 0; i < n_picks; i++) {
        const SwaxGemmPick *p = &picks[i];
        if (p->ta == ta && p->tb == tb && p->m == m && p->n == n && p->k == k && p->accumulate == (accumulate != 0) &&
            p->out16 == (out16 != 0))
            return p->index;
    }
    return 0;
}
