#!/usr/bin/env bash
# niah_study.sh — the paper's claim in miniature (SPEC §5, docs/evaluation.md): train small SWAX
# models on prose mixed with synthetic retrieval documents, with a short window, a long window and
# the stochastic schedule, over several seeds; then RULER NIAH far past the training length and the
# loss by position. Whether a short-window model learns retrieval at all is a sharp transition that
# depends on seed, steps and numerics: read the learning curves (log.jsonl) and all seeds.
#
# Everything is set by environment variables (defaults in brackets):
#   OUT       output folder                                   [runs/niah_study]
#   CORPUS    scripts/fetch_corpus.sh folder                  [data/corpus]
#   PRESET    model + recipe preset                           [tiny]
#   STEPS     training steps per run                          [2000]
#   SEEDS     training seeds                                  ["1 2 3"]
#   WINDOWS   window schedules, one run each                  ["32 128 32:0.5,128:0.5"]
#   SEQ_LEN   training length (tokens)                        [512]
#   MIX       fraction of training tokens that are synthetic  [0.5]
#   GEN_DOCS  synthetic documents                             [20000]
#   NIAH_MIN_LEN shortest synthetic NIAH document (tokens)   [160]
#   TASKS     NIAH tasks trained and evaluated                [single1,single2,multikey2,multivalue]
#   LENGTHS   NIAH prompt lengths                             [256,512,1k,2k,4k,8k]
#   DEPTHS    NIAH depths (%)                                 [0,25,50,75,100]
#   SAMPLES   NIAH samples per cell                           [5]
#   THREADS   threads                                         [$(nproc)]
# Writes OUT/<run>/{ckpt_*,log.jsonl,loss.svg,eval_niah/,eval_ppl/} and OUT/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-runs/niah_study}
CORPUS=${CORPUS:-data/corpus}
PRESET=${PRESET:-tiny}
STEPS=${STEPS:-2000}
SEEDS=${SEEDS:-"1 2 3"}
WINDOWS=${WINDOWS:-"32 128 32:0.5,128:0.5"}
SEQ_LEN=${SEQ_LEN:-512}
MIX=${MIX:-0.5}
GEN_DOCS=${GEN_DOCS:-20000}
TASKS=${TASKS:-single1,single2,multikey2,multivalue}
LENGTHS=${LENGTHS:-256,512,1k,2k,4k,8k}
DEPTHS=${DEPTHS:-0,25,50,75,100}
SAMPLES=${SAMPLES:-5}
THREADS=${THREADS:-$(nproc)}
SWAX=${SWAX:-build/swax}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
[ -x "$SWAX" ] || make -s "$SWAX"
mkdir -p "$OUT"

say "corpus ($CORPUS)"
[ -d "$CORPUS/sotu" ] || scripts/fetch_corpus.sh "$CORPUS"
heldout=()
[ -d "$CORPUS/heldout" ] && heldout=(--essay "$CORPUS/heldout")

say "tokenizer (BPE 4096 on the training prose)"
[ -f "$OUT/tokenizer/tokenizer.json" ] ||
  "$SWAX" tokenizer train --input "$CORPUS/sotu" --vocab-size 4096 --out "$OUT/tokenizer" --quiet

say "synthetic documents: NIAH format (training prose as essay) and key-value recall"
[ -f "$OUT/gen_niah.jsonl" ] ||
  "$SWAX" eval gen-data --kind niah --tasks "$TASKS" --docs "$GEN_DOCS" --min-len "${NIAH_MIN_LEN:-160}" --max-len "$SEQ_LEN" \
    --seed 1 --tokenizer "$OUT/tokenizer" --essay "$CORPUS/sotu" --out "$OUT/gen_niah.jsonl" --quiet
[ -f "$OUT/gen_kv.jsonl" ] ||
  "$SWAX" eval gen-data --kind kv --docs "$((GEN_DOCS / 4))" --min-len 64 --max-len "$SEQ_LEN" --seed 2 \
    --tokenizer "$OUT/tokenizer" --out "$OUT/gen_kv.jsonl" --quiet

say "shards: prose + ${MIX} synthetic"
half=$(awk -v m="$MIX" 'BEGIN { printf "%.4f", m / 2 }')
[ -f "$OUT/data/data.json" ] ||
  "$SWAX" data build --tokenizer "$OUT/tokenizer" --input "$CORPUS/sotu" \
    --mix "$OUT/gen_niah.jsonl:$half" --mix "$OUT/gen_kv.jsonl:$half" --out "$OUT/data" --seed 1 \
    --threads "$THREADS" --quiet

runs=()
for w in $WINDOWS; do
  for s in $SEEDS; do
    name="w$(printf '%s' "$w" | tr ':,' '-_')_s$s"
    runs+=("$name")
    say "train $name (windows $w, seed $s, $STEPS steps)"
    if [ ! -f "$OUT/$name/latest" ]; then
      "$SWAX" train --preset "$PRESET" --data "$OUT/data" --out "$OUT/$name" --windows "$w" --seq-len "$SEQ_LEN" \
        --steps "$STEPS" --seed "$s" --eval-every $((STEPS / 20 > 0 ? STEPS / 20 : 1)) --threads "$THREADS" --quiet
    fi
    model="$OUT/$name/$(cat "$OUT/$name/latest")"
    say "evaluate $name"
    "$SWAX" eval niah --model "$model" --tasks "$TASKS" --lengths "$LENGTHS" --depths "$DEPTHS" \
      --samples "$SAMPLES" --seed 7 --max-new 32 "${heldout[@]}" --out "$OUT/$name/eval_niah" \
      --threads "$THREADS" --quiet
    "$SWAX" eval ppl --model "$model" --data "$OUT/data/val_*.bin" --seq-len $((SEQ_LEN * 8)) \
      --buckets "$SEQ_LEN" --train-len "$SEQ_LEN" --max-tokens 200000 --out "$OUT/$name/eval_ppl" \
      --threads "$THREADS" --quiet
  done
done

say "summary"
/usr/bin/python3 - "$OUT" "${runs[@]}" <<'EOF'
import json, sys, os
out, runs = sys.argv[1], sys.argv[2:]
lines = ["# NIAH study", "", "NIAH accuracy (%) by prompt length (all tasks pooled); loss past the training length.", ""]
head = None
for r in runs:
    n = json.load(open(os.path.join(out, r, "eval_niah", "results.json")))
    p = json.load(open(os.path.join(out, r, "eval_ppl", "ppl.json")))
    lens = n["lengths"]
    if head is None:
        head = "| run | " + " | ".join(str(l) for l in lens) + " | mean | val loss | loss, last bucket |"
        lines += [head, "|---|" + "---:|" * (len(lens) + 3)]
    by_len = [sum(t["by_length"][i] for t in n["tasks"].values()) / len(n["tasks"]) for i in range(len(lens))]
    last = [b for b in p["buckets"] if b["loss"] is not None][-1]
    lines.append("| %s | %s | %.1f | %.3f | %.3f |" % (r, " | ".join("%.1f" % a for a in by_len), n["accuracy"],
                                                       p["loss"], last["loss"]))
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
