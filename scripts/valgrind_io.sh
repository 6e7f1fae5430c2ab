#!/usr/bin/env bash
# valgrind_io.sh — the CLI's I/O paths under valgrind memcheck (make valgrind).
#
# Builds swax for a generic x86-64 (valgrind has no AVX-512, which
# -march=native may use) into build/valgrind/, then runs every command that
# reads or writes a file — init, info, logits, tokenizer train/encode/decode,
# data build/info/check, train (2 steps, then a resume), generate (with state
# files), eval choice — each under
#   valgrind --leak-check=full --error-exitcode=1
# and reports per command the errors and the "definitely lost" bytes. Exits 1
# if any command has a memcheck error, a definite leak, or fails.
# VALGRIND_KEEP=1 keeps the scratch folder and the logs.
set -u
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null 2>&1 || { echo "valgrind: not installed (scripts/install_deps.sh installs it)" >&2; exit 2; }
out=build/valgrind
make --no-print-directory -s -j"$(nproc)" OUT=$out ARCH=-mtune=generic $out/swax >/dev/null || exit 2
bin=$out/swax
tmp=$(mktemp -d /tmp/swax_valgrind_XXXXXX)
[ -n "${VALGRIND_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
# OMP_WAIT_POLICY set: otherwise swax re-executes itself (src/cli/main.c), leaving valgrind
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE

fail=0 n=0
printf '%-34s %8s %10s %10s  %s\n' command errors "def.lost" "ind.lost" result
run() { # name, then the swax arguments (must exit 0)
  run_expect 0 "$@"
}
run_expect() { # exit code, name, then the swax arguments (error paths must not leak either)
  local want=$1 name=$2; shift 2
  local log="$tmp/vg.$n.log"
  n=$((n + 1))
  valgrind --leak-check=full --error-exitcode=101 --errors-for-leak-kinds=definite \
    --log-file="$log" "$bin" "$@" >"$tmp/stdout.$n" 2>"$tmp/stderr.$n"
  local rc=$?
  local errs def ind
  errs=$(grep -E 'ERROR SUMMARY:' "$log" | tail -1 | awk '{print $4}')
  def=$(grep -E 'definitely lost:' "$log" | tail -1 | awk '{print $4}' | tr -d ,)
  ind=$(grep -E 'indirectly lost:' "$log" | tail -1 | awk '{print $4}' | tr -d ,)
  local res=ok
  [ "$want" -ne 0 ] && res="ok (exit $rc as expected)"
  if [ "$rc" -ne "$want" ]; then
    res="FAIL (exit $rc; log $log)"
    fail=$((fail + 1))
    [ -n "${VALGRIND_KEEP:-}" ] || { sed -n '1,80p' "$log" >&2; cat "$tmp/stderr.$n" >&2; }
  fi
  printf '%-34s %8s %10s %10s  %s\n' "$name" "${errs:-?}" "${def:-0}" "${ind:-0}" "$res"
}

# a small corpus: prose and code, a few documents
mkdir -p "$tmp/text"
for i in 1 2 3 4 5 6; do
  {
    echo "Document $i. The quick brown fox jumps over the lazy dog, again and again ($i)."
    echo "It was the best of times, it was the worst of times; the end of part $i."
    echo "def f$i(x):"
    echo "    return x * $i  # the $i-th function"
  } >"$tmp/text/doc$i.txt"
done
printf '{"text": "a JSONL document"}\n{"text": "and another one"}\n' >"$tmp/text/more.jsonl"
printf '{"context": "The fox", "choices": [" jumps", " sleeps"], "answer": 0}\n' >"$tmp/choice.jsonl"
printf '{"context": "def f", "choices": ["1(x):", " banana"], "answer": 0}\n' >>"$tmp/choice.jsonl"

set=(--set vocab_size=320 --set vocab_used=300 --set d_model=32 --set n_blocks=2 --set attn_heads=2
     --set head_dim=16 --set mlstm_heads=2 --set ffn_dim=64 --set window=16 --set eot_token=299)

run "init"                  init --preset tiny "${set[@]}" --out "$tmp/model"
run "info"                  info "$tmp/model"
run "logits"                logits --model "$tmp/model" --tokens "1,2,3,4,5" --out "$tmp/l.npy"
run "tokenizer train"       tokenizer train --input "$tmp/text" --vocab-size 300 --out "$tmp/tok" --quiet
run "tokenizer encode"      tokenizer encode --tokenizer "$tmp/tok" --text "the quick fox<|endoftext|>" --allow-special
ids=$(cat "$tmp/stdout.$n")
run "tokenizer decode"      tokenizer decode --tokenizer "$tmp/tok" --ids "${ids:-1 2 3}"
run "tokenizer info"        tokenizer info --tokenizer "$tmp/tok"
run "data build"            data build --tokenizer "$tmp/tok" --input "$tmp/text" --out "$tmp/data" \
                              --val-fraction 0.2 --shard-tokens 300 --quiet
run "data info"             data info "$tmp/data/train_000000.bin"
run "data check"            data check "$tmp/data/train_000000.bin" --vocab 300
train=(train --preset tiny --data "$tmp/data" "${set[@]}" --batch 2 --seq-len 16 --windows 8
       --eval-every 1 --eval-batches 1 --ckpt-every 1 --threads 1 --quiet --out "$tmp/run")
run "train (2 steps)"       "${train[@]}" --steps 3 --stop-after 2
run "train --resume"        "${train[@]}" --steps 3 --resume
ck="$tmp/run/$(cat "$tmp/run/latest" 2>/dev/null)"
if "$bin" generate --help >/dev/null 2>&1; then
  run "generate (save state)" generate --model "$ck" --prompt "the fox" --max-tokens 4 --greedy \
                                --threads 1 --save-state "$tmp/state.bin"
  run "generate (load state)" generate --model "$ck" --ids "5 6" --max-tokens 3 --seed 2 \
                                --threads 1 --load-state "$tmp/state.bin"
else
  echo "generate: not built into this swax (skipped)"
fi
if "$bin" eval choice --help >/dev/null 2>&1; then
  run "eval choice"           eval choice --model "$ck" --tasks "$tmp/choice.jsonl" --out "$tmp/eval" --quiet
fi
# error paths: corrupt or mismatched inputs, each refused with exit 3 — and no leak on the way out
bad="$tmp/bad"
mkdir -p "$bad/model" "$bad/run"
cp "$tmp/model/config.json" "$bad/model/"
head -c 3000 "$tmp/model/model.safetensors" >"$bad/model/model.safetensors"
run_expect 3 "info (truncated weights)"    info "$bad/model"
run_expect 3 "logits (token out of vocab)" logits --model "$tmp/model" --tokens "1,2,4000" --out "$tmp/l2.npy"
printf '{"pattern": "r50k", "ranks": "missing.tiktoken"}' >"$bad/tokenizer.json"
run_expect 3 "tokenizer encode (no ranks)" tokenizer encode --tokenizer "$bad/tokenizer.json" --text "x"
head -c 1500 "$tmp/data/train_000000.bin" >"$bad/train_000000.bin"
run_expect 3 "data info (truncated shard)" data info "$bad/train_000000.bin"
cp -r "$ck" "$bad/run/" && cp "$tmp/run/latest" "$bad/run/latest"
bck="$bad/run/$(cat "$tmp/run/latest" 2>/dev/null)"
printf '\x01' | dd of="$bck/train_state.bin" bs=1 seek=100 conv=notrunc status=none
run_expect 3 "train --resume (corrupt state)" train --preset tiny --data "$tmp/data" "${set[@]}" --batch 2 --seq-len 16 \
                              --windows 8 --threads 1 --quiet --out "$bad/run" --steps 4 --resume
if "$bin" generate --help >/dev/null 2>&1; then
  run_expect 3 "generate (state of other model)" generate --model "$tmp/model" --ids "5 6" --max-tokens 2 \
                              --threads 1 --load-state "$tmp/state.bin"
fi
if "$bin" eval choice --help >/dev/null 2>&1; then
  printf '{"context": "x", "choices": ["a"], "answer": 0}\n' >"$bad/choice.jsonl"
  run_expect 3 "eval choice (bad JSONL)"  eval choice --model "$ck" --tasks "$bad/choice.jsonl" --out "$bad/eval" --quiet
fi
echo "valgrind: $n commands, $fail with memcheck errors, definite leaks or failures"
[ "$fail" -eq 0 ]
