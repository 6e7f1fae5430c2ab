#!/usr/bin/env bash
# AD beside AM on the demo data (issue 13): the `tiny` preset trained twice with
# the same budget (steps, batch, data, seed, window schedule), once as SWAX
# (pattern AM) and once as SWA + Gated DeltaNet (--set pattern=AD), then both
# loss curves in one chart. Needs the demo's tokenizer and shards (make demo,
# or its steps 1-3). Writes runs/gdn_demo/{AM,AD}/ and docs/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
SWAX=build/swax
DEMO=${SWAX_DEMO_DIR:-runs/demo}
RUN=${SWAX_GDN_DEMO_DIR:-runs/gdn_demo}
THREADS=${SWAX_THREADS:-$(nproc)}
STEPS=${SWAX_GDN_DEMO_STEPS:-300}
OUT=${SWAX_GDN_DEMO_SVG:-docs/results/gdn_vs_mlstm_loss_tiny.svg}
mkdir -p "$RUN" "$(dirname "$OUT")"
for pat in AM AD; do
  rm -rf "${RUN:?}/$pat"
  $SWAX train --preset tiny --set pattern=$pat --data "$DEMO/data" --tokenizer "$DEMO/tokenizer" \
    --out "$RUN/$pat" --steps "$STEPS" --eval-every 50 --threads "$THREADS" --quiet
done
cc -std=c11 -O2 -Iinclude -Isrc scripts/loss_compare.c build/libswax.a -fopenmp -lopenblas -lpcre2-8 -lcjson -lm \
  -o "$RUN/loss_compare" 2>/dev/null || cc -std=c11 -O2 -Iinclude -Isrc scripts/loss_compare.c build/libswax.a \
  -fopenmp -lopenblas -lpcre2-8 -lcjson -lm -lstdc++ -ldl -lrt -o "$RUN/loss_compare"
"$RUN/loss_compare" "$OUT" "tiny, $STEPS steps: SWAX (AM) vs SWA + Gated DeltaNet (AD)" \
  "AM" "$RUN/AM" "AD" "$RUN/AD"
echo "wrote $OUT"
