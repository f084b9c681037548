# Sourced by deploy/sanitize.sh and deploy/fuzz.sh: the one instrumented
# build (clang-14; ASan, UBSan and libFuzzer coverage everywhere; the fuzz
# harnesses as libFuzzer binaries). MCMPART_ASAN_BUILD_DIR chooses the directory (default:
# build-asan); JOBS the parallel build jobs (default: nproc).
asan_build="${MCMPART_ASAN_BUILD_DIR:-build-asan}"
asan_jobs="${JOBS:-$(nproc)}"

asan_configure() {
  local launcher=()
  if command -v ccache >/dev/null 2>&1; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  fi
  # -O1 with line tables: a third faster to build than -O2 -g, stack
  # traces with file:line.
  cmake -S . -B "$asan_build" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
    -DCMAKE_CXX_COMPILER=clang++-14 \
    -DMCMPART_FUZZ=ON -DMCMPART_BUILD_BENCHMARKS=OFF \
    "${launcher[@]}" >/dev/null
}
