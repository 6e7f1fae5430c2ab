#!/usr/bin/env bash
# Multi-GPU training checks (issue 11; docs/training.md, "Multi-GPU") on a machine
# with 2 or more GPUs, in one go (about 7 minutes on 2 H200s). Every step has a
# timeout; all output goes to $LOGS/multigpu.log; a short table is printed last.
#   (a) 2 GPUs vs 1 GPU accumulating the same two micro-batches in the same order,
#       50 steps, fp32 (--device cuda-fp32) and bf16 (--device cuda): per-step losses
#       (bit-exact count, max relative difference)
#   (b) resume: a 2-GPU run stopped at step 25, continued on 2 GPUs (mpirun; bit-exact
#       against the uninterrupted run expected), on 1 GPU (--grad-accum 2: the curve
#       continues), and on 4 when there are 4
#   (c) scaling on bench-gpu B8 x T4096: tokens/s at 1, 2 (and 4) GPUs, efficiency,
#       and the communication time not hidden behind compute (comm_s per step)
#   (d) 1.4b at all GPUs (B2 x T16384, --recompute): tokens/s, memory per GPU
#   (e) a rank killed with SIGKILL: time until the job ends, and its message
# Binaries: .gpu/bundle.tar.xz (scripts/gpu_bundle.sh) when present, else build/swax.
#   scripts/test_multigpu.sh [BUNDLE]      (LOGS=dir to choose the log folder)
# Every launch has NCCL_NVLS_ENABLE=0 (SPEC §9); swax also sets it when unset.
set -uo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-.gpu/bundle.tar.xz}
LOGS=${LOGS:-${OUT:-build/multigpu-logs}}
mkdir -p "$LOGS"
LOG=$LOGS/multigpu.log
: > "$LOG"
W=/tmp/swax-multigpu
rm -rf "$W" && mkdir -p "$W"
if [ -f "$BUNDLE" ]; then
  mkdir -p "$W/bundle" && tar -C "$W/bundle" -xJf "$BUNDLE"
  SWAX=$W/bundle/bin/swax
  export LD_LIBRARY_PATH="$W/bundle/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
else
  SWAX=build/swax
fi
export NCCL_NVLS_ENABLE=0
NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
MPIRUN="mpirun --allow-run-as-root --oversubscribe --bind-to none -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH"
log() { echo "$*" | tee -a "$LOG"; }
# run NAME TIMEOUT CMD...: output to the log, status kept in $W/NAME.rc, seconds in $W/NAME.s
run() {
  local name=$1 to=$2; shift 2
  log "== $name: $*"
  local t0; t0=$(date +%s.%N)
  timeout --kill-after=10 "$to" "$@" >> "$LOG" 2>&1; local rc=$?
  local s; s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  echo "$rc" > "$W/$name.rc"; echo "$s" > "$W/$name.s"
  log "   -> exit $rc in ${s}s"
  return $rc
}
rows=()
row() { rows+=("$(printf '| %-44s | %-52s |' "$1" "$2")"); }

log "swax multi-GPU test — $(date -u '+%Y-%m-%d %H:%M UTC'), $NGPU GPU(s)"
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader >> "$LOG" 2>&1
nvidia-smi topo -m >> "$LOG" 2>&1
if [ "$NGPU" -lt 1 ]; then log "no GPU"; exit 2; fi
[ "$NGPU" -lt 2 ] && log "one GPU: only (0), the NCCL path at world 1 (SWAX_DIST_FORCE=1), runs"

# ---- data: llm.c shards (uint16 tokens). Small: counting documents (learnable) over 512 ids;
# large: random ids below 50000 with an end-of-text every ~1000 tokens.
python3 - "$W" <<'PY' >> "$LOG" 2>&1
import array, os, random, struct, sys
w = sys.argv[1]
def shard(path, toks):
    h = [0] * 256; h[0], h[1], h[2] = 20240520, 1, len(toks)
    with open(path, "wb") as f:
        f.write(struct.pack("<256i", *h)); f.write(array.array("H", toks).tobytes())
r = random.Random(3)
t = []
while len(t) < 600000:
    t.append(0); s = r.randrange(1, 511)
    t.extend(1 + (s + 3 * k) % 511 for k in range(r.randrange(20, 200)))
