#!/usr/bin/env bash
# Sums the per-build results into the suite's closing line.
p=0; f=0
for r in "$@"; do
  [ -f "$r" ] || { echo "missing $r"; f=$((f+1)); continue; }
  while read -r _ a b; do p=$((p+a)); f=$((f+b)); done < "$r"
done
echo "all builds: $p passed, $f failed"
echo "$p passed, $f failed"
[ "$f" -eq 0 ]
