#!/usr/bin/env bash
# gpu_session.sh — one full call on a lent GPU machine, within a time budget: the GPU tests
# (scripts/test_cuda.sh, without the sanitizer), training/inference/kernel benchmarks with the A/B
# switches (the same bits checked through bench train's last_loss), a step profile, then the
# PyTorch baselines on the same card while time is left. Writes a short summary.txt and one
# logs.tgz under $OUT (the device returns few files). Needs .gpu/bundle.tar.xz
# (scripts/gpu_bundle.sh) and, for the baselines, .baseline/ (mlstm_kernels/, fla/).
#   BUDGET=560 scripts/gpu_session.sh [SECTION ...]     sections: tests train gemm kernels profile
#                                                       baseline infer decode ncudec ncu quick sanitize cpu (default:
#                                                       tests train gemm kernels profile baseline infer)
# e.g. run(command="BUDGET=540 scripts/gpu_session.sh", carry=[".gpu", ".baseline"])
set -u
cd "$(dirname "$0")/.."
T0=$(date +%s); BUDGET=${BUDGET:-560}
# logs live outside $OUT and are packed into $OUT/logs.tgz after every section, so a call cut off
# by the device's limit still returns what the finished sections wrote (and few files)
OUTD=${OUT:-build/gpu-session}; L=/tmp/swax-gpu-session/l; S=$OUTD/summary.txt
rm -rf "$L"; mkdir -p "$L" "$OUTD"
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
# a command's timeout: at most $1 seconds, and never past the budget
tmo() { local t; t=$(( $(left) - 5 )); [ "$t" -lt 5 ] && t=5; [ "$t" -lt "$1" ] && echo "$t" || echo "$1"; }
pack() { tar -C "$(dirname "$L")" -czf "$OUTD/logs.tgz" l 2>/dev/null; }
at() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$S"; }
R=/tmp/swax-gpu-bundle
[ -f .gpu/bundle.tar.xz ] || { echo "gpu_session.sh: .gpu/bundle.tar.xz missing (scripts/gpu_bundle.sh)" >&2; exit 3; }
rm -rf "$R" && mkdir -p "$R" && tar -C "$R" -xJf .gpu/bundle.tar.xz
export LD_LIBRARY_PATH="$R/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}" SWAX_BIN=$R/bin/swax
export SWAX_PYTHON=${SWAX_PYTHON:-$(command -v python3)} NCCL_NVLS_ENABLE=0
B=$R/bin/swax
# one line from an ncu --csv --page details file: the kernel and the metrics that say where its time goes
ncu_summary() {
  python3 - "$1" <<'PY'
import csv, sys
want = ("Duration", "Compute (SM) Throughput", "Memory Throughput", "Achieved Occupancy", "Registers Per Thread",
        "Issue Slots Busy", "No Eligible", "Warp Cycles Per Issued Instruction", "DRAM Throughput", "L1/TEX Hit Rate",
        "L2 Hit Rate", "Executed Ipc Active", "Block Limit Shared Mem", "Dynamic Shared Memory Per Block")
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 14]
if len(rows) < 2: print("ncu", sys.argv[1], "no rows"); sys.exit()
h = rows[0]; ki = h.index("Kernel Name"); mi = h.index("Metric Name"); vi = h.index("Metric Value"); ui = h.index("Metric Unit")
out = {}
for r in rows[1:]:
    if r[mi] in want and r[mi] not in out: out[r[mi]] = r[vi] + " " + r[ui]
