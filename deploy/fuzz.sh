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
#   FUZZ_TIMEOUT=S         an input running S seconds is a finding (60)
#   FUZZ_PARALLEL=1        run the harnesses at once, not in turn (each is
#                          one process at nice 19: it takes only what the
#                          machine leaves)
# Each harness keeps its corpus in $MCMPART_ASAN_BUILD_DIR/fuzz/corpus/NAME
# (default build-asan; it grows from run to run, seeded from the bundled
# models and the committed regressions) and writes crashing inputs to
# .../fuzz/artifacts/NAME/ (a harness that crashes is started again for the
# time left). Prints per harness: executions, executions per second,
# coverage (edges, features), corpus size, findings; exits 1 when a harness
# crashed. A finding becomes a regression: its input goes to
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

# The first finding ends a run (UBSan included); inputs that take over
# FUZZ_TIMEOUT seconds (default 60: wall time, and at nice 19 on a busy
# machine an input of half a second once waited over 10 s for a core) or
# 2 GB count as findings too. ASan's default checks (leaks included):
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
# The longest input each harness makes: near the bundled seeds it mutates
# (most ONNX models here are under 64 KiB; the larger ones are cut, which
# the importer must survive too), so that executions stay fast.
declare -A max_len=([onnx_import]=65536 [graph_io]=16384 [problem_spec]=32768)

# fuzz_one NAME: fuzzes one harness for the time (or FUZZ_RUNS) given. A
# crash ends libFuzzer; its input is kept and the harness is started again
# for the time left, so that one finding does not end the run. Writes
# "EXECUTIONS CRASHES SECONDS" to $work/NAME.result; logs in $work/NAME.*.log.
fuzz_one() {
  local h="$1"
  local bin="$asan_build/tests/fuzz/${h}_fuzzer"
  local corpus="$work/corpus/$h"
  local artifacts="$work/artifacts/$h"
  mkdir -p "$corpus" "$artifacts"
  rm -f "$work/$h".*.log
  local t0 left rc round=0 execs=0 crashes=0 n limit
  t0=$(date +%s)
  while true; do
    if [ -n "${FUZZ_RUNS:-}" ]; then
      limit=(-runs="$FUZZ_RUNS")
    else
      left=$((seconds - ($(date +%s) - t0)))
      [ "$left" -gt 0 ] || break
      limit=(-max_total_time="$left")
    fi
    round=$((round + 1))
    local log="$work/$h.$round.log"
    set +e
    # shellcheck disable=SC2086  # the corpora are word lists
    nice -n "${FUZZ_NICE:-19}" "$bin" "${limit[@]}" -timeout="${FUZZ_TIMEOUT:-60}" \
      -rss_limit_mb=2048 -max_len="${max_len[$h]}" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" \
      "$corpus" ${corpora[$h]} "tests/fuzz/regressions/$h" >"$log" 2>&1
    rc=$?
    set -e
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=$((execs + ${n:-0}))
    if [ "$rc" -ne 0 ]; then
      crashes=$((crashes + 1))
      echo "fuzz: $h: finding in $log" >&2
      grep -m1 -A3 "ERROR:\|runtime error:\|deadly signal\|Test unit written" \
        "$log" >&2 || true
    fi
    [ -z "${FUZZ_RUNS:-}" ] || break
    # A harness that cannot start would loop: give up after 20 findings.
    [ "$crashes" -lt 20 ] || break
  done
  echo "$execs $crashes $(($(date +%s) - t0))" >"$work/$h.result"
}

if [ -n "${FUZZ_PARALLEL:-}" ]; then
  for h in "${harnesses[@]}"; do fuzz_one "$h" & done
  wait
else
  for h in "${harnesses[@]}"; do fuzz_one "$h"; done
fi

failed=0
total=0
printf '%-14s %12s %8s %7s %7s %7s %8s %s\n' harness executions exec/s cov ft corpus findings time_s
for h in "${harnesses[@]}"; do
  read -r execs crashes took <"$work/$h.result"
  last=$(ls -v "$work/$h".*.log | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$last" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$last" | tail -1 | cut -d' ' -f2)
  total=$((total + execs))
  printf '%-14s %12s %8s %7s %7s %7s %8s %s\n' "$h" "$execs" \
    "$((execs / (took > 0 ? took : 1)))" "${cov:-?}" "${ft:-?}" \
    "$(find "$work/corpus/$h" -type f | wc -l)" "$crashes" "$took"
  [ "$crashes" -eq 0 ] || failed=1
done
echo "fuzz: $total executions in all; findings (inputs) in $work/artifacts/"
exit "$failed"
