#!/usr/bin/env bash
# `make test-cuda`: on a machine with an NVIDIA GPU, runs the GPU tests (each
# CUDA kernel against the CPU path; the whole model in fp32 against the CPU;
# determinism; device-independent checkpoints), compute-sanitizer on the
# kernel tests where it works, and the GPU benchmarks; prints a table last.
#
# Binaries: from .gpu/bundle.tar.xz when present (made by scripts/gpu_bundle.sh
# on a Debian machine, for GPU machines without our -dev packages), else built
# here with `make CUDA=1`. Logs go to $OUT (if set) or build/cuda-logs.
# The tests are every test_cuda_* binary (test_cuda_infer: inference on the GPU).
#   SWAX_CUDA_TESTS=0 skips the tests; SWAX_CUDA_SANITIZE=0 skips compute-sanitizer;
#   SWAX_CUDA_BENCH=0 skips our benchmarks; SWAX_CUDA_BASELINE=0 skips the PyTorch
#   baselines (scripts/gpu_baseline*.py: minutes of torch.compile; without them the
#   training figures are compared with SPEC §8's); SWAX_CUDA_LARGE=1 adds the 1.4b preset at
#   T=16384 (tokens/s and memory, with and without --recompute); SWAX_CUDA_CONVERGENCE=DATA
#   trains the `small` preset 300 steps on DATA's shards in bf16 and in fp32 on the GPU and
#   compares the mean loss of the last 50 steps with the CPU fp32 run's: SWAX_CUDA_CPU_LOG
#   names a log.jsonl of one, else the same run starts at once on this machine's CPU
#   in the background (niced, half the cores) and is waited for at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${OUT:-build/cuda-logs}
mkdir -p "$LOGS"
if [ -f .gpu/bundle.tar.xz ]; then
  R=/tmp/swax-gpu-bundle
  rm -rf "$R" && mkdir -p "$R" && tar -C "$R" -xJf .gpu/bundle.tar.xz
  BIN=$R/bin
  export LD_LIBRARY_PATH="$R/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
else
  make -s -j"$(nproc)" CUDA=1 all tests-built || exit 1
  BIN=build
  [ -d build/tests ] && BIN_T=build/tests
fi
BIN_T=${BIN_T:-$BIN}
SWAX=$BIN/swax
export SWAX_BIN=$SWAX NCCL_NVLS_ENABLE=${NCCL_NVLS_ENABLE:-0}
# the float64 twin (reference/swax_ref.py) for the fp32 accuracy checks: the machine's PyTorch
export SWAX_PYTHON=${SWAX_PYTHON:-$(command -v python3 || echo /usr/bin/python3)}

# the CPU fp32 reference of the convergence check runs beside everything else
cpu_conv_pid=
if [ -n "${SWAX_CUDA_CONVERGENCE:-}" ] && [ -z "${SWAX_CUDA_CPU_LOG:-}" ]; then
  rm -rf /tmp/swax-conv-cpu
  nice -n 10 timeout 560 $SWAX train --preset small --data "$SWAX_CUDA_CONVERGENCE" --out /tmp/swax-conv-cpu \
    --steps 300 --warmup 30 --eval-every 0 --device cpu --threads $(( $(nproc) / 2 )) --quiet \
    > "$LOGS/conv_cpu.txt" 2>&1 &
  cpu_conv_pid=$!
  SWAX_CUDA_CPU_LOG=/tmp/swax-conv-cpu/log.jsonl
fi

echo "swax test-cuda — $(date -u '+%Y-%m-%d %H:%M UTC')"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader 2>/dev/null || echo "(no nvidia-smi)"
rows=()
total_p=0; total_f=0
for t in "$BIN_T"/test_cuda_*; do
  [ -x "$t" ] || continue
  [ "${SWAX_CUDA_TESTS:-1}" = 0 ] && continue
  name=$(basename "$t")
  echo "== $name"
  start=$(date +%s.%N)
  timeout "${SWAX_CUDA_TEST_TIMEOUT:-400}" "$t" > "$LOGS/$name.log" 2>&1; rc=$?
  secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}')
  cat "$LOGS/$name.log"
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$LOGS/$name.log" | tail -n 1)
  p=$(echo "$line" | awk '{print $1}'); f=$(echo "$line" | awk '{print $3}')
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "  (exit $rc)"; fi
  total_p=$((total_p + p)); total_f=$((total_f + f))
  rows+=("$(printf '| %-24s | %6s | %6s | %7ss |' "$name" "$p" "$f" "$secs")")
