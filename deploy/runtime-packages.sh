#!/usr/bin/env bash
# Prints, one per line, the Debian packages that own the shared libraries
# the given binaries load (ldd: the whole closure), so that the runtime image
# installs exactly what the build loads and none of the tool chain:
#   deploy/runtime-packages.sh build/server/mcmpart-server build/client/mcmpart
# The closure names the BLAS the build machine resolved libblas.so.3 to
# (libopenblas0-pthread, from deploy/setup.sh), so the image gets the same
# one rather than whichever BLAS apt would pick for libtorch.
# The state store's libraries (server/store: SQLite for --store sqlite:PATH,
# hiredis for redis://) are named as well as found by ldd, so that an image
# missing one fails here rather than at the first --store of that kind.
# Used by deploy/Dockerfile; checked by tests/deploy on the local build.
# Exit 1 when a library is not found or belongs to no package, or a named
# package is not installed here (deploy/setup.sh installs it).
set -euo pipefail

if [ "$#" -eq 0 ]; then
  echo "usage: deploy/runtime-packages.sh BINARY..." >&2
  exit 2
fi

libs=()
for bin in "$@"; do
  if [ ! -x "$bin" ]; then
    echo "runtime-packages: $bin: not an executable" >&2
    exit 1
  fi
  out="$(ldd "$bin")"
  if grep -q "not found" <<<"$out"; then
    echo "runtime-packages: $bin: unresolved libraries:" >&2
    grep "not found" <<<"$out" >&2
    exit 1
  fi
  # "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)" and the
  # loader's own line "/lib64/ld-linux-x86-64.so.2 (0x...)"
  while read -r lib; do libs+=("$lib"); done < <(
    awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' <<<"$out")
done
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)

# dpkg records a file under the path its package shipped it at; with Debian
# 12's merged /usr, ldd may report it under /lib or /usr/lib, and sonames
# such as libblas.so.3 are alternatives symlinks that no package owns. So
# each library is looked up as it is, as its /usr twin, and resolved.
variants() {
  local p="$1"
  printf '%s\n' "$p"
  case "$p" in /usr/*) printf '%s\n' "${p#/usr}" ;; *) printf '%s\n' "/usr$p" ;; esac
}
declare -A lib_of=()
queries=()
for lib in "${libs[@]}"; do
  real="$(readlink -f "$lib")"
  for v in $(variants "$lib") $(variants "$real"); do
    lib_of["$v"]="$lib"
    queries+=("$v")
  done
done

declare -A owned=()
declare -A packages=()
# One dpkg-query for all: lines "pkg:arch: /path" or "pkg1, pkg2: /path";
# paths no package owns go to stderr (ignored; checked below).
while IFS= read -r line; do
  case "$line" in "diversion "*) continue ;; esac
  path="${line##*: }"
  pkgs="${line%: *}"
  [ -n "${lib_of[$path]:-}" ] || continue
  owned["${lib_of[$path]}"]=1
  IFS=', ' read -r -a names <<<"$pkgs"
  for n in "${names[@]}"; do
    [ -n "$n" ] && packages["${n%%:*}"]=1
  done
done < <(dpkg-query -S "${queries[@]}" 2>/dev/null || true)

# Debian 12 names: libsqlite3-0 (3.40), libhiredis0.14 (0.14.1), the
# runtime packages of setup.sh's libsqlite3-dev and libhiredis-dev.
STORE_PACKAGES=(libsqlite3-0 libhiredis0.14)

status=0
for p in "${STORE_PACKAGES[@]}"; do
  if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    packages["$p"]=1
  else
    echo "runtime-packages: $p (state store) is not installed (bash deploy/setup.sh)" >&2
    status=1
  fi
done
for lib in "${libs[@]}"; do
  if [ -z "${owned[$lib]:-}" ]; then
    echo "runtime-packages: $lib belongs to no package" >&2
    status=1
  fi
done
printf '%s\n' "${!packages[@]}" | sort
exit "$status"
