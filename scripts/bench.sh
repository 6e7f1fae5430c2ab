#!/usr/bin/env bash
# `make bench`: each figure of swax next to its baseline measured in the same
# run on the same machine (the PyTorch twin with the same thread count), as a
# ratio. Record results in docs/performance.md with machine, date, command.
#   SWAX_THREADS (default: nproc)   SWAX_BENCH_STEPS (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-build}
SWAX=$OUT/swax
N=${SWAX_THREADS:-$(nproc)}
STEPS=${SWAX_BENCH_STEPS:-3}
PY=${SWAX_PYTHON:-/usr/bin/python3}
# Both sides get the same thread count and OpenMP wait policy (the twin sets passive itself).
export OMP_NUM_THREADS=$N OPENBLAS_NUM_THREADS=$N OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p"; }

echo "swax bench — $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $N threads, OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
echo
echo "training step (forward + backward + AdamW), bench-cpu preset: V4096 D256 8 blocks, B4 x T1024, w=128, chunk 64"
c_json=$($SWAX bench train --preset bench-cpu --batch 4 --seq 1024 --window 128 --chunk 64 --steps "$STEPS" --threads "$N")
t_json=$($PY reference/swax_ref.py bench --config bench-cpu --batch 4 --seq 1024 --window 128 --chunk 64 \
          --steps "$STEPS" --threads "$N" --device cpu)
c_tps=$(echo "$c_json" | field tokens_per_s)
t_tps=$(echo "$t_json" | field tokens_per_s)
printf '| %-28s | %12s | %12s | %7s |\n' "figure" "swax" "baseline" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------------" "--------------" "--------------" "---------"
printf '| %-28s | %12.1f | %12.1f | %6.2fx |\n' "train tokens/s (twin: torch)" "$c_tps" "$t_tps" \
  "$(awk -v a="$c_tps" -v b="$t_tps" 'BEGIN{print a/b}')"
# mixed precision beside mixed precision: swax's cpu-bf16 (oneDNN bf16 products) against the twin
# under torch.autocast(bfloat16), where this CPU has a bf16 product (AVX-512; fast with AVX512-BF16/AMX)
cb_json=$($SWAX bench train --preset bench-cpu --batch 4 --seq 1024 --window 128 --chunk 64 --steps "$STEPS" \
          --threads "$N" --device cpu-bf16 2>&1 | tail -n 1) || cb_json=""
if echo "$cb_json" | grep -q tokens_per_s; then
  tb_json=$($PY reference/swax_ref.py bench --config bench-cpu --batch 4 --seq 1024 --window 128 --chunk 64 \
            --steps "$STEPS" --threads "$N" --device cpu --autocast bf16)
  cb_tps=$(echo "$cb_json" | field tokens_per_s)
  tb_tps=$(echo "$tb_json" | field tokens_per_s)
  printf '| %-28s | %12.1f | %12.1f | %6.2fx |\n' "train bf16 (twin: autocast)" "$cb_tps" "$tb_tps" \
    "$(awk -v a="$cb_tps" -v b="$tb_tps" 'BEGIN{print a/b}')"
  printf '| %-28s | %12.1f | %12.1f | %6.2fx |\n' "train bf16 vs twin fp32" "$cb_tps" "$t_tps" \
    "$(awk -v a="$cb_tps" -v b="$t_tps" 'BEGIN{print a/b}')"
else
  echo "(cpu-bf16 not run: ${cb_json:-no output})"
fi
echo
echo "raw: $c_json"
echo "raw: $t_json"
[ -n "${tb_json:-}" ] && echo "raw: $cb_json" && echo "raw: $tb_json"
if $SWAX bench infer --help >/dev/null 2>&1 && $SWAX bench infer --preset tiny --threads "$N" > "$OUT/bench_infer.txt" 2>&1; then
  echo
  echo "inference (tiny preset; baseline: the memory-bandwidth bound of SPEC §3)"
  cat "$OUT/bench_infer.txt"
fi