done

san_rows=()
if [ "${SWAX_CUDA_SANITIZE:-1}" != 0 ] && command -v compute-sanitizer >/dev/null 2>&1; then
  # tool, binary, test-name filter: the kernel tests of each file, under the sanitizer (10-100x slower)
  for spec in "memcheck test_cuda_ops cuda_" "memcheck test_cuda_attn attn_misaligned" \
              "memcheck test_cuda_attn attn_any_even" "memcheck test_cuda_mlstm mlstm_documents" \
              "memcheck test_cuda_mlstm mlstm_partial_tiles" "racecheck test_cuda_attn attn_misaligned" \
              "racecheck test_cuda_mlstm mlstm_documents" "memcheck test_cuda_model checkpoint" \
              "memcheck test_cuda_infer bad_inputs" "racecheck test_cuda_infer batched_decode" \
              "memcheck test_cuda_gdn gdn_documents" "racecheck test_cuda_gdn gdn_documents" \
              "memcheck test_cuda_attn_tc attn_tc_misaligned" "racecheck test_cuda_attn_tc attn_tc_misaligned" \
              "memcheck test_cuda_mlstm_tc mlstm_tc_documents" "racecheck test_cuda_mlstm_tc mlstm_tc_documents" \
              "memcheck test_cuda_wgmma wgmma" "memcheck test_cuda_gemv cuda_gemv_refuses" \
              "memcheck test_cuda_infer bf16_tensor_core" ; do
    set -- $spec
    tool=$1; name=$2; filt=$3
    [ -x "$BIN_T/$name" ] || continue
    echo "== compute-sanitizer --tool $tool $name $filt"
    timeout 150 compute-sanitizer --tool "$tool" --error-exitcode 99 "$BIN_T/$name" "$filt" \
      > "$LOGS/san_${tool}_${name}_$filt.log" 2>&1; rc=$?
    tail -n 3 "$LOGS/san_${tool}_${name}_$filt.log"
    verdict=clean; [ "$rc" -eq 99 ] && verdict=ERRORS; [ "$rc" -eq 124 ] && verdict=timeout
    [ "$rc" -ne 0 ] && [ "$rc" -ne 99 ] && [ "$rc" -ne 124 ] && verdict="exit $rc"
    name="$name $filt"
    san_rows+=("$(printf '| %-9s %-40s | %-8s |' "$tool" "$name" "$verdict")")
  done
fi

bench_rows=()
kern_rows=()
if [ "${SWAX_CUDA_BENCH:-1}" != 0 ]; then
  field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p"; }
  # the PyTorch baseline on this card (SPEC §8's recipe), else SPEC §8's figures for one H200
  base128=214000; base2048=198000; basesrc="SPEC §8"
  if [ "${SWAX_CUDA_BASELINE:-1}" != 0 ]; then
    timeout 330 python3 scripts/gpu_baseline_model.py --windows 128,2048 2>"$LOGS/baseline_model.err" \
      | tee "$LOGS/baseline_model.jsonl"
    b=$(grep '"window": 128,' "$LOGS/baseline_model.jsonl" | field tokens_per_s | head -n1); [ -n "$b" ] && base128=$b && basesrc="PyTorch here"
    b=$(grep '"window": 2048,' "$LOGS/baseline_model.jsonl" | field tokens_per_s | head -n1); [ -n "$b" ] && base2048=$b
  fi
  for spec in "128 $base128" "2048 $base2048"; do
    set -- $spec
    j=$($SWAX bench train --device cuda --preset bench-gpu --batch 8 --seq 4096 --window "$1" --chunk 64 --steps 3 2>&1 | tail -n 1)
    echo "$j" | tee -a "$LOGS/bench.jsonl"
    tps=$(echo "$j" | field tokens_per_s); tf=$(echo "$j" | field tflops)
    if [ -n "$tps" ]; then
      bench_rows+=("$(printf '| bench-gpu train w=%-5s | %10.0f | %10s | %5.2fx | %5.1f%% |' "$1" "$tps" "$2" \
        "$(awk -v a="$tps" -v b="$2" 'BEGIN{print a/b}')" "$(awk -v t="$tf" 'BEGIN{print 100*t/989}')")")
    else
      bench_rows+=("$(printf '| bench-gpu train w=%-5s | %10s | %10s | %6s | %6s |' "$1" failed "$2" - -)")
    fi
  done
  # kernels beside the PyTorch kernels on this card (flex_attention; TFLA from .baseline/mlstm_kernels)
  $SWAX bench kernels --device cuda 2>&1 | tee "$LOGS/kernels.jsonl"
  : > "$LOGS/baseline.jsonl"
  [ "${SWAX_CUDA_BASELINE:-1}" != 0 ] && timeout 300 python3 scripts/gpu_baseline.py 2>"$LOGS/baseline.err" | tee "$LOGS/baseline.jsonl"
  kern_rows=()
  for spec in "swa 128" "swa 2048" "mlstm 0" "gdn 0"; do
    set -- $spec
    if [ "$1" = swa ]; then sel="\"window\": $2,"; else sel="\"bench\": \"$1\""; fi
    ours=$(grep '"bench": "'"$1"'"' "$LOGS/kernels.jsonl" | grep -F "$sel" | field fwdbwd_ms | head -n1)
    base=$(grep '"bench": "'"$1"'"' "$LOGS/baseline.jsonl" | grep -F "$sel" | field fwdbwd_ms | head -n1)
    label="$1"; [ "$1" = swa ] && label="swa w=$2"
    if [ -n "$ours" ] && [ -n "$base" ]; then
      kern_rows+=("$(printf '| %-24s | %10.3f | %10.3f | %5.2fx |' "$label fwd+bwd ms" "$ours" "$base" \
        "$(awk -v a="$ours" -v b="$base" 'BEGIN{print b/a}')")")
    else
      kern_rows+=("$(printf '| %-24s | %10s | %10s | %6s |' "$label fwd+bwd ms" "${ours:--}" "${base:--}" -)")
    fi
  done