print("ncu", rows[1][ki][:60], "|", "; ".join(f"{k}: {v}" for k, v in out.items()))
PY
}
SECTIONS=${*:-tests train gemm kernels profile baseline infer}
echo "gpu_session $(date -u '+%F %T UTC') $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -n1); sections: $SECTIONS" | tee "$S"
# bench train at bench-gpu; $1: environment (VAR=value ...), $2: window, $3: mLSTM chunk (64)
bt() { timeout "$(tmo 90)" env $1 "$B" bench train --device cuda --preset bench-gpu --batch 8 --seq 4096 --window "$2" --chunk "${3:-64}" --steps 4 2>&1 | tail -n 1; }
for sec in $SECTIONS; do
  [ "$(left)" -gt 30 ] || { at "out of budget before $sec"; break; }
  case $sec in
    tests)
      SWAX_CUDA_SANITIZE=0 SWAX_CUDA_BENCH=0 SWAX_CUDA_TEST_TIMEOUT=150 OUT=$L bash scripts/test_cuda.sh > "$L/tests.txt" 2>&1
      grep -E '^\| test_cuda|FAIL' "$L/tests.txt" >> "$S"; at "tests done" ;;
    sanitize)
      SWAX_CUDA_TESTS=0 SWAX_CUDA_BENCH=0 OUT=$L bash scripts/test_cuda.sh > "$L/sanitize.txt" 2>&1
      grep -E '^\| (memcheck|racecheck)' "$L/sanitize.txt" >> "$S"; at "sanitizer done" ;;
    train)
      for w in 128 2048; do at "train w$w: $(bt X=1 $w)"; done
      # each switch on top of the previous, newest first; last_loss must be the same in every line
      ab=""
      for sw in SWAX_BF16_MIXER=0 SWAX_BF16_ACT=0 SWAX_BF16_ONLY=0 SWAX_XENT_ROW=0 SWAX_RESID_FUSED=0 SWAX_XENT_FUSED=0 SWAX_BF16_FWD=0 \
                SWAX_BF16_DOUT=0 SWAX_BF16_KEEP=0 SWAX_BF16_CVT=old; do
        ab="$ab $sw"
        at "A/B w128$ab: $(bt "$ab" 128)"
      done
      at "train w128 pattern AD: $(timeout "$(tmo 90)" "$B" bench train --device cuda --preset bench-gpu --batch 8 --seq 4096 \
          --window 128 --chunk 64 --steps 4 --set pattern=AD 2>&1 | tail -n 1)" ;;
    decode)
      # 1.4b decode at batch 1 and 64 (4k prefill after), the default kernels and the one-launch ones
      # (SWAX_DECODE_FUSED=1, session 16: 36 launches fewer a batch-1 step; predicted -0.05 to -0.15 ms), twice
      for rep in 1 2; do
        for ab in X=1 SWAX_DECODE_FUSED=1; do
          timeout "$(tmo 60)" env $ab "$B" bench infer --device cuda --preset 1.4b --max-context 4096 \
            > "$L/decode_${rep}_${ab%%=*}.jsonl" 2>&1
          grep -E 'infer_decode' "$L/decode_${rep}_${ab%%=*}.jsonl" | sed "s/^/decode $ab: /" >> "$S"
        done
      done
      at "decode A/B done"; pack ;;
    infer)
      # 4k, 32k and 1M tokens of context (issue 10: prefill within +-10% over that range)
      timeout "$(tmo 200)" "$B" bench infer --device cuda --preset 1.4b --max-context 1048576 > "$L/infer.jsonl" 2>&1
      grep -E 'infer_(decode|prefill)' "$L/infer.jsonl" | sed "s/^/infer: /" >> "$S"
      # where a decode step's and a prefill's time goes, op by op (each op synchronised, no graph: the sums are
      # above the real figures); prefill per 4,096 tokens at 4k and 32k, to see what grows with the context
      SWAX_PROFILE=1 timeout "$(tmo 120)" "$B" bench infer --device cuda --preset 1.4b --max-context 32768 --steps 32 \
        > "$L/infer_profile.txt" 2>&1
      grep -E '^(\| |decode profile|prefill profile)' "$L/infer_profile.txt" | grep -v '^| op' | sed 's/^/infer profile: /' |
        head -n 120 >> "$S"
      pack
      # the prefill attention's fp32 CUDA-core kernel (the default before run 9) against the tensor-core one
      timeout "$(tmo 90)" env SWAX_PREFILL_ATTN=fp32 "$B" bench infer --device cuda --preset 1.4b --max-context 32768 \
        > "$L/infer_fp32attn.jsonl" 2>&1
      grep -E 'infer_prefill' "$L/infer_fp32attn.jsonl" | sed "s/^/prefill attention fp32: /" >> "$S"
      # the decode products launched without programmatic dependent launch (SWAX_PDL=0; the default since run 10)
      timeout "$(tmo 60)" env SWAX_PDL=0 "$B" bench infer --device cuda --preset 1.4b --max-context 4096 \
        > "$L/infer_pdl.jsonl" 2>&1
      grep -E 'infer_decode' "$L/infer_pdl.jsonl" | sed "s/^/decode SWAX_PDL=0: /" >> "$S"
      # the norms and SwiGLUs in their own kernels again (the default runs them inside decode's products)
      timeout "$(tmo 60)" env SWAX_GEMV_IN=0 "$B" bench infer --device cuda --preset 1.4b --max-context 4096 \
        > "$L/infer_gemv_in0.jsonl" 2>&1
      grep -E 'infer_decode' "$L/infer_gemv_in0.jsonl" | sed "s/^/decode SWAX_GEMV_IN=0: /" >> "$S"
      at "infer done" ;;
    kernels)
      timeout "$(tmo 60)" "$B" bench kernels --device cuda > "$L/kernels.jsonl" 2>&1; cat "$L/kernels.jsonl" >> "$S"
      # where the mLSTM's and the Gated DeltaNet's time goes, kernel by kernel (each launch synchronised)
      SWAX_KERNEL_PROFILE=1 timeout "$(tmo 90)" "$B" bench kernels --device cuda > /dev/null 2> "$L/kernel_profile.txt"
      grep '^|' "$L/kernel_profile.txt" >> "$S"
      SWAX_GDN_KERNELS=old timeout "$(tmo 90)" "$B" bench kernels --device cuda 2>&1 | grep '"gdn"' | sed 's/^/GDN_KERNELS=old: /' >> "$S"
      at "kernels done" ;;
    cpu)
      # issue 9: the GPU machine's 16-core CPU, swax's thread sweep beside the PyTorch 2.x twin
      n=$(nproc)
      ct=(bench train --preset bench-cpu --batch 4 --seq 1024 --window 128 --chunk 64 --steps 3)
      timeout "$(tmo 150)" "$B" "${ct[@]}" --threads "1,2,4,8,$n" > "$L/cpu_swax.jsonl" 2>&1
      # the fp32 products through OpenBLAS 0.3.21 instead of oneDNN's sgemm (the default since session 14;
      # run 10: 8,993 against 10,701-11,546 tokens/s at 16 threads), then bf16 products (cpu-bf16: AMX
      # here) beside the twin under autocast(bfloat16) at the same thread counts
      SWAX_SGEMM=openblas timeout "$(tmo 60)" "$B" "${ct[@]}" --threads "$n" 2>&1 | tail -n 1 | sed 's/^/openblas sgemm: /' >> "$L/cpu_swax.jsonl"
      for t in 1 8 "$n"; do
        timeout "$(tmo 60)" "$B" "${ct[@]}" --threads "$t" --device cpu-bf16 2>&1 | tail -n 1 | sed 's/^/cpu-bf16: /' >> "$L/cpu_swax.jsonl"
      done
      for t in 8 "$n"; do
        OMP_NUM_THREADS=$t timeout "$(tmo 90)" python3 reference/swax_ref.py bench --config bench-cpu --batch 4 --seq 1024 \
          --window 128 --chunk 64 --steps 3 --threads "$t" --device cpu --autocast bf16 >> "$L/cpu_torch.jsonl" 2>&1
      done
      # the twin at 1 thread too: its own 1 -> $n scaling on the same host says how much of swax's 54% the
      # host sets (all-core clocks, memory) and how much is swax's
      for t in 1 8 "$n"; do
        OMP_NUM_THREADS=$t timeout "$(tmo 120)" python3 reference/swax_ref.py bench --config bench-cpu --batch 4 --seq 1024 \
          --window 128 --chunk 64 --steps 3 --threads "$t" --device cpu >> "$L/cpu_torch.jsonl" 2>&1
      done
      # batched decode (issue 9: batch 8 >= 4x batch 1 in total tokens/s), decode only
      for t in 2 "$n"; do
        timeout "$(tmo 60)" "$B" bench infer --preset bench-cpu --threads "$t" --batch 1,8 --max-context 1 --steps 256 \
          2>&1 | grep infer_decode | sed "s/^/threads $t: /" >> "$L/cpu_decode.jsonl"
      done
      # which ops do not scale (issue 9: 1 -> 16 threads 54% in run 8): the per-op profile at 1 and $n threads
      for t in 1 "$n"; do
        SWAX_PROFILE=1 timeout "$(tmo 60)" "$B" "${ct[@]}" --threads "$t" > "$L/cpu_prof_$t.txt" 2>&1
      done
      awk -F'|' -v n="$n" 'FNR == 1 { f++ } /^\| / && $2 !~ / op / && $3 + 0 > 0 { op = $2; gsub(/^ +| +$/, "", op); ms[f, op] = $3 + 0; seen[op] = 1 }
        END { for (o in seen) if (ms[2, o] > 0) printf "%8.1f ms at %d threads, %9.1f at 1: %5.2fx  %s\n", ms[2, o], n, ms[1, o], ms[1, o] / ms[2, o], o }' \
        "$L/cpu_prof_1.txt" "$L/cpu_prof_$n.txt" | sort -rn | head -n 24 | sed 's/^/cpu op scaling: /' > "$L/cpu_scaling.txt"
      sed 's/^/cpu swax: /' "$L/cpu_swax.jsonl" >> "$S"; sed 's/^/cpu torch: /' "$L/cpu_torch.jsonl" >> "$S"
      cat "$L/cpu_scaling.txt" >> "$S"
      sed 's/^/cpu decode: /' "$L/cpu_decode.jsonl" >> "$S"
      at "cpu done ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $n cores, $(lscpu 2>/dev/null | awk -F: '/Thread\(s\) per core/ { gsub(/ /, "", $2); print $2 }') threads a core; $(grep -m1 '^flags' /proc/cpuinfo |
          grep -o -w -E 'avx2|fma|avx512f|avx512bw|avx512_bf16|amx_tile' | sort -u | tr '\n' ' '))" ;;
    gemm)
      timeout "$(tmo 90)" "$B" bench gemm --steps 12 > "$L/gemm.jsonl" 2>&1
      python3 - "$L/gemm.jsonl" >> "$S" <<'PY' || tail -3 "$L/gemm.jsonl" >> "$S"
