#!/usr/bin/env bash
# window_study.sh — the window study (issue 12, docs/window_study.md) in one command: on the same
# data, token budget and seeds, train SWAX with a short, a medium and a long fixed window, the
# stochastic schedule (linear and switch anneal), pure SWA and pure mLSTM; evaluate each model in
# the same run (NIAH single + multikey at 1x..32x the training length, held-out loss by position to
# 32x, NIAH at 1x along training); write ONE small JSON file per (model, seed); assemble a report
# from every JSON file recorded so far.
#
#   scripts/window_study.sh [--only NAME,...] [--seeds 1,2] [--steps N | --minutes M]
#                           [--gpu N | --gpus 0,1,2,3 | --cpu] [--out DIR] [--mix F]
#   scripts/window_study.sh --cpu-mini [--out DIR]        the whole pipeline, CPU-sized (< 60 s)
#   scripts/window_study.sh --report [DIR]                report of DIR (docs/results/window_study)
#   scripts/window_study.sh --list | --prepare | --bundle | --help
#
# Options:
#   --only LIST      models (--list shows them); default: the 7 of the study
#   --seeds LIST     training seeds (default 1,2); each (model, seed) is one run and one JSON file
#   --steps N        optimizer steps per run (default 5000: 164M tokens at B 16 x T 2048)
#   --minutes M      instead of --steps: time the first 30 steps, then set the steps so that
#                    training takes about M minutes (the token budget then differs per model)
#   --gpu N          train (and evaluate, when `swax eval` has --device) on GPU N
#   --gpus LIST      run the selected runs side by side, one worker per GPU (the 4-GPU machine)
#   --cpu            train on the CPU (slow; for trying the pipeline)
#   --out DIR        where the JSON files (and a short log per run) go: default $OUT when set
#                    (the GPU machine), else .study/results
#   --work DIR       scratch: unpacked corpus, shards, runs (default .study/work)
#   --pack DIR       corpus.tar.xz + tokenizer/ from scripts/fetch_study_corpus.sh (.study/pack)
#   --bin PATH       the swax binary (default: PACK/bundle.tar.xz (made by --bundle) or
#                    .gpu/bundle.tar.xz unpacked, else build/swax)
#   --mix F          fraction of training tokens that are synthetic retrieval documents (0.5);
#                    half NIAH-format documents, half key-value recall; every one inside one
#                    training row (data build --align T)
#   --synth-len L    longest synthetic document, in tokens (default T/4 = 512: retrieval is learned
#                    on short documents and tested at 1x..32x T; the learning curve's multiple
#                    choice items are this long); the CPU check of 2026-12-07 learned retrieval
#                    from short documents and none from documents up to T
#   --eval-device D  auto (cuda when `swax eval niah --help` lists --device and training is on a
#                    GPU), cuda or cpu; on the CPU the evaluation is cut down (lengths to 8x)
#   --threads N      CPU threads (default: all cores / workers)
#   --keep-work      keep the checkpoints of finished runs
#
# Every step can be repeated: the corpus is unpacked and tokenised once per --work folder (a stamp
# holds the archive's hash and the options); a finished run (its JSON in --out) is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

# ---- the models ---------------------------------------------------------------------------------
# name | pattern | windows (S, M, L = short, medium, long: 1/16, 1/4 and 1x the training length) |
# anneal mode
MODELS="
swax-w128          AM  S          linear
swax-w512          AM  M          linear
swax-w2048         AM  L          linear
swax-stoch-linear  AM  S:0.5,L:0.5 linear
swax-stoch-switch  AM  S:0.5,L:0.5 switch
swa-w2048          A   L          linear
mlstm              M   L          linear
swaxd-w128         AD  S          linear
swaxd-w2048        AD  L          linear
swaxd-stoch-linear AD  S:0.5,L:0.5 linear
"
STUDY="swax-w128,swax-w512,swax-w2048,swax-stoch-linear,swax-stoch-switch,swa-w2048,mlstm"
# (the swaxd-* models, pattern AD = SWA + Gated DeltaNet, are the later issue's hook: they run
# when named with --only and the binary knows pattern D)