os.makedirs(w + "/small", exist_ok=True)
shard(w + "/small/train_000000.bin", t[:550000]); shard(w + "/small/val_000000.bin", t[550000:600000])
big = array.array("H", (r.randrange(0, 50000) for _ in range(6_000_000)))
for i in range(0, len(big), 1000): big[i] = 50256
os.makedirs(w + "/big", exist_ok=True)
shard(w + "/big/train_000000.bin", big)
print("shards written")
PY

SMALL=(--preset tiny --train "$W/small/train_*.bin" --val "" --set vocab_size=512 --set vocab_used=512
       --set d_model=256 --set n_blocks=4 --set attn_heads=4 --set head_dim=64 --set mlstm_heads=2
       --set ffn_dim=704 --set eot_token=0 --seq-len 256 --batch 8 --steps 50 --warmup 5 --lr 3e-3
       --windows 32:0.5,128:0.5 --eval-every 0 --ckpt-every 0 --seed 5 --quiet)

# compare A B [FROM]: bit-exact steps, max relative loss difference (steps >= FROM)
compare() {
  python3 - "$1/log.jsonl" "$2/log.jsonl" "${3:-1}" <<'PY'
import json, sys
def rd(p):
    d = {}
    try:
        for l in open(p):
            j = json.loads(l)
            if "loss" in j: d[j["step"]] = j
    except OSError: pass
    return d
a, b, lo = rd(sys.argv[1]), rd(sys.argv[2]), int(sys.argv[3])
ks = sorted(k for k in a if k in b and k >= lo)
if not ks: print("no common steps"); sys.exit(1)
same = sum(a[k]["loss"] == b[k]["loss"] for k in ks)
rel = max(abs(a[k]["loss"] - b[k]["loss"]) / abs(b[k]["loss"]) for k in ks)
gn = max(abs(a[k]["grad_norm"] - b[k]["grad_norm"]) / max(abs(b[k]["grad_norm"]), 1e-30) for k in ks)
print(f"{same}/{len(ks)} bit-exact, max rel {rel:.2e} (grad norm {gn:.1e}), steps {ks[0]}-{ks[-1]}")
PY
}

# ---- (0) one GPU: the data-parallel loop at world 1 (NCCL communicator of one rank, the
# bucket hook, the optimizer shard, the all-gather, sharded checkpoints) against the plain loop
for dev in cuda-fp32 cuda; do
  run "z_plain_$dev" 150 "$SWAX" train "${SMALL[@]}" --device "$dev" --grad-accum 2 --out "$W/z1_$dev"
  run "z_dist1_$dev" 150 env SWAX_DIST_FORCE=1 "$SWAX" train "${SMALL[@]}" --device "$dev" --grad-accum 2 --out "$W/zd_$dev"
  r=$(compare "$W/zd_$dev" "$W/z1_$dev"); log "   (0) $dev: $r"
  row "(0) NCCL loop at world 1 vs plain loop, $dev" "$r"
done
run z_stop 150 env SWAX_DIST_FORCE=1 "$SWAX" train "${SMALL[@]}" --device cuda --grad-accum 2 --stop-after 25 --out "$W/zs"
run z_resume_plain 150 "$SWAX" train --out "$W/zs" --resume --device cuda --quiet
r=$(compare "$W/zs" "$W/zd_cuda"); log "   (0) sharded checkpoint resumed by the plain loop: $r"
row "(0) world-1 stop@25, plain resume vs uninterrupted" "$r"
if [ "$NGPU" -lt 2 ]; then
  echo; echo "multi-GPU checks ($NGPU GPU: $(nvidia-smi --query-gpu=name --format=csv,noheader | head -n1))"
  printf '| %-44s | %-52s |\n' check result; printf '|%s|%s|\n' "$(printf -- '-%.0s' {1..46})" "$(printf -- '-%.0s' {1..54})"
  for r in "${rows[@]}"; do echo "$r"; done
  exit 0
fi

