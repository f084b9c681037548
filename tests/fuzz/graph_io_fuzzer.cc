// Fuzzes the readers of the files users hand to mcmpart (solver/graph_io.h):
// each input is tried as all four of them, as the CLI reads them:
//   * a graph in JSON (ParseJson into mcmpart.v1.Graph) and in binary
//     protobuf (the .pb form), each then built into the IR (Graph::FromProto)
//     and, when valid, placed on the ring4 preset and evaluated;
//   * hardware in JSON (Hardware::FromProto, then a Problem with the worked
//     example's graph, docs/problem.md);
//   * a placement in JSON (unknown keys ignored, as LoadPlacementFile does),
//     checked against the worked example's problem and evaluated.
// Every input must end in a value or an error status.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "tests/fuzz/harness.h"

namespace mcmpart {
namespace {

// tests/data/worked/graph.json and hardware.json.
constexpr char kWorkedGraph[] =
    R"({"name": "worked", "inputs": ["x"], "nodes": [
 {"name": "a", "op": "MatMul", "inputs": ["x"], "flops": 100, "param_bytes": 10, "output_bytes": 20},
 {"name": "b", "op": "Relu", "inputs": ["a"], "flops": 200, "output_bytes": 30},
 {"name": "c", "op": "Gemm", "inputs": ["a", "a"], "flops": 50, "param_bytes": 900, "output_bytes": 10},
 {"name": "d", "op": "Add", "inputs": ["b", "c"], "flops": 300, "output_bytes": 5},
 {"name": "e", "op": "Softmax", "inputs": ["d", "a"], "output_bytes": 8, "time_s": 2.5}]})";
constexpr char kWorkedHardware[] = R"({"name": "tiny3", "chips": [
 {"sram_bytes": 1000, "peak_flops": 100, "mem_bandwidth": 1000},
 {"sram_bytes": 1000, "peak_flops": 100, "mem_bandwidth": 1000},
 {"sram_bytes": 1000, "peak_flops": 100, "mem_bandwidth": 1000}],
 "links": [{"link_bandwidth": 10, "link_latency_s": 0.5},
           {"link_bandwidth": 10, "link_latency_s": 0.5}]})";

struct Worked {
  std::shared_ptr<const Graph> graph;
  std::unique_ptr<Problem> problem;
};

const Worked& WorkedExample() {
  static const Worked* worked = [] {
    auto* w = new Worked();
    v1::Graph g;
    v1::Hardware hw;
    if (!ParseJson(kWorkedGraph, &g).ok() ||
        !ParseJson(kWorkedHardware, &hw).ok()) {
      __builtin_trap();
    }
    absl::StatusOr<Graph> graph = Graph::FromProto(g);
    if (!graph.ok()) __builtin_trap();
    w->graph = std::make_shared<const Graph>(*std::move(graph));
    absl::StatusOr<Problem> p = Problem::Create(w->graph, hw);
    if (!p.ok()) __builtin_trap();
    w->problem = std::make_unique<Problem>(*std::move(p));
    return w;
  }();
  return *worked;
}

// A valid graph message: built, placed in contiguous blocks of its
// topological order on ring4 and evaluated.
void BuildAndEvaluate(const v1::Graph& message) {
  absl::StatusOr<Graph> graph = Graph::FromProto(message);
  if (!graph.ok()) return;
  static const v1::Hardware* ring4 = new v1::Hardware(*PresetHardware("ring4"));
  absl::StatusOr<Problem> problem =
      Problem::Create(std::make_shared<const Graph>(*std::move(graph)), *ring4);
  if (!problem.ok()) return;
  const int n = problem->num_nodes();
  const int c = problem->num_chips();
  Assignment blocks(n);
  for (int v = 0; v < n; ++v) {
    blocks[v] = static_cast<int>(static_cast<int64_t>(v) * c / std::max(1, n));
  }
  Evaluator evaluator(*problem);
  (void)evaluator.Evaluate(blocks);
}

}  // namespace
}  // namespace mcmpart

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcmpart;  // NOLINT: a harness, not a library
  if (size > kMaxFuzzInputBytes) return 0;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  const Worked& worked = WorkedExample();

  // A JSON document without the key a reader needs is an error, or an
  // empty message, for it ("no nodes", "no chips", a placement missing
  // every node): that parse is skipped, which keeps each input near one
  // full JSON parse.
  v1::Graph graph;
  if (absl::StrContains(bytes, "nodes") && ParseJson(bytes, &graph).ok()) {
    BuildAndEvaluate(graph);
  }
  v1::Graph binary;
  if (binary.ParseFromArray(data, static_cast<int>(size))) {
    BuildAndEvaluate(binary);
  }

  v1::Hardware hardware;
  if (absl::StrContains(bytes, "chips") && ParseJson(bytes, &hardware).ok() &&
      Hardware::FromProto(hardware).ok()) {
    (void)Problem::Create(worked.graph, hardware);
  }

  v1::Placement placement;
  if (absl::StrContains(bytes, "assignment") &&
      ParseJson(bytes, &placement, /*ignore_unknown=*/true).ok()) {
    absl::StatusOr<Assignment> a =
        AssignmentFromProto(*worked.problem, placement);
    if (a.ok()) {
      Evaluator evaluator(*worked.problem);
      (void)evaluator.Evaluate(*a);
    }
  }
  return 0;
}
