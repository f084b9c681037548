// Fuzzes the server's request-to-problem path: bytes as a serialized
// mcmpart.v1.ProblemSpec, the `problem` of every Partition, SubmitJob,
// Evaluate and Repair request. As the server does, the wire scan that
// refuses graphs over --max-nodes before the parse runs first
// (CountGraphNodes), then the parse, Engine::ResolveProblem (graph message
// or ONNX import, preset or hardware message, constraints) and, for a
// problem that resolves, Engine::PrepareSearch on it (budget, feasibility
// check, strategy) for the default strategy, and the evaluator on a placement
// in contiguous blocks (what Engine::Evaluate runs). Nothing runs a search.
//
// Three properties are checked beyond "no crash": the wire scan never
// counts fewer nodes than the parse yields (or the --max-nodes guard before
// the parse could be passed); the resolved graph, sent back as a message
// (Graph::ToProto), resolves again; a placement naming every node once with
// a chip in range is accepted.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "mcmpart/v1/problem.pb.h"
#include "server/engine.h"
#include "server/strategy_factory.h"
#include "server/wire_scan.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "tests/fuzz/harness.h"

namespace mcmpart::server {
namespace {

const Engine& FuzzEngine() {
  static const Engine* engine = [] {
    static const ClassicalStrategyFactory* classical =
        new ClassicalStrategyFactory();
    static const StrategyRegistry* registry = new StrategyRegistry(
        std::vector<const StrategyFactory*>{classical}, "auto");
    EngineOptions options;
    // A tenth of the server's default bounds each input's work.
    options.max_nodes = 10'000;
    return new Engine(options, registry, /*events=*/nullptr);
  }();
  return *engine;
}

}  // namespace
}  // namespace mcmpart::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mcmpart;          // NOLINT: a harness, not a library
  using namespace mcmpart::server;  // NOLINT
  if (size > kMaxFuzzInputBytes) return 0;
  google::protobuf::io::ArrayInputStream stream(data, static_cast<int>(size));
  const int64_t scanned = CountGraphNodes(&stream, {});
  v1::ProblemSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (scanned >= 0 && spec.has_graph() && scanned < spec.graph().nodes_size()) {
    __builtin_trap();  // the guard before the parse under-counted
  }
  const Engine& engine = FuzzEngine();
  absl::StatusOr<ResolvedProblem> resolved = engine.ResolveProblem(spec);
  if (!resolved.ok()) return 0;

  // The search request, with the graph as the message the problem was
  // built from: the same problem without a second ONNX import. A graph
  // the server built must read back (it is what clients get and resend).
  v1::PartitionRequest request;
  *request.mutable_problem() = spec;
  *request.mutable_problem()->mutable_graph() =
      resolved->problem->graph().ToProto();
  absl::StatusOr<JobSpec> job = engine.PrepareSearch(request);
  if (!job.ok() && (absl::IsInvalidArgument(job.status()) ||
                    absl::IsNotFound(job.status()))) {
    __builtin_trap();  // the built graph did not read back
  }

  // What Engine::Evaluate does after resolving, without resolving again.
  const Problem& problem = *resolved->problem;
  const int n = problem.num_nodes();
  const int c = problem.num_chips();
  v1::Placement placement;
  for (int v = 0; v < n; ++v) {
    (*placement.mutable_assignment())[problem.graph().node_name(v)] =
        static_cast<int>(static_cast<int64_t>(v) * c / std::max(1, n));
  }
  absl::StatusOr<Assignment> assignment =
      AssignmentFromProto(problem, placement);
  if (!assignment.ok()) __builtin_trap();  // every node has a valid chip
  Evaluator evaluator(problem);
  (void)evaluator.Evaluate(*assignment);
  return 0;
}