# ---- (a) 2 GPUs vs 1 GPU accumulating the same two micro-batches
for dev in cuda-fp32 cuda; do
  run "a_1gpu_$dev" 150 "$SWAX" train "${SMALL[@]}" --device "$dev" --grad-accum 2 --out "$W/a1_$dev"
  run "a_2gpu_$dev" 150 "$SWAX" train "${SMALL[@]}" --device "$dev" --grad-accum 1 --gpus 2 --out "$W/a2_$dev"
  r=$(compare "$W/a2_$dev" "$W/a1_$dev"); log "   (a) $dev: $r"
  row "(a) 2 GPU vs 1 GPU x2 accum, $dev, 50 steps" "$r"
done

# ---- (b) resume: stop a 2-GPU bf16 run at 25; continue on 2 (mpirun), 1 (accum 2), 4
run b_stop 150 "$SWAX" train "${SMALL[@]}" --device cuda --grad-accum 1 --gpus 2 --stop-after 25 --out "$W/b2"
cp -r "$W/b2" "$W/b1"; [ "$NGPU" -ge 4 ] && cp -r "$W/b2" "$W/b4"
run b_resume2_mpirun 150 $MPIRUN -np 2 "$SWAX" train --out "$W/b2" --resume --device cuda --quiet
r=$(compare "$W/b2" "$W/a2_cuda"); log "   (b) resume on 2: $r"; row "(b) stop@25 + resume on 2 (mpirun) vs uninterrupted" "$r"
run b_resume1 150 "$SWAX" train --out "$W/b1" --resume --device cuda --grad-accum 2 --quiet
r=$(compare "$W/b1" "$W/a2_cuda" 26); log "   (b) resume on 1: $r"; row "(b) stop@25 on 2, resume on 1 (accum 2)" "$r"
if [ "$NGPU" -ge 4 ]; then
  run b_resume4 150 "$SWAX" train --out "$W/b4" --resume --device cuda --gpus 4 --batch 4 --quiet
  r=$(compare "$W/b4" "$W/a2_cuda" 26); log "   (b) resume on 4 (B4: same global batch): $r"
  row "(b) stop@25 on 2, resume on 4 (batch 4)" "$r"
fi
# and back: the 1-GPU run's checkpoint (a1_cuda, step 50) continues on 2 GPUs
run b_1to2 150 "$SWAX" train --out "$W/a1_cuda" --resume --device cuda --gpus 2 --grad-accum 1 --steps 60 --quiet
row "(b) 1-GPU checkpoint continued on 2 GPUs (50->60)" "exit $(cat "$W/b_1to2.rc")"

# ---- (c) scaling on bench-gpu B8 x T4096 (w=128 fixed), 12 steps, steps 4..12 averaged
stats() { # LOGFILE -> "tok/s comm_s step_s mem_mb"
  python3 - "$1" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if '"loss"' in l]
r = [j for j in r if j["step"] >= 4] or r
m = lambda k: sum(j.get(k, 0) for j in r) / len(r)
print(f'{m("tok_per_s"):.0f} {m("comm_s"):.4f} {m("step_s"):.4f} {max(j.get("gpu_mem_mb", 0) for j in r):.0f}')
PY
}
BENCH=(--preset bench-gpu --train "$W/big/train_*.bin" --val "" --batch 8 --seq-len 4096 --grad-accum 1
       --steps 12 --warmup 2 --windows 128 --eval-every 0 --ckpt-every 0 --device cuda --quiet)
tps1=
for n in 1 2 4; do
  [ "$n" -gt "$NGPU" ] && continue
  if [ "$n" = 1 ]; then run "c_bench_$n" 180 "$SWAX" train "${BENCH[@]}" --out "$W/c$n"
  else run "c_bench_$n" 180 "$SWAX" train "${BENCH[@]}" --gpus "$n" --out "$W/c$n"; fi
  if [ -f "$W/c$n/log.jsonl" ]; then
    read -r tps comm _ mem <<< "$(stats "$W/c$n/log.jsonl")"
    [ "$n" = 1 ] && tps1=$tps
    eff=$(awk -v t="$tps" -v o="${tps1:-0}" -v n="$n" 'BEGIN{if (o > 0) printf "%.1f%%", 100*t/(n*o); else print "-"}')
    log "   (c) $n GPU(s): $tps tok/s, exposed comm $comm s/step, efficiency $eff, GPU0 mem $mem MB"
    row "(c) bench-gpu B8xT4096 w128, $n GPU(s)" "$tps tok/s, eff $eff, comm not hidden ${comm}s/step"
  else
    row "(c) bench-gpu B8xT4096 w128, $n GPU(s)" "failed (exit $(cat "$W/c_bench_$n.rc"))"
  fi