import json, sys
for line in open(sys.argv[1]):
    try: d = json.loads(line)
    except ValueError: print(line.rstrip()); continue
    if d.get("bench") == "gemm":
        print(f"gemm {d['what']:<16} {d['m']}x{d['n']}x{d['k']}: plan {d['plan_ms']:.3f} ms ({d['plan_tflops']:.0f} TF/s), "
              f"best {d['best_ms']:.3f} (#{d['best_index']}), gain/step {d['gain_per_step_ms']:.2f} ms")
    else: print(line.rstrip())
PY
      # the fastest candidate of each shape as SWAX_GEMM_PICKS (where it beats the plan by > 3%),
      # then the whole step with those picks beside the default (last_loss tells whether bits moved)
      python3 - "$L/gemm.jsonl" > "$L/gemm_picks.txt" <<'PY'
import json, sys
print("# ta tb m n k accumulate index out   (swax bench gemm: fastest candidate, > 3% faster than the plan)")
for line in open(sys.argv[1]):
    try: d = json.loads(line)
    except ValueError: continue
    if d.get("bench") == "gemm" and d["best_index"] > 0 and d["best_ms"] < 0.97 * d["plan_ms"]:
        print(d["ta"], d["tb"], d["m"], d["n"], d["k"], d["accumulate"], d["best_index"], d.get("out", "f32"))
