#!/usr/bin/env bash
# Installs the Debian packages swax needs, if any is missing. Safe to re-run.
set -eu
pkgs="build-essential libopenblas-dev libopenblas-openmp-dev libdnnl-dev libpcre2-dev libcjson-dev python3-torch python3-numpy clang libclang-rt-14-dev valgrind"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
echo "swax: installing Debian packages:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
