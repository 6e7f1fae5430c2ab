#!/usr/bin/env bash
# Builds a portable CUDA swax here (ARCH=portable CUDA=1: build-portable/) and
# packs what a GPU machine without our -dev packages needs into one archive:
# the swax binary, the GPU test binaries, and the shared libraries they load
# that such a machine lacks (OpenBLAS, cJSON, PCRE2, gfortran, quadmath; oneDNN where installed).
#   scripts/gpu_bundle.sh [DEST]   (default .gpu/; unpack there with scripts/test_cuda.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.gpu}
make -s -j"$(nproc)" ARCH=portable CUDA=1 build-portable/swax \
  $(for t in tests/test_cuda_*.c; do b=$(basename "$t" .c); echo "build-portable/tests/$b"; done)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib"
cp build-portable/swax "$stage/bin/"
cp build-portable/tests/test_cuda_* "$stage/bin/"
rm -f "$stage"/bin/*.d
for lib in libopenblas.so.0 libcjson.so.1 libpcre2-8.so.0 libgfortran.so.5 libquadmath.so.0; do
  src=$(ldd build-portable/swax | awk -v l="$lib" '$1 == l {print $3}')
  [ -n "$src" ] && cp -L "$src" "$stage/lib/$lib"
done
# oneDNN (Debian's libdnnl2, dlopen'd for --device cpu-bf16 and SWAX_SGEMM=onednn) and the OpenCL
# loader it links: the cpu section measures bf16 CPU training (AMX on the GPU machine's Xeon)
for lib in libdnnl.so.2 libOpenCL.so.1; do
  src=/usr/lib/x86_64-linux-gnu/$lib
  [ -f "$src" ] && cp -L "$src" "$stage/lib/$lib"
done
strip "$stage"/bin/* 2>/dev/null || true
mkdir -p "$DEST"
tar -C "$stage" -cJf "$DEST/bundle.tar.xz" bin lib
ls -la "$DEST/bundle.tar.xz"