fi

# inference on the GPU: decode tokens/s at batch 1 and 64 beside the HBM bound, prefill at 4k, 32k, 1M
infer_rows=()
if [ "${SWAX_CUDA_BENCH:-1}" != 0 ]; then
  field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p"; }
  timeout 900 $SWAX bench infer --device cuda --preset "${SWAX_CUDA_INFER_PRESET:-1.4b}" 2>&1 | tee "$LOGS/bench_infer.jsonl"
  while read -r j; do
    case "$j" in
      *'"infer_decode"'*)
        b=$(echo "$j" | field batch); t=$(echo "$j" | field tokens_per_s); bd=$(echo "$j" | field bound_tokens_per_s)
        fr=$(echo "$j" | field fraction_of_bound)
        infer_rows+=("$(printf '| decode batch %-11s | %10s | %10s | %6s |' "$b" "$t" "$bd" "$fr")") ;;
      *'"infer_prefill"'*'"tokens_per_s"'*)
        cx=$(echo "$j" | field context); t=$(echo "$j" | field tokens_per_s)
        tl=$(echo "$j" | sed -n 's/.*"last_[0-9]*_tokens_per_s": \([0-9.e+-]*\).*/\1/p')
        infer_rows+=("$(printf '| prefill context %-8s | %10s | %10s | %6s |' "$cx" "$t" "${tl:--}" -)") ;;
    esac
  done < "$LOGS/bench_infer.jsonl"
fi

large_rows=()
if [ "${SWAX_CUDA_LARGE:-0}" != 0 ]; then
  field() { sed -n "s/.*\"$1\": \([0-9.e+-]*\).*/\1/p"; }
  for spec in "4 --recompute" "1 --recompute" "1 -"; do
    set -- $spec
    flag=$2; [ "$flag" = - ] && flag=
    j=$(timeout 240 $SWAX bench train --device cuda --preset 1.4b --batch "$1" --seq 16384 --window 2048 --chunk 64 \
        --steps 2 $flag 2>&1 | tail -n 1)
    echo "$j" | tee -a "$LOGS/bench_large.jsonl"
    tps=$(echo "$j" | field tokens_per_s); mem=$(echo "$j" | field device_mem_gb)
    large_rows+=("$(printf '| 1.4b B%s T16384 w2048 %-12s | %10s | %8s |' "$1" "${flag:-(no recompute)}" "${tps:-failed}" "${mem:--}")")
  done
fi