ONLY="" SEEDS="1,2" STEPS="" MINUTES="" GPU="" GPUS="" DEVICE=cuda OUTD="${OUT:-}" WORK="" PACK=.study/pack
BIN="" MIX=0.5 SYN_MAX="" EVAL_DEVICE=auto THREADS="" MINI=0 MODE=run REPORT_DIR=docs/results/window_study KEEP_WORK=0
usage() { sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY=$2; shift ;;
    --seeds) SEEDS=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    --minutes) MINUTES=$2; shift ;;
    --gpu) GPU=$2; shift ;;
    --gpus) GPUS=$2; shift ;;
    --cpu) DEVICE=cpu ;;
    --out) OUTD=$2; shift ;;
    --work) WORK=$2; shift ;;
    --pack) PACK=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --mix) MIX=$2; shift ;;
    --synth-len) SYN_MAX=$2; shift ;;
    --eval-device) EVAL_DEVICE=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --keep-work) KEEP_WORK=1 ;;
    --cpu-mini) MINI=1 DEVICE=cpu ;;
    --report) MODE=report; if [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; then REPORT_DIR=$2; shift; fi ;;
    --list) MODE=list ;;
    --prepare) MODE=prepare ;;
    --bundle) MODE=bundle ;;
    -h|--help) usage; exit 0 ;;
    *) echo "window_study.sh: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
  shift
done

