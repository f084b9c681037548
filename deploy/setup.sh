#!/usr/bin/env bash
# Installs every Debian 12 package mcmpart needs to build, test and run.
# Idempotent: packages already present are skipped, and apt-get runs only when
# something is missing. Used by the README quick start, .ci/run and the
# container build alike, so there is exactly one list to keep up to date.
#   deploy/setup.sh            what the build, the tests and CI need
#   deploy/setup.sh sanitize   also clang and its sanitizer and libFuzzer
#                              runtimes (deploy/sanitize.sh, deploy/fuzz.sh)
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build pkg-config git ca-certificates clang-format
  # RPC and messages
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev
  # cores: solver (Gecode, ONNX) and policy (LibTorch on OpenBLAS)
  libgecode-dev libonnx-dev libtorch-dev libopenblas0-pthread
  # metrics
  prometheus-cpp-dev
  # state store (server/store): SQLite and Redis; the tests start redis-server
  redis-server libhiredis-dev libsqlite3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev googletest libbenchmark-dev libxml2-utils graphviz
  # deployment checks (tests/deploy): YAML lint and parsing
  yamllint python3 python3-yaml
)
# The instrumented build (clang-14 with ASan, UBSan and libFuzzer; its
# runtimes are in libclang-rt-14-dev), and the ONNX backend test models the
# importer's fuzzer starts from. Not needed by CI.
if [ "${1:-}" = sanitize ]; then
  PACKAGES+=(clang-14 libclang-rt-14-dev libonnx-testdata)
fi
# kubectl renders the Kubernetes files (`kubectl kustomize`). Debian's
# kubernetes-client conflicts with other kubectl packages over
# /usr/bin/kubectl, so it is added only when no kubectl is on PATH.
if ! command -v kubectl >/dev/null 2>&1; then
  PACKAGES+=(kubernetes-client)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