conv_rows=()
if [ -n "${SWAX_CUDA_CONVERGENCE:-}" ]; then
  for dev in cuda cuda-fp32; do
    rm -rf "/tmp/swax-conv-$dev"
    timeout 200 $SWAX train --preset small --data "$SWAX_CUDA_CONVERGENCE" --out "/tmp/swax-conv-$dev" --steps 300 \
      --warmup 30 --eval-every 0 --device "$dev" --quiet > "$LOGS/conv_$dev.txt" 2>&1
    cp "/tmp/swax-conv-$dev/log.jsonl" "$LOGS/conv_$dev.jsonl" 2>/dev/null
    m=$(grep '"loss"' "/tmp/swax-conv-$dev/log.jsonl" 2>/dev/null | tail -n 50 | sed -n 's/.*"loss": \([0-9.e+-]*\).*/\1/p' \
        | awk '{s+=$1; n++} END {if (n) printf "%.5f", s/n}')
    tps=$(grep '"loss"' "/tmp/swax-conv-$dev/log.jsonl" 2>/dev/null | tail -n 50 | sed -n 's/.*"tok_per_s": \([0-9.e+-]*\).*/\1/p' \
        | awk '{s+=$1; n++} END {if (n) printf "%.0f", s/n}')
    conv_rows+=("$(printf '| small 300 steps %-10s | %10s | %10s |' "$dev" "${m:-failed}" "${tps:--}")")
  done
  if [ -n "$cpu_conv_pid" ]; then
    wait "$cpu_conv_pid"
    cp /tmp/swax-conv-cpu/log.jsonl "$LOGS/conv_cpu.jsonl" 2>/dev/null
  fi
  if [ -n "${SWAX_CUDA_CPU_LOG:-}" ] && [ -f "$SWAX_CUDA_CPU_LOG" ]; then
    m=$(grep '"loss"' "$SWAX_CUDA_CPU_LOG" | tail -n 50 | sed -n 's/.*"loss": \([0-9.e+-]*\).*/\1/p' | awk '{s+=$1; n++} END {if (n) printf "%.5f", s/n}')
    conv_rows+=("$(printf '| small 300 steps %-10s | %10s | %10s |' cpu "${m:--}" -)")
  fi
fi

echo
echo "GPU tests ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1))"
printf '| %-24s | %6s | %6s | %8s |\n' test passed failed time
printf '|%s|%s|%s|%s|\n' "--------------------------" "--------" "--------" "----------"
for r in "${rows[@]}"; do echo "$r"; done
if [ ${#san_rows[@]} -gt 0 ]; then
  echo
  printf '| %-50s | %-8s |\n' "compute-sanitizer" result
  printf '|%s|%s|\n' "----------------------------------------------------" "----------"
  for r in "${san_rows[@]}"; do echo "$r"; done
fi
if [ ${#bench_rows[@]} -gt 0 ]; then
  echo
  printf '| %-24s | %10s | %10s | %6s | %6s |\n' "benchmark (tokens/s)" swax "${basesrc:-base}" ratio MFU
  printf '|%s|%s|%s|%s|%s|\n' "--------------------------" "------------" "------------" "--------" "--------"
  for r in "${bench_rows[@]}"; do echo "$r"; done
fi
if [ ${#kern_rows[@]} -gt 0 ]; then
  echo
  printf '| %-24s | %10s | %10s | %6s |\n' "kernel (B8 T4096)" swax PyTorch speedup
  printf '|%s|%s|%s|%s|\n' "--------------------------" "------------" "------------" "--------"
  for r in "${kern_rows[@]}"; do echo "$r"; done
fi
if [ ${#infer_rows[@]} -gt 0 ]; then
  echo
  printf '| %-24s | %10s | %10s | %6s |\n' "inference (${SWAX_CUDA_INFER_PRESET:-1.4b}, cuda)" tokens/s "bound|tail" "of bnd"
  printf '|%s|%s|%s|%s|\n' "--------------------------" "------------" "------------" "--------"
  for r in "${infer_rows[@]}"; do echo "$r"; done
fi
if [ ${#large_rows[@]} -gt 0 ]; then
  echo
  printf '| %-38s | %10s | %8s |\n' "large preset" tokens/s "GPU GB"
  printf '|%s|%s|%s|\n' "----------------------------------------" "------------" "----------"
  for r in "${large_rows[@]}"; do echo "$r"; done
fi
if [ ${#conv_rows[@]} -gt 0 ]; then
  echo
  printf '| %-26s | %10s | %10s |\n' "convergence" "last-50 loss" tokens/s
  printf '|%s|%s|%s|\n' "----------------------------" "------------" "------------"
  for r in "${conv_rows[@]}"; do echo "$r"; done
fi
echo
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