say() { printf '[window_study %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { say "error: $1"; exit "${2:-1}"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

if [ "$MODE" = list ]; then
  echo "$MODELS" | awk 'NF { printf "%-20s pattern %-3s windows %-12s anneal %s\n", $1, $2, $3, $4 }'
  echo "(S, M, L = 128, 512, 2048 at the study's T = 2048; default selection: $STUDY)"
  exit 0
fi

# ---- the swax binary ----------------------------------------------------------------------------
if [ -z "$BIN" ]; then
  BUNDLE=""
  for b in "$PACK/bundle.tar.xz" .gpu/bundle.tar.xz; do [ -f "$b" ] && { BUNDLE=$b; break; }; done
  if [ "$MINI" = 0 ] && [ -n "$BUNDLE" ] && [ "$DEVICE" = cuda ] && [ "$MODE" != bundle ]; then
    R=/tmp/swax-study-bundle
    if [ ! -x "$R/bin/swax" ] || [ "$BUNDLE" -nt "$R/bin/swax" ]; then
      rm -rf "$R" && mkdir -p "$R" && tar -C "$R" -xJf "$BUNDLE"
    fi
    export LD_LIBRARY_PATH="$R/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
    BIN=$R/bin/swax
  else
    BIN=${SWAX_BIN:-build/swax}
    [ -x "$BIN" ] || make -s "$BIN" >&2
  fi
fi
[ -x "$BIN" ] || die "no swax binary at $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ---- bundle: a portable CUDA swax + the shared libraries a GPU machine lacks, without the test
# binaries of scripts/gpu_bundle.sh (smaller: it travels beside the 42 MiB corpus) --------------------
if [ "$MODE" = bundle ]; then
  nice -n 10 make -s -j2 ARCH=portable CUDA=1 build-portable/swax
  st=$(mktemp -d); mkdir -p "$st/bin" "$st/lib"; cp build-portable/swax "$st/bin/"; strip "$st/bin/swax" || true
  for lib in libopenblas.so.0 libcjson.so.1 libpcre2-8.so.0 libgfortran.so.5 libquadmath.so.0; do
    src=$(ldd build-portable/swax | awk -v l="$lib" '$1 == l { print $3 }'); [ -n "$src" ] && cp -L "$src" "$st/lib/$lib"
  done
  mkdir -p "$PACK"; tar -C "$st" -cf - bin lib | xz -9 -T2 > "$PACK/bundle.tar.xz"; rm -rf "$st"
  ls -la "$PACK/bundle.tar.xz" >&2; du -sh "$PACK" >&2
  exit 0
fi

# ---- report ---------------------------------------------------------------------------------------
if [ "$MODE" = report ]; then
  "$BIN" study report --in "$REPORT_DIR" --out "$REPORT_DIR"
  exit $?
fi

# ---- sizes ------------------------------------------------------------------------------------------
NCPU=$(nproc)
if [ "$MINI" = 1 ]; then
  # CPU-sized: the repository's own text (part of src/ trained on, docs/ held out), a 512-id
  # BPE, a 0.1M-parameter model, T = 512, two schedules, one seed, a tiny evaluation
  T=512 B=2 D=64 NBLK=2 HEADS=1 MHEADS=1 FFN=128 LR=3e-3 WARMUP=10
  STEPS=${STEPS:-24} SEEDS=1 ONLY=${ONLY:-swax-w128,swax-stoch-linear}
  NIAH_TASKS=single1,multikey1 NIAH_SAMPLES=1 NIAH_DEPTHS=0,50 MULTS="1 2 4 8 16 32"
  CURVE_SAMPLES=1 CURVE_DEPTHS=0 CURVE_POINTS=2 PPL_MAX=$((8 * T)) EVAL_BATCHES=2
  GEN_NIAH=100 GEN_KV=100 KV_QUERIES=all NIAH_MIN=400 CURVE_CHOICE=8 THREADS=${THREADS:-$NCPU} EVAL_DEVICE=cpu
  OUTD=${OUTD:-.study/mini/results} WORK=${WORK:-.study/mini/work}
  TRAIN_MAX_S=60 EVAL_MAX_S=60 MIN_DOC=()
else
  # the study: 110M parameters (D 768, 12 blocks, 16k BPE), T = 2048, B = 16 (32,768 tokens a step)
  T=2048 B=16 D=768 NBLK=12 HEADS=12 MHEADS=4 FFN=2048 LR=1e-3 WARMUP=200
  # 5000 steps (164M tokens): run 9's w 2048 began to retrieve at ~1,700 steps (56M tokens) and w 128
  # had not in 3000; the CPU toy's short window needed ~3x full attention's budget (docs/window_study.md)
  STEPS=${STEPS:-5000}
  NIAH_TASKS=single1,single2,multikey1 NIAH_SAMPLES=4 NIAH_DEPTHS=0,25,50,75 MULTS="1 2 4 8 16 32"
  CURVE_SAMPLES=4 CURVE_DEPTHS=0,25,50,75 CURVE_POINTS=8 PPL_MAX=$((6 * 32 * T)) EVAL_BATCHES=8
  # key-value documents recall EVERY pair (--queries all), not 4: see docs/window_study.md, "Why
  # the first GPU run retrieved nothing" (4 recalls in a ~1000-token document: ~2% of its tokens
  # are retrieval targets; every pair: ~45%)
  GEN_NIAH=24000 GEN_KV=24000 KV_QUERIES=all NIAH_MIN=256 CURVE_CHOICE=48
  TRAIN_MAX_S=${TRAIN_MAX_S:-420} EVAL_MAX_S=${EVAL_MAX_S:-90} MIN_DOC=(--min-doc-len $((32 * T)))
fi
ONLY=${ONLY:-$STUDY} WORK=${WORK:-.study/work}
# the synthetic documents' longest length: T/4 for the study, T - 16 in the CPU mini run
if [ -z "$SYN_MAX" ]; then if [ "$MINI" = 1 ]; then SYN_MAX=$((T - 16)); else SYN_MAX=$((T / 4)); fi; fi
[ "$SYN_MAX" -ge $((NIAH_MIN + 16)) ] && [ "$SYN_MAX" -le $((T - 16)) ] ||
  { echo "window_study.sh: --synth-len $SYN_MAX must be in [$((NIAH_MIN + 16)), $((T - 16))]" >&2; exit 2; }
# as many synthetic tokens to draw from at any length: shorter documents, more of them (the study's
# 24,000 of each kind were sized for documents up to T - 16; data build repeats a source in passes
# where its share asks for more tokens than it has)
[ "$MINI" = 1 ] || { GEN_NIAH=$((GEN_NIAH * (T - 16) / SYN_MAX)); GEN_KV=$((GEN_KV * (T - 16) / SYN_MAX)); }
SHORT=$((T / 16)) MED=$((T / 4)) LONG=$T
[ -n "$OUTD" ] || OUTD=.study/results
mkdir -p "$OUTD" "$WORK"
OUTD=$(cd "$OUTD" && pwd) WORK=$(cd "$WORK" && pwd)

# the selected (model, seed) runs
RUNS=()
for m in ${ONLY//,/ }; do
  echo "$MODELS" | awk -v m="$m" '$1 == m { f = 1 } END { exit !f }' || die "unknown model '$m' (--list)" 2
  for s in ${SEEDS//,/ }; do RUNS+=("$m:$s"); done
done

# ---- 4-GPU machine: one worker per GPU ------------------------------------------------------------
if [ -n "$GPUS" ] && [ "$MODE" = run ]; then
  MINI_ARG=(); [ "$MINI" = 1 ] && MINI_ARG=(--cpu-mini)
  "$0" "${MINI_ARG[@]}" --prepare --work "$WORK" --pack "$PACK" --bin "$BIN" --mix "$MIX" --synth-len "$SYN_MAX" --only "$ONLY" --seeds "$SEEDS"
  IFS=, read -r -a gl <<< "$GPUS"
  ng=${#gl[@]} pids=()
  for i in "${!gl[@]}"; do
    mine=()
    for j in "${!RUNS[@]}"; do [ $((j % ng)) -eq "$i" ] && mine+=("${RUNS[$j]}"); done
    [ ${#mine[@]} -gt 0 ] || continue
    args=("${MINI_ARG[@]}" --gpu "${gl[$i]}" --work "$WORK" --pack "$PACK" --bin "$BIN" --mix "$MIX" --synth-len "$SYN_MAX" --out "$OUTD"
          --eval-device "$EVAL_DEVICE" --threads $((NCPU / ng)))
    [ -n "$STEPS" ] && args+=(--steps "$STEPS"); [ -n "$MINUTES" ] && args+=(--minutes "$MINUTES")
    [ "$KEEP_WORK" = 1 ] && args+=(--keep-work)
    say "GPU ${gl[$i]}: ${mine[*]}"
    SWAX_STUDY_RUNS="$(IFS=,; echo "${mine[*]}")" "$0" "${args[@]}" > "$OUTD/gpu${gl[$i]}.log" 2>&1 &
    pids+=($!)
  done
  rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=$?; done
  tail -n 5 "$OUTD"/gpu*.log >&2 || true
  rm -f "$OUTD"/gpu*.log
  exit $rc
fi
# a worker started by --gpus gets its runs through the environment
if [ -n "${SWAX_STUDY_RUNS:-}" ]; then IFS=, read -r -a RUNS <<< "$SWAX_STUDY_RUNS"; fi
THREADS=${THREADS:-$NCPU}
export OMP_WAIT_POLICY=PASSIVE
if [ -n "$GPU" ]; then export CUDA_VISIBLE_DEVICES=$GPU; [ "$MINI" = 1 ] || DEVICE=cuda; fi
if [ "$EVAL_DEVICE" = auto ]; then
  EVAL_DEVICE=cpu
  if [ "$DEVICE" = cuda ] && "$BIN" eval niah --help 2>&1 | grep -q -- --device; then EVAL_DEVICE=cuda; fi
fi
if [ "$EVAL_DEVICE" = cpu ] && [ "$MINI" = 0 ]; then
  # a 110M model on CPU cores: the evaluation shrinks to fit the call (recorded in the JSON)
  # (measured: ~145 tokens/s of prefill on 2 busy cores here; ~1-1.5k expected on 16)
  NIAH_TASKS=single1,multikey1 NIAH_SAMPLES=1 NIAH_DEPTHS=0,50 MULTS="1 2 4 8" CURVE_SAMPLES=1 CURVE_DEPTHS=0,50
  CURVE_POINTS=4 PPL_MAX=$((2 * 8 * T)) MIN_DOC=(--min-doc-len $((8 * T)))
fi
EVAL_DEV_ARGS=(); [ "$EVAL_DEVICE" = cuda ] && EVAL_DEV_ARGS=(--device cuda)
QUIET=--quiet

# ---- data: unpack, tokenise, synthetic documents (once per work folder) ----------------------------
prepare() {
  local t0; t0=$(now)
  local src key tok
  if [ "$MINI" = 1 ]; then
    # a tiny archive of the repository's own text, in the study archive's layout
    src=$WORK/mini_src
    if [ ! -f "$WORK/mini.tar.xz" ]; then
      rm -rf "$src"; mkdir -p "$src/train/src" "$src/heldout/docs"
      cp -r src/core src/eval src/data src/io "$src/train/src/"
      for f in docs/*.md; do cp "$f" "$src/heldout/docs/$(basename "$f" .md).txt"; done
      echo "mini corpus: this repository's src/ + scripts/ (train), docs/ (held out)" > "$src/MANIFEST.txt"
      tar -C "$src" -cJf "$WORK/mini.tar.xz" MANIFEST.txt train heldout
      rm -rf "$src"
    fi
    ARCHIVE=$WORK/mini.tar.xz
    if [ ! -f "$WORK/tokenizer/tokenizer.json" ]; then
      mkdir -p "$WORK/tok_src" && tar -C "$WORK/tok_src" -xJf "$ARCHIVE"
      "$BIN" tokenizer train --input "$WORK/tok_src/train" --vocab-size 512 --out "$WORK/tokenizer" --quiet
      rm -rf "$WORK/tok_src"
    fi
    tok=$WORK/tokenizer
  else
    ARCHIVE=$PACK/corpus.tar.xz tok=$PACK/tokenizer
    [ -f "$ARCHIVE" ] || die "$ARCHIVE missing: run scripts/fetch_study_corpus.sh here and carry .study/pack" 3
    [ -f "$tok/tokenizer.json" ] || die "$tok/tokenizer.json missing (scripts/fetch_study_corpus.sh)" 3
  fi
  key="$(sha256sum "$ARCHIVE" | cut -c1-16) $(sha256sum "$tok/tokenizer.tiktoken" | cut -c1-16) T=$T mix=$MIX gen=$GEN_NIAH/$GEN_KV/q$KV_QUERIES/c$CURVE_CHOICE/s$SYN_MAX align"
  if [ -f "$WORK/data/data.json" ] && [ "$(cat "$WORK/.stamp" 2>/dev/null)" = "$key" ]; then
    say "data: up to date ($WORK/data)"
    return 0
  fi
  "$BIN" eval gen-data --help 2>&1 | grep -q -- niah-choice ||
    die "$BIN has no 'gen-data --kind niah-choice': rebuild it / the bundle (--bundle)" 3
  "$BIN" eval gen-data --help 2>&1 | grep -q -- --queries ||
    die "$BIN has no 'gen-data --queries' (dense key-value recall): rebuild it / the bundle (--bundle)" 3
  "$BIN" data build --help 2>&1 | grep -q -- --align ||
    die "$BIN has no 'data build --align' (retrieval documents kept inside training rows): rebuild it / the bundle (--bundle)" 3
  rm -rf "$WORK/corpus" "$WORK/data" "$WORK/heldout" "$WORK/gen" "$WORK/.stamp"
  mkdir -p "$WORK/corpus" "$WORK/gen"
  say "unpacking $ARCHIVE"
  tar -C "$WORK/corpus" -xJf "$ARCHIVE"
  say "synthetic documents: NIAH format ($GEN_NIAH, training prose as the essay) + key-value ($GEN_KV)"
  # in parallel slices (each its own seed), so 16 cores make them in seconds
  local par=$(( THREADS < 16 ? THREADS : 16 )) k pids=() essay=()
  [ -d "$WORK/corpus/train/sotu" ] && essay=(--essay "$WORK/corpus/train/sotu")
  for ((k = 0; k < par; k++)); do
    "$BIN" eval gen-data --kind niah --tasks "$NIAH_TASKS" --docs $((GEN_NIAH / par)) --min-len "$NIAH_MIN" --max-len "$SYN_MAX" \
      --seed $((100 + k)) --tokenizer "$tok" "${essay[@]}" --out "$WORK/gen/niah_$k.jsonl" --quiet & pids+=($!)
    "$BIN" eval gen-data --kind kv --docs $((GEN_KV / par)) --min-len 64 --max-len "$SYN_MAX" --seed $((200 + k)) \
      --queries "$KV_QUERIES" --tokenizer "$tok" --out "$WORK/gen/kv_$k.jsonl" --quiet & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || die "gen-data failed"; done
  cat "$WORK"/gen/niah_*.jsonl > "$WORK/gen/niah.jsonl"; cat "$WORK"/gen/kv_*.jsonl > "$WORK/gen/kv.jsonl"
  # the learning curve's multiple-choice items: eval-format prompts as long as the longest synthetic
  # document, on the held-out essay, the answer beside 3 of the same shape (a finer measure than
  # exact generation: is retrieval learned at all, at the distances trained on)
  "$BIN" eval gen-data --kind niah-choice --tasks "$NIAH_TASKS" --docs "$CURVE_CHOICE" --min-len "$SYN_MAX" --max-len "$SYN_MAX" \
    --seed 300 --tokenizer "$tok" --essay "$WORK"/corpus/heldout/* --out "$WORK/gen/choice.jsonl" --quiet ||
    die "gen-data --kind niah-choice failed" 3
  rm -f "$WORK"/gen/niah_*.jsonl "$WORK"/gen/kv_*.jsonl
  local half; half=$(awk -v m="$MIX" 'BEGIN { printf "%.4f", m / 2 }')
  say "tokenising (swax data build, $THREADS threads)"
  local ins=(); for d in "$WORK"/corpus/train/*/; do ins+=(--input "${d%/}"); done
  "$BIN" data build --tokenizer "$tok" "${ins[@]}" --mix "$WORK/gen/niah.jsonl:$half" --mix "$WORK/gen/kv.jsonl:$half" \
    --val-fraction 0.005 --out "$WORK/data" --seed 1 --align "$T" --threads "$THREADS" $QUIET
  "$BIN" data build --tokenizer "$tok" --input "$WORK"/corpus/heldout/* --val-fraction 0 --out "$WORK/heldout" \
    --threads "$THREADS" $QUIET
  echo "$key" > "$WORK/.stamp"
  say "data ready in $(elapsed "$t0") s: $(grep -m1 -A1 '"train"' "$WORK/data/data.json" | tail -n 1 | tr -dc '0-9') training tokens"
}
prepare
[ "$MODE" = prepare ] && exit 0
ESSAY=("$WORK"/corpus/heldout/*)

# ---- one run ----------------------------------------------------------------------------------------
json_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }

run_one() {
  local name=$1 seed=$2
  local spec; spec=$(echo "$MODELS" | awk -v m="$name" '$1 == m')
  local pattern windows mode
  read -r _ pattern windows mode <<< "$spec"
  windows=$(echo "$windows" | sed "s/S/$SHORT/g; s/M/$MED/g; s/L/$LONG/g")
  local tag="${name}_s${seed}" run="$WORK/runs/${name}_s${seed}" js="$OUTD/${name}_s${seed}.json" log="$WORK/runs/${name}_s${seed}.log"
  if [ -f "$js" ]; then say "$tag: done before ($js), skipped"; return 0; fi
  if [[ $pattern == *D* ]] && ! "$BIN" init --preset tiny --set pattern=AD --out "$WORK/.probe_ad" >/dev/null 2>&1; then
    say "$tag: this swax has no pattern D (Gated DeltaNet): skipped"; return 0
  fi
  rm -rf "$run" "$WORK/.probe_ad"; mkdir -p "$run"
  local t_start; t_start=$(now)
  : > "$log"
  say "$tag: pattern $pattern, windows $windows ($mode anneal), T $T, B $B, $DEVICE, eval on $EVAL_DEVICE"
  local model=(--preset small --set "d_model=$D" --set "n_blocks=$NBLK" --set "attn_heads=$HEADS" --set "head_dim=$((D / HEADS))"
               --set "mlstm_heads=$MHEADS" --set "ffn_dim=$FFN" --set "pattern=$pattern")
  local vocab; vocab=$(grep -m1 '"vocab_size"' "$WORK/data/data.json" | tr -dc '0-9')
  model+=(--set "vocab_size=$vocab" --set "vocab_used=$vocab")
  local steps=$STEPS
  local common=(--data "$WORK/data" --out "$run" --windows "$windows" --anneal 0.1 --anneal-mode "$mode" --seq-len "$T"
                --batch "$B" --warmup "$WARMUP" --lr "$LR" --min-lr "$(awk -v l="$LR" 'BEGIN { print l / 10 }')" --seed "$seed"
                --device "$DEVICE" --threads "$THREADS" --keep 1000 $QUIET)
  local truncated=false rc=0
  if [ -n "$MINUTES" ]; then
    # time 30 steps (all inside the warm-up, which no later --steps changes), then set the steps
    "$BIN" train "${model[@]}" "${common[@]}" --steps 1000000 --stop-after 30 --eval-every 0 --ckpt-every 1000000 >> "$log" 2>&1 ||
      [ $? -eq 130 ] || { say "$tag: training failed (see $log)"; return 1; }
    local per; per=$(awk -F'[:,]' '/"tok_per_s"/ { for (i = 1; i < NF; i++) if ($i ~ /"time_s"/) t = $(i + 1);
                                                   for (i = 1; i < NF; i++) if ($i ~ /"step"/) s = $(i + 1);
                                                   if (s == 10) t10 = t; if (s == 30) t30 = t } END { print (t30 - t10) / 20 }' "$run/log.jsonl")
    steps=$(awk -v m="$MINUTES" -v p="$per" -v t="$(elapsed "$t_start")" 'BEGIN { s = int((60 * m - t) / p); print s < 60 ? 60 : s }')
    say "$tag: $per s a step -> $steps steps for $MINUTES minutes"
  fi
  local ck=$(( steps / CURVE_POINTS > 0 ? steps / CURVE_POINTS : 1 )) ev=$(( steps / 10 > 0 ? steps / 10 : 1 ))
  # the learning curve: every checkpoint is evaluated (NIAH at T) as soon as it exists, beside
  # the training, and removed afterwards unless it is the latest
  mkdir -p "$run/curve"
  curve_pass() {
    local c
    for c in "$run"/ckpt_*; do
      [ -d "$c" ] || continue
      local st; st=$(basename "$c" | sed 's/ckpt_0*//'); st=${st:-0}
      local d="$run/curve/step_$(printf '%08d' "$st")"
      if [ ! -f "$d/results.json" ]; then
        "$BIN" eval niah --model "$c" --tasks "$NIAH_TASKS" --lengths "$T" --depths "$CURVE_DEPTHS" --samples "$CURVE_SAMPLES" \
          --seed 11 --max-new 16 --essay "${ESSAY[@]}" --out "$d" --threads "$THREADS" "${EVAL_DEV_ARGS[@]}" $QUIET >> "$log" 2>&1 || true
      fi
      if [ -f "$d/results.json" ] && [ ! -f "$d/choice/results.json" ]; then
        "$BIN" eval choice --model "$c" --tasks "$WORK/gen/choice.jsonl" --out "$d/choice" --threads "$THREADS" \
          "${EVAL_DEV_ARGS[@]}" $QUIET >> "$log" 2>&1 || mkdir -p "$d/choice"
      fi
      if [ "$KEEP_WORK" = 0 ] && [ "$(cat "$run/latest" 2>/dev/null)" != "$(basename "$c")" ] && [ -f "$d/results.json" ] \
         && [ -d "$d/choice" ]; then rm -rf "$c"; fi
    done
  }
  local t_train; t_train=$(now)
  local tr_args=("${model[@]}" "${common[@]}" --steps "$steps" --eval-every "$ev" --eval-batches "$EVAL_BATCHES" --ckpt-every "$ck")
  [ -n "$MINUTES" ] && tr_args=(--out "$run" --resume --steps "$steps" --eval-every "$ev" --ckpt-every "$ck" --threads "$THREADS" $QUIET)
  timeout -s TERM -k 30 "$TRAIN_MAX_S" "$BIN" train "${tr_args[@]}" >> "$log" 2>&1 &
  local tp=$!
  while kill -0 "$tp" 2>/dev/null; do curve_pass; sleep 2; done
  wait "$tp" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ]; then truncated=true; say "$tag: training stopped at its time limit ($TRAIN_MAX_S s)"; rc=0; fi
  [ "$rc" -eq 0 ] || { say "$tag: training failed with $rc"; tail -n 20 "$log" >&2; tail -n 200 "$log" > "$OUTD/${tag}.failed.log"; return 1; }
  local train_s; train_s=$(elapsed "$t_train")
  curve_pass
  local final; final="$run/$(cat "$run/latest")"
  local t_eval; t_eval=$(now)
  local lens="" m; for m in $MULTS; do lens="$lens${lens:+,}$((m * T))"; done
  local maxmult; maxmult=$(echo "$MULTS" | awk '{ print $NF }')
  say "$tag: trained in $train_s s; NIAH at $lens"
  timeout -k 10 "$EVAL_MAX_S" "$BIN" eval niah --model "$final" --tasks "$NIAH_TASKS" --lengths "$lens" --depths "$NIAH_DEPTHS" \
    --samples "$NIAH_SAMPLES" --seed 7 --max-new 16 --essay "${ESSAY[@]}" --out "$run/eval_niah" --threads "$THREADS" \
    --time-limit $(( EVAL_MAX_S * 2 / 3 )) \
    "${EVAL_DEV_ARGS[@]}" $QUIET >> "$log" 2>&1 || say "$tag: NIAH evaluation failed or ran out of time (see $log)"
  timeout -k 10 "$EVAL_MAX_S" "$BIN" eval ppl --model "$final" --data "$WORK/heldout/train_*.bin" --docs --seq-len $((maxmult * T)) \
    --buckets "$T" --train-len "$T" --max-tokens "$PPL_MAX" "${MIN_DOC[@]}" --out "$run/eval_ppl" --threads "$THREADS" \
    "${EVAL_DEV_ARGS[@]}" $QUIET >> "$log" 2>&1 || say "$tag: loss-by-position evaluation failed or ran out of time (see $log)"
  local eval_s wall; eval_s=$(elapsed "$t_eval"); wall=$(elapsed "$t_start")
  local gpu_name=""
  [ "$DEVICE" = cuda ] && gpu_name=$(nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null | head -n 1 || true)
  local gpu_min=0; [ "$DEVICE" = cuda ] && gpu_min=$(awk -v w="$wall" 'BEGIN { printf "%.2f", w / 60 }')
  cat > "$run/meta.json" <<EOF
{"format": "swax-window-study", "version": 1, "model": $(json_str "$name"), "schedule": $(json_str "$windows"),
 "pattern": $(json_str "$pattern"), "anneal": 0.1, "anneal_mode": $(json_str "$mode"), "seed": $seed,
 "train_len": $T, "batch": $B, "steps_asked": $steps, "truncated": $truncated, "mini": $([ "$MINI" = 1 ] && echo true || echo false),
 "mix": $MIX, "synth_len": $SYN_MAX, "device": $(json_str "$DEVICE"), "eval_device": $(json_str "$EVAL_DEVICE"), "gpu": $(json_str "$gpu_name"),
 "wall_s": $wall, "train_s": $train_s, "eval_s": $eval_s, "gpu_minutes": $gpu_min,
 "eval": {"niah_tasks": $(json_str "$NIAH_TASKS"), "niah_depths": $(json_str "$NIAH_DEPTHS"), "niah_samples": $NIAH_SAMPLES,
          "curve_samples": $CURVE_SAMPLES, "loss_docs": "held-out (never trained on)", "loss_max_tokens": $PPL_MAX},
 "swax": $(json_str "$("$BIN" --help 2>&1 | head -n 1 | awk '{ print $2 }')"),
 "git": $(json_str "$(git rev-parse --short HEAD 2>/dev/null || cat .git-rev 2>/dev/null || echo unknown)"),
 "date": $(json_str "$(date -u +%Y-%m-%dT%H:%MZ)")}
EOF
  # an evaluation that failed or ran out of time left no results: the JSON then records the run without
  # that part (study collect refuses a --niah / --ppl folder without its results)
  local parts=()
  [ -f "$run/eval_niah/results.json" ] && parts+=(--niah "$run/eval_niah")
  [ -f "$run/eval_ppl/ppl.json" ] && parts+=(--ppl "$run/eval_ppl")
  "$BIN" study collect --meta "$run/meta.json" --run "$run" "${parts[@]}" --curve "$run/curve" --far "$LONG" --out "$js"
  [ "$KEEP_WORK" = 1 ] || rm -rf "$run"/ckpt_*
  say "$tag: $js (wall $wall s: train $train_s, eval $eval_s)"
}

fails=0
for r in "${RUNS[@]}"; do run_one "${r%%:*}" "${r##*:}" || fails=$((fails + 1)); done
# the report of what this output folder holds (partial results are fine)
"$BIN" study report --in "$OUTD" --out "$WORK/report" --train-len "$T" >&2 && say "report of $OUTD: $WORK/report/report.md" || true
[ "$fails" -eq 0 ]
