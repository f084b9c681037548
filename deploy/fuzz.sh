#!/usr/bin/env bash
# Fuzzes the input paths (docs/fuzzing.md): builds the libFuzzer harnesses
# of tests/fuzz (the instrumented build of deploy/sanitize-env.sh: clang-14,
# ASan, UBSan) and runs each in turn, niced.
#   deploy/fuzz.sh [SECONDS_PER_HARNESS [HARNESS...]]
#     SECONDS_PER_HARNESS  default 60
#     HARNESS              onnx_import, graph_io, problem_spec (default: all)
#   FUZZ_RUNS=N            N executions per harness instead of a time
#   JOBS=N                 parallel build jobs (default: nproc)
#   FUZZ_NO_BUILD=1        run the harnesses as built
#   FUZZ_PARALLEL=1        run the harnesses at once, not in turn (each is
#                          one process at nice 19: it takes only what the
#                          machine leaves)
# Each harness keeps its corpus in $MCMPART_ASAN_BUILD_DIR/fuzz/corpus/NAME
# (default build-asan; it grows from run to run, seeded from the bundled
# models and the committed regressions) and writes crashing inputs to
# .../fuzz/artifacts/NAME/. Prints per harness: executions, executions per
# second, coverage (edges, features), corpus size, crashes; exits 1 when a
# harness crashed. A crash becomes a regression: its input goes to
# tests/fuzz/regressions/NAME/ (ctest replays it) and the code is fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
harnesses=("$@")
if [ "${#harnesses[@]}" -eq 0 ]; then
  harnesses=(onnx_import graph_io problem_spec)
fi
bash deploy/setup.sh sanitize
. deploy/sanitize-env.sh

if [ -z "${FUZZ_NO_BUILD:-}" ]; then
  start=$(date +%s)
  asan_configure
  targets=()
  for h in "${harnesses[@]}"; do targets+=("${h}_fuzzer"); done
  cmake --build "$asan_build" -j "$asan_jobs" --target fuzz_seeds "${targets[@]}"
  echo "fuzz: build took $(($(date +%s) - start)) s"
fi

# The first finding ends a run (UBSan included); inputs that take over 10 s
# or 2 GB count as findings too. ASan's default checks (leaks included):
# the slower ones deploy/sanitize.sh turns on would cost half the rate.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}:halt_on_error=1"
work="$asan_build/fuzz"
data=tests/data
seeds="$asan_build/tests/fuzz/seeds"
declare -A corpora=(
  [onnx_import]="$data/graphs"
  [graph_io]="$data/worked $seeds/graph_io"
  [problem_spec]="$seeds/problem_spec"
)
# Debian's ONNX backend test models (one or more per operator), when
# installed (deploy/setup.sh sanitize installs them): seeds for the
# importer, collected once into one directory.
testdata=/usr/share/libonnx-testdata/data
if [ -d "$testdata" ]; then
  onnx_seeds="$work/seeds/onnx_testdata"
  if [ ! -d "$onnx_seeds" ]; then
    mkdir -p "$onnx_seeds"
    find "$testdata" -name '*.onnx' -print0 | while IFS= read -r -d '' f; do
      rel="${f#"$testdata"/}"
      cp "$f" "$onnx_seeds/${rel//\//_}"
    done
  fi
  corpora[onnx_import]+=" $onnx_seeds"
fi
if [ -n "${FUZZ_RUNS:-}" ]; then
  limit=(-runs="$FUZZ_RUNS")
else
  limit=(-max_total_time="$seconds")
fi

# fuzz_one NAME: runs one harness; its log is $work/NAME.log.
fuzz_one() {
  local h="$1"
  local bin="$asan_build/tests/fuzz/${h}_fuzzer"
  local corpus="$work/corpus/$h"
  local artifacts="$work/artifacts/$h"
  mkdir -p "$corpus" "$artifacts"
  local t0 rc
  t0=$(date +%s)
  set +e
  # shellcheck disable=SC2086  # the corpora are word lists
  nice -n "${FUZZ_NICE:-19}" "$bin" "${limit[@]}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
    "$corpus" ${corpora[$h]} "tests/fuzz/regressions/$h" >"$work/$h.log" 2>&1
  rc=$?
  set -e
  echo "$rc $(( $(date +%s) - t0 ))" >"$work/$h.rc"
}

if [ -n "${FUZZ_PARALLEL:-}" ]; then
  for h in "${harnesses[@]}"; do fuzz_one "$h" & done
  wait
else
  for h in "${harnesses[@]}"; do fuzz_one "$h"; done
fi

failed=0
total=0
printf '%-14s %12s %8s %7s %7s %7s %7s %s\n' harness executions exec/s cov ft corpus artifacts time_s
for h in "${harnesses[@]}"; do
  log="$work/$h.log"
  artifacts="$work/artifacts/$h"
  read -r rc took <"$work/$h.rc"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  crashes=$(find "$artifacts" -type f | wc -l)
  total=$((total + ${execs:-0}))
  printf '%-14s %12s %8s %7s %7s %7s %7s %s\n' "$h" "${execs:-?}" "${rate:-?}" \
    "${cov:-?}" "${ft:-?}" "$(find "$work/corpus/$h" -type f | wc -l)" \
    "$crashes" "$took"
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "fuzz: $h exited $rc; see $log and $artifacts/" >&2
    grep -m1 -A3 "ERROR:\|runtime error:\|deadly signal" "$log" >&2 || true
  fi
done
echo "fuzz: $total executions in all"
exit "$failed"