done

# ---- (d) 1.4b at all GPUs: tokens/s, memory per GPU (sampled by nvidia-smi)
( while sleep 1; do nvidia-smi --query-gpu=index,memory.used --format=csv,noheader,nounits; done ) > "$W/mem.txt" 2>/dev/null &
sampler=$!
run d_1p4b 300 "$SWAX" train --preset 1.4b --train "$W/big/train_*.bin" --val "" --batch 2 --seq-len 16384 \
  --grad-accum 1 --steps 5 --warmup 1 --windows 2048 --eval-every 0 --ckpt-every 0 --recompute --device cuda \
  --gpus "$NGPU" --quiet --out "$W/d"
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
mem=$(awk -F', *' '{if ($2 > m[$1]) m[$1] = $2} END {for (g in m) printf "GPU%s %.1f GB ", g, m[g]/1024}' "$W/mem.txt")
if [ -f "$W/d/log.jsonl" ]; then
  read -r tps comm _ _ <<< "$(stats "$W/d/log.jsonl")"
  row "(d) 1.4b B2xT16384 recompute, $NGPU GPUs" "$tps tok/s, comm ${comm}s/step; peak $mem"
else
  row "(d) 1.4b B2xT16384 recompute, $NGPU GPUs" "failed (exit $(cat "$W/d_1p4b.rc")); peak $mem"
fi

# ---- (e) SIGKILL of rank 1 during a 2-GPU run: the job must end within 60 s naming the rank
log "== e_kill"
( "$SWAX" train "${SMALL[@]}" --device cuda --grad-accum 1 --gpus 2 --steps 100000 --ckpt-every 20 \
    --out "$W/e" > "$W/e.out" 2>&1; echo $? > "$W/e.rc" ) &
sub=$!
parent=
for _ in $(seq 1 120); do
  sleep 0.5
  parent=$(pgrep -o -f "swax train .*--out $W/e\$" | head -n1)
  [ -n "$parent" ] && [ -f "$W/e/latest" ] && break
done
kids=$(pgrep -P "${parent:-0}" | sort -n)
victim=$(echo "$kids" | sed -n 2p)   # children are forked in rank order
t0=$(date +%s.%N)
if [ -n "$victim" ]; then
  kill -9 "$victim"
  for _ in $(seq 1 900); do kill -0 "$sub" 2>/dev/null || break; sleep 0.1; done
fi
kill -0 "$sub" 2>/dev/null && { log "   job still running 90 s after the kill: killing it"; pkill -9 -P "${parent:-0}"; kill -9 "${parent:-0}"; }
wait "$sub" 2>/dev/null
secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
cat "$W/e.out" >> "$LOG"
msg=$(grep -m1 -E "rank 1 (was killed|exited)" "$W/e.out" || echo "(no message naming rank 1)")
ok=$("$SWAX" train --out "$W/e" --resume --device cuda --steps "$(( $(sed -n 's/ckpt_0*//p' "$W/e/latest" 2>/dev/null || echo 0) + 1 ))" \
      --quiet >> "$LOG" 2>&1 && echo "last checkpoint resumes" || echo "last checkpoint did NOT resume")
log "   (e) ended ${secs}s after the kill (exit $(cat "$W/e.rc" 2>/dev/null)); $msg; $ok"
row "(e) SIGKILL rank 1 of 2" "ended in ${secs}s, exit $(cat "$W/e.rc" 2>/dev/null); $ok"
row "(e) message" "$(echo "$msg" | cut -c1-52)"

echo | tee -a "$LOG"
log "multi-GPU results ($(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n1) x $NGPU)"
log "$(printf '| %-44s | %-52s |' check result)"
log "|$(printf -- '-%.0s' $(seq 1 46))|$(printf -- '-%.0s' $(seq 1 54))|"
for r in "${rows[@]}"; do log "$r"; done
log "full log: $LOG"
