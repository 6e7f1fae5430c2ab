#!/usr/bin/env bash
# Runs every test binary of a build folder (and the Python-twin checks they
# call) and writes BUILD/test-results.txt; prints "N passed, N failed".
set -u
out=${1:-build}
results="$out/test-results.txt"
: > "$results"
total_p=0; total_f=0; failed_bins=""
export SWAX_BIN="$out/swax"
for t in "$out"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  echo "== $name ($out)"
  log="$out/tests/$name.log"
  "$t" > "$log" 2>&1; rc=$?
  cat "$log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "  (exit $rc)"; fi
  total_p=$((total_p + p)); total_f=$((total_f + f))
  [ "$f" -ne 0 ] && failed_bins="$failed_bins $name"
  echo "$name $p $f" >> "$results"
done
echo "-- $out: failed in:${failed_bins:- none}"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
