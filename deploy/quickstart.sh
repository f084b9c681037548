#!/usr/bin/env bash
# The README's two commands:
#   deploy/quickstart.sh demo   install, build, run the main job on a bundled model
#   deploy/quickstart.sh test   install, build, run every test
# Both are idempotent: packages already installed and an existing build are
# reused. MCMPART_BUILD_DIR chooses the build directory (default: build).
set -euo pipefail

cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
  demo|test) ;;
  *) echo "usage: deploy/quickstart.sh demo|test" >&2; exit 2 ;;
esac

bash deploy/setup.sh

build="${MCMPART_BUILD_DIR:-build}"
jobs="$(nproc)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$jobs"

if [ "$mode" = test ]; then
  exec ctest --test-dir "$build" --output-on-failure -j "$jobs"
fi

# The main job: start the server with the shipped policy, partition a
# bundled real model through the CLI, and report on the result.
mcmpart="$build/client/mcmpart"
server_bin="$build/server/mcmpart-server"
port="${MCMPART_DEMO_PORT:-50051}"
out="$build/demo"
mkdir -p "$out"
model=tests/data/graphs/resnet50.onnx

# The state store as in the container image: an SQLite file (here in the
# demo directory), so that a restarted demo server keeps its jobs and result
# cache (docs/deploy.md, "State store"). Set MCMPART_SERVER_STORE to choose
# another (memory, redis://HOST:PORT/DB).
store="${MCMPART_SERVER_STORE:-sqlite:$out/state.db}"
echo "== starting mcmpart-server on localhost:$port (log: $out/server.log, store: $store)"
MCMPART_SERVER_STORE="$store" "$server_bin" --host 127.0.0.1 --port "$port" \
  --metrics-host 127.0.0.1 --metrics-port 0 >"$out/server.log" 2>&1 &
server_pid=$!
trap 'kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true' EXIT
export MCMPART_SERVER="localhost:$port"
for _ in $(seq 1 100); do
  if "$mcmpart" policies >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "mcmpart-server exited; see $out/server.log" >&2
    cat "$out/server.log" >&2
    exit 1
  fi
  sleep 0.2
done
"$mcmpart" policies
echo
echo "== mcmpart partition $model --preset ring4 (10 s)"
"$mcmpart" partition "$model" --preset ring4 --time-budget 10s --seed 1 \
  --out "$out/placement.json"
echo
echo "== mcmpart report"
"$mcmpart" report "$model" "$out/placement.json" --preset ring4 \
  --svg "$out/placement.svg" --dot "$out/placement.dot" >/dev/null
echo "placement: $out/placement.json  picture: $out/placement.svg  graph: $out/placement.dot"
