#!/usr/bin/env bash
# gpu_prepare.sh — everything a fresh CPU machine needs before its first call to a lent GPU
# machine, in one command: the Debian packages (install_deps.sh), the GPU bundle (gpu_bundle.sh: ~3 min on
# 2 cores), and in parallel the window study's pack (fetch_study_corpus.sh: ~10 min) and its bundle
# (window_study.sh --bundle). Idempotent: what is there already is kept.
#   scripts/gpu_prepare.sh [--no-study]
# The PyTorch baselines' kernel sources (.baseline/mlstm_kernels, .baseline/fla: snapshots of
# NX-AI/mlstm_kernels and fla-org/flash-linear-attention, never committed) cannot be downloaded
# from here without network access to GitHub; the script says whether they are in place.
# Prints what is ready at the end; exit 0 when the GPU bundle is ready.
set -uo pipefail
cd "$(dirname "$0")/.."
STUDY=1
[ "${1:-}" = --no-study ] && STUDY=0
say() { echo "[gpu_prepare $(date -u +%H:%M:%S)] $*"; }

say "Debian packages (scripts/install_deps.sh)"
bash scripts/install_deps.sh > /tmp/gpu_prepare_deps.log 2>&1 || { tail -n 20 /tmp/gpu_prepare_deps.log; exit 3; }

study_pid=""
if [ "$STUDY" = 1 ]; then
  if [ -f .study/pack/corpus.tar.xz ] && [ -f .study/pack/bundle.tar.xz ]; then
    say "study pack: already there (.study/pack)"
  else
    say "study pack: fetching in the background (log /tmp/gpu_prepare_study.log)"
    ( scripts/fetch_study_corpus.sh --out .study && scripts/window_study.sh --bundle ) \
      > /tmp/gpu_prepare_study.log 2>&1 &
    study_pid=$!
  fi
fi

# up to date: no source, header or GPU test newer than the bundle
if [ -f .gpu/bundle.tar.xz ] && [ -z "$(find src include tests Makefile -newer .gpu/bundle.tar.xz -type f 2>/dev/null | head -n 1)" ]; then
  say "GPU bundle: up to date (.gpu/bundle.tar.xz)"
else
  say "GPU bundle (scripts/gpu_bundle.sh)"
  scripts/gpu_bundle.sh > /tmp/gpu_prepare_bundle.log 2>&1 || { tail -n 20 /tmp/gpu_prepare_bundle.log; exit 3; }
fi

if [ -n "$study_pid" ]; then
  say "waiting for the study pack"
  wait "$study_pid" || { say "study pack failed:"; tail -n 20 /tmp/gpu_prepare_study.log; }
fi

echo
ok() { [ -e "$1" ] && echo "  ready    $1 ($(du -sh "$1" | cut -f1))" || echo "  MISSING  $1 $2"; }
ok .gpu/bundle.tar.xz ""
ok .baseline/mlstm_kernels "(a snapshot of NX-AI/mlstm_kernels, for gpu_session.sh's baselines)"
ok .baseline/fla "(a snapshot of fla-org/flash-linear-attention's fla/ folder)"
[ "$STUDY" = 1 ] && ok .study/pack/corpus.tar.xz "(scripts/fetch_study_corpus.sh)"
[ "$STUDY" = 1 ] && ok .study/pack/bundle.tar.xz "(scripts/window_study.sh --bundle)"
echo "  then: scripts/gpu_session.sh (carry .gpu .baseline); window_study.sh --gpu 0 (carry .study/pack)"
[ -f .gpu/bundle.tar.xz ]