PY
      cp "$L/gemm_picks.txt" "$OUTD/gemm_picks.txt"
      grep -v '^#' "$L/gemm_picks.txt" | sed 's/^/gemm pick: /' >> "$S"
      for w in 128 2048; do
        at "train w$w default: $(bt X=1 $w)"
        at "train w$w SWAX_GEMM_PICKS: $(bt "SWAX_GEMM_PICKS=$L/gemm_picks.txt" $w)"
      done
      at "gemm done" ;;
    ncudec)
      # a 1.4b decode step at batch 1, kernel by kernel inside its CUDA graph (run 10: 1.913 ms a step,
      # 0.475 of the HBM bound; the synchronised profile cannot tell the products' time from the small
      # kernels' or from the gaps between kernels): one metric, caches and clocks as in a real run
      NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -n1)
      if [ -n "$NCU" ]; then
        for ab in X=1 SWAX_DECODE_FUSED=1; do
          [ "$(left)" -gt 60 ] || break
          timeout "$(tmo 150)" env $ab "$NCU" --graph-profiling node --cache-control none --clock-control none \
            --metrics gpu__time_duration.sum,dram__bytes_read.sum --launch-count 600 \
            --kernel-name "regex:k_gemv|k_rope_rows|k_attn_d|k_mlstm_step|gates_fwd|mlstm_out_fwd|k_argmax|embed_fwd" \
            --csv --page raw "$B" bench infer --device cuda --preset 1.4b --batch 1 --max-context 4096 --steps 8 \
            > "$L/ncu_decode_${ab%%=*}.csv" 2> "$L/ncu_decode_${ab%%=*}.err"
          python3 scripts/ncu_decode_step.py "$L/ncu_decode_${ab%%=*}.csv" 2>&1 | sed "s/^/$ab /" >> "$S" || true
        done
        at "ncu decode done"
      else at "ncu: not on this machine"; fi
      pack ;;
    ncu)
      # Nsight Compute, one launch each: the default (wgmma) SWA kernels at w = 2048 (bench kernels runs
      # each ten times a window, w 128 first; the old version's mma.sync kernels have other names) and
      # the mLSTM forward at chunk 64; speed of light, stalls, occupancy
      NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null | head -n1)
      if [ -n "$NCU" ]; then
        # the training step's cross-entropy and RMSNorm backward (run 10: rewriting both for more loads
        # in flight gave nothing; where does their time go?), one launch each inside bench train
        for ks in xent_train_kernel:8 rmsnorm_bwd_rows_kernel:60; do
          [ "$(left)" -gt 60 ] || break
          k=${ks%%:*}; skip=${ks##*:}
          timeout "$(tmo 90)" "$NCU" --kernel-name "regex:$k" --launch-skip "$skip" --launch-count 1 \
            --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
            --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
            --csv --page details "$B" bench train --device cuda --preset bench-gpu --batch 8 --seq 4096 --window 128 \
            --chunk 64 --steps 2 > "$L/ncu_$k.csv" 2> "$L/ncu_$k.err"
          ncu_summary "$L/ncu_$k.csv" >> "$S" || true
        done
        for ks in k_tc_fwd_scan:0 k_tc_fwd_out:0 fwd_wg_kernel:12 bwd_dkdv_wg_kernel:12 bwd_dq_wg_kernel:12; do
          [ "$(left)" -gt 40 ] || break
          k=${ks%%:*}; skip=${ks##*:}
          timeout "$(tmo 60)" "$NCU" --kernel-name "regex:$k" --launch-skip "$skip" --launch-count 1 \
            --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
            --section SchedulerStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis \
            --csv --page details "$B" bench kernels --device cuda > "$L/ncu_$k.csv" 2> "$L/ncu_$k.err"
          ncu_summary "$L/ncu_$k.csv" >> "$S" || true
        done
        at "ncu done"
      else at "ncu: not on this machine"; fi ;;
    quick)
      # the step at both windows, then the cross-entropy's arithmetic for bf16 logits (session 15:
      # ex2.approx, a tanh from one ex2 and one rcp, a fixed offset instead of the online max; 6.6 ms a
      # step in runs 7-10 against ~2.2 at the bandwidth, two rewrites for loads in flight gave nothing)
      # (SWAX_XENT_FAST=1, opt-in until measured: last_loss moves in the last digits) against the accurate
      # kernel, and the fast kernel's three row places (the same bits: the same last_loss)
      for w in 128 2048; do at "train w$w: $(bt X=1 $w)"; done
      for ab in SWAX_XENT_FAST=1 "SWAX_XENT_FAST=1 SWAX_XENT_ROW=raw" "SWAX_XENT_FAST=1 SWAX_XENT_ROW=0"; do
        at "A/B w128 $ab: $(bt "$ab" 128)"
      done
      at "A/B w2048 SWAX_XENT_FAST=1: $(bt SWAX_XENT_FAST=1 2048)"
      # the mLSTM scans (forward and backward) with the next chunk's first slice in flight (same bits: the default's
      # last_loss), at k slices of 32 and of 64 (a chunk one slice, every load under a product; slices of
      # 64 move the last bits)
      for ab in SWAX_MLSTM_SCAN=pf "SWAX_MLSTM_SCAN=pf SWAX_MLSTM_KS=64"; do at "A/B w128 $ab: $(bt "$ab" 128)"; done
      # both opt-in switches together at both windows: the step issue 10 would report if both are made the default
      for w in 128 2048; do at "A/B w$w SWAX_XENT_FAST=1 SWAX_MLSTM_SCAN=pf: $(bt "SWAX_XENT_FAST=1 SWAX_MLSTM_SCAN=pf" $w)"; done ;;
    profile)
      SWAX_PROFILE=1 timeout "$(tmo 60)" "$B" bench train --device cuda --preset bench-gpu --batch 8 --seq 4096 --window 128 \
        --chunk 64 --steps 3 > "$L/profile_w128.txt" 2>&1
      SWAX_PROFILE=1 timeout "$(tmo 60)" "$B" bench train --device cuda --preset bench-gpu --batch 8 --seq 4096 --window 2048 \
        --chunk 64 --steps 3 > "$L/profile_w2048.txt" 2>&1
      # the slots that take most of a step (the table is sorted by time)
      for w in 128 2048; do grep '^| ' "$L/profile_w$w.txt" | grep -v '^| op' | head -n 14 | sed "s/^/profile w$w /" >> "$S"; done
      at "profile done" ;;
    baseline)
      t=$(left)
      if [ "$t" -gt 150 ]; then
        # --profile: PyTorch's costliest kernels of one step per window, beside the profile section's
        # swax table (where PyTorch's step wins)
        timeout $(( t - 60 )) python3 scripts/gpu_baseline_model.py --windows 128,2048 --steps 6 --profile 25 \
          > "$L/baseline_model.jsonl" 2> "$L/baseline_model.err"
        grep train_baseline "$L/baseline_model.jsonl" >> "$S"
      fi
      t=$(left)
      [ "$t" -gt 40 ] && timeout $(( t - 10 )) python3 scripts/gpu_baseline.py > "$L/baseline_kernels.jsonl" 2> "$L/baseline_kernels.err"
      cat "$L/baseline_kernels.jsonl" >> "$S" 2>/dev/null; at "baselines done" ;;
    *) at "unknown section $sec (tests train infer kernels gemm profile baseline ncu quick sanitize cpu)" ;;
  esac
  pack
done
at "end"
pack
cat "$S"
