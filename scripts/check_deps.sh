#!/usr/bin/env bash
# check_deps.sh — are the C build's dependencies here? `make` runs it before
# compiling, so a fresh machine gets one line saying what is missing and how
# to install it, instead of a compiler error about cjson/cJSON.h.
#
# Checks, with $CC (default cc): the compiler itself, then each library's
# header and that it links: cJSON (libcjson-dev), PCRE2 (libpcre2-dev),
# OpenBLAS's cblas.h (libopenblas-dev).
#
# Exit status: 0 everything is here (silent), 1 something is missing (one
# line on stderr: what, and the command that installs it).
set -u
cc=${CC:-cc}   # may be several words ("ccache gcc")
how="run 'make deps' (or scripts/install_deps.sh)"

if ! command -v ${cc%% *} >/dev/null 2>&1; then
  echo "swax: cannot build: no C compiler ('$cc'; Debian: build-essential): $how" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/swax-deps.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

# try NAME HEADER CODE DEFINE LIB: compiles a program that has DEFINE, includes
# HEADER and runs CODE, and links it with -lLIB.
try() {
  printf '%s\n#include <%s>\nint main(void) { %s return 0; }\n' "$4" "$2" "$3" > "$tmp/$1.c"
  $cc -o "$tmp/$1" "$tmp/$1.c" -l"$5" >/dev/null 2>&1
}
# name, header, a call, a define needed before the header, library, Debian package
checks=(
  "cJSON|cjson/cJSON.h|cJSON_Delete(cJSON_Parse(\"1\"));||cjson|libcjson-dev"
  "PCRE2|pcre2.h|pcre2_code_free(0);|#define PCRE2_CODE_UNIT_WIDTH 8|pcre2-8|libpcre2-dev"
  "OpenBLAS|cblas.h|float x = 1; cblas_sscal(1, 2.0f, &x, 1);||openblas|libopenblas-dev"
)

missing="" pkgs=""
for c in "${checks[@]}"; do
  IFS='|' read -r name header call define lib pkg <<< "$c"
  if ! try "$name" "$header" "$call" "$define" "$lib"; then
    # the header, or only the library?
    if printf '%s\n#include <%s>\n' "$define" "$header" | $cc -fsyntax-only -x c - >/dev/null 2>&1; then
      what="$name library (-l$lib)"
    else
      what="$name headers ($header)"
    fi
    missing="${missing:+$missing, }$what"
    pkgs="${pkgs:+$pkgs }$pkg"
  fi
done

if [ -n "$missing" ]; then
  echo "swax: cannot build: missing $missing: $how (Debian packages: $pkgs)" >&2
  exit 1
fi
exit 0
