#!/usr/bin/env bash
# fuzz.sh — libFuzzer runs of every swax reader (docs/reliability.md).
#
#   scripts/fuzz.sh [run]        build, then fuzz each harness FUZZ_SECONDS (60) seconds
#   scripts/fuzz.sh build        build build-fuzz/ only (clang, ASan + UBSan + libFuzzer)
#   scripts/fuzz.sh corpus       regenerate the committed seeds in fuzz/corpus/ with our writers
#   scripts/fuzz.sh list         the harness names
#
# Environment: FUZZ_SECONDS (per harness, default 60), FUZZ_JOBS (harnesses run
# at once, default: half the cores, at least 1), FUZZ_TARGETS (space-separated
# subset), FUZZ_ARGS (extra libFuzzer flags).
# Each harness starts from fuzz/corpus/<h>/ and fuzz/regress/<h>/ (with a
# dictionary of its format's tokens from fuzz/dicts/), keeps what it
# finds in build-fuzz/corpus/<h>/ (so later runs continue from there) and writes
# crashes to build-fuzz/crashes/<h>/. Prints executions per harness and the
# findings; exits 1 if anything was found. A finding goes, once fixed, into
# fuzz/regress/<h>/ (replayed by tests/test_fuzz_regress.c in `make test`).
set -u
cd "$(dirname "$0")/.."
mode=${1:-run}
secs=${FUZZ_SECONDS:-60}
cores=$(nproc 2>/dev/null || echo 2)
jobs=${FUZZ_JOBS:-$(( cores / 2 > 0 ? cores / 2 : 1 ))}
out=build-fuzz

need_clang() {
  if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang is not installed (scripts/install_deps.sh installs clang and libclang-rt-14-dev)" >&2
    exit 2
  fi
}

build() {
  need_clang
  mkdir -p "$out"
  make --no-print-directory -s -f fuzz/fuzz.mk -j"$cores" all >"$out/build.log" 2>&1 || {
    cat "$out/build.log" >&2
    echo "fuzz: build failed" >&2
    exit 2
  }
}

targets() {
  if [ -n "${FUZZ_TARGETS:-}" ]; then echo "$FUZZ_TARGETS"; else make --no-print-directory -s -f fuzz/fuzz.mk list; fi
}

run_one() { # harness seconds -> writes build-fuzz/logs/<h>.log
  local h=$1 s=$2
  local corpus="$out/corpus/$h" crashes="$out/crashes/$h" log="$out/logs/$h.log"
  mkdir -p "$corpus" "$crashes" "$out/logs" "fuzz/corpus/$h"
  local seeds=("fuzz/corpus/$h")
  [ -d "fuzz/regress/$h" ] && seeds+=("fuzz/regress/$h")
  local dict=""
  case $h in
    config|tokenizer_json|choice_jsonl|bench|data_jsonl|safetensors|model_load) dict=fuzz/dicts/json.dict ;;
    npy) dict=fuzz/dicts/npy.dict ;;
    tokenizer_ranks|words|essay|latest) dict=fuzz/dicts/text.dict ;;
  esac
  [ -n "$dict" ] && [ -f "$dict" ] && dict="-dict=$dict" || dict=""
  # ASan's default allocator: a reader that asks for an absurd allocation on
  # the word of its input is a finding (the ASan build of `make test` aborts
  # there), as is any single allocation over 2 GB (-malloc_limit_mb).
  # the harness's scratch files (in memory where /dev/shm is writable), removed
  # afterwards even when the harness died on a finding
  local base=/tmp
  [ -w /dev/shm ] && base=/dev/shm
  local scratch
  scratch=$(mktemp -d "$base/swax_fuzz_run_XXXXXX")
  SWAX_FUZZ_TMP=$scratch \
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$out/fuzz_$h" -max_total_time="$s" -timeout=20 -rss_limit_mb=2560 -malloc_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$crashes/" $dict ${FUZZ_ARGS:-} "$corpus" "${seeds[@]}" >"$log" 2>&1 &
  local pid=$!
  wait "$pid"
  echo $? >"$out/logs/$h.rc"
  rm -rf "$scratch"
  rm -f "/dev/shm/__KMP_REGISTERED_LIB_${pid}_"* # the OpenMP runtime's marker, left when a process dies
}

report() {
  local total=0 found=0
  printf '%-16s %12s %10s %8s  %s\n' harness executions exec/s corpus findings
  for h in $(targets); do
    local log="$out/logs/$h.log" rc execs rate units crashes
    rc=$(cat "$out/logs/$h.rc" 2>/dev/null || echo "?")
    execs=$(grep -E '^stat::number_of_executed_units:' "$log" 2>/dev/null | tail -1 | awk '{print $2}')
    rate=$(grep -E '^stat::average_exec_per_sec:' "$log" 2>/dev/null | tail -1 | awk '{print $2}')
    units=$(ls "$out/corpus/$h" 2>/dev/null | wc -l)
    crashes=$(ls "$out/crashes/$h" 2>/dev/null | wc -l)
    local note="none"
    if [ "$rc" != "0" ] || [ "$crashes" -gt 0 ]; then
      note="$crashes file(s) in $out/crashes/$h/ (exit $rc; see $log)"
      found=$((found + 1))
    fi
    printf '%-16s %12s %10s %8s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$units" "$note"
    total=$((total + ${execs:-0}))
  done
  echo "fuzz: $total executions in all, $found harness(es) with findings"
  [ "$found" -eq 0 ]
}

case "$mode" in
  build) build ;;
  list) targets ;;
  corpus)
    build
    rm -rf fuzz/corpus.new && "$out/gen_corpus" fuzz/corpus.new || exit 1
    rm -rf fuzz/corpus && mv fuzz/corpus.new fuzz/corpus
    ;;
  run)
    build
    hs=$(targets)
    echo "fuzz: $(echo $hs | wc -w) harnesses x ${secs}s, $jobs at a time"
    # fresh findings only: crashes of earlier runs stay in the logs of those runs
    for h in $hs; do rm -rf "$out/crashes/$h" "$out/logs/$h.rc"; done
    export -f run_one
    export out
    printf '%s\n' $hs | xargs -P "$jobs" -I{} bash -c 'run_one {} '"$secs"
    report
    ;;
  *) echo "usage: scripts/fuzz.sh [run|build|corpus|list]" >&2; exit 2 ;;
esac
