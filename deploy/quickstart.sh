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

# The main job: import a real model, search placements on a preset MCM,
# and score the result independently.
mcmpart="$build/client/mcmpart"
out="$build/demo"
mkdir -p "$out"
model=tests/data/graphs/resnet50.onnx
echo "== mcmpart convert $model"
"$mcmpart" convert "$model" -o "$out/resnet50.json"
echo "== mcmpart search resnet50 on ring4 (anneal, 5 s)"
"$mcmpart" search "$out/resnet50.json" --preset ring4 --strategy anneal \
  --time-budget 5s --seed 1 --out "$out/placement.json"
echo
echo "== mcmpart evaluate the placement"
"$mcmpart" evaluate "$out/resnet50.json" "$out/placement.json" --preset ring4
echo
echo "placement written to $out/placement.json"
