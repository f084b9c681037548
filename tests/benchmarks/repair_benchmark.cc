// Repair speed on the shared graphs: time to a first valid placement and to
// a proved (or limit-bounded) best, for uniformly random candidates and for
// near-valid ones (a valid placement with 20 nodes moved to a neighbouring
// chip). Results and the command line are in docs/benchmarks.md ("Repair").
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"
#include "solver/repair.h"

namespace mcmpart {
namespace {

constexpr int kMovedNodes = 20;

// Problems are loaded once per (graph, hardware) and kept for the process.
const Problem* LoadProblem(const std::string& graph, const std::string& hw) {
  static auto* cache = new std::map<std::string, std::unique_ptr<Problem>>();
  const std::string key = graph + "/" + hw;
  auto it = cache->find(key);
  if (it != cache->end()) return it->second.get();
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(
      std::string(MCMPART_TEST_DATA_DIR) + "/graphs/" + graph + ".onnx");
  if (!proto.ok()) return nullptr;
  absl::StatusOr<Graph> g = Graph::FromProto(*proto);
  absl::StatusOr<v1::Hardware> preset = PresetHardware(hw);
  if (!g.ok() || !preset.ok()) return nullptr;
  absl::StatusOr<Problem> p =
      Problem::Create(std::make_shared<const Graph>(*std::move(g)), *preset);
  if (!p.ok()) return nullptr;
  return (*cache)[key] = std::make_unique<Problem>(*std::move(p)),
         cache->at(key).get();
}

std::vector<int> RandomCandidate(const Problem& p, std::mt19937_64& rng) {
  std::uniform_int_distribution<int> chip(0, p.num_chips() - 1);
  std::vector<int> q(p.num_nodes());
  for (int& c : q) c = chip(rng);
  return q;
}

// `base` with kMovedNodes distinct random nodes moved one chip up or down.
std::vector<int> NearValid(const Problem& p, const std::vector<int>& base,
                           std::mt19937_64& rng) {
  std::vector<int> q = base;
  std::vector<int> ids(p.num_nodes());
  for (int v = 0; v < p.num_nodes(); ++v) ids[v] = v;
  std::shuffle(ids.begin(), ids.end(), rng);
  for (int i = 0; i < kMovedNodes && i < p.num_nodes(); ++i) {
    const int v = ids[i];
    const bool up = (rng() & 1) != 0;
    int c = q[v] + (up ? 1 : -1);
    if (c < 0 || c >= p.num_chips()) c = q[v] + (up ? -1 : 1);
    if (c >= 0 && c < p.num_chips()) q[v] = c;
  }
  return q;
}

// Node v on chip floor(v * C / n): on a graph that fills the chips, its
// repair is a placement with every chip nearly full.
std::vector<int> Balanced(const Problem& p) {
  std::vector<int> q(p.num_nodes());
  for (int v = 0; v < p.num_nodes(); ++v) {
    q[v] = static_cast<int>(static_cast<int64_t>(v) * p.num_chips() /
                            p.num_nodes());
  }
  return q;
}

enum class Kind { kRandom, kNearValid, kNearTight };

void BM_Repair(benchmark::State& state, std::string graph, std::string hw,
               Kind kind) {
  const bool near_valid = kind != Kind::kRandom;
  const Problem* problem = LoadProblem(graph, hw);
  if (problem == nullptr) {
    state.SkipWithError("cannot load the graph (is the ONNX importer built?)");
    return;
  }
  std::mt19937_64 rng(7);
  std::vector<int> base;
  if (near_valid) {
    absl::StatusOr<RepairResult> first =
        Repair(*problem,
               kind == Kind::kNearTight ? Balanced(*problem)
                                        : RandomCandidate(*problem, rng),
               {});
    if (!first.ok()) {
      state.SkipWithError(std::string(first.status().message()).c_str());
      return;
    }
    base = first->placement;
  }
  RepairOptions options;
  options.time_limit = absl::Seconds(2);
  double first_ms = 0, best_ms = 0, proved = 0, distance = 0, fails = 0;
  int64_t runs = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<int> q = near_valid ? NearValid(*problem, base, rng)
                                    : RandomCandidate(*problem, rng);
    state.ResumeTiming();
    absl::StatusOr<RepairResult> r = Repair(*problem, q, {}, options);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    first_ms += absl::ToDoubleMilliseconds(r->first_solution_time);
    best_ms += absl::ToDoubleMilliseconds(r->solve_time);
    proved += r->optimal ? 1 : 0;
    distance += r->distance;
    fails += static_cast<double>(r->failures);
    ++runs;
  }
  if (runs == 0) return;
  state.counters["first_ms"] = first_ms / runs;
  state.counters["best_ms"] = best_ms / runs;
  state.counters["proved"] = proved / runs;
  state.counters["distance"] = distance / runs;
  state.counters["fails"] = fails / runs;
  state.counters["nodes"] = problem->num_nodes();
}

const bool kRegistered = [] {
  const std::pair<const char*, const char*> cases[] = {
      {"bert_base", "ring8"},
      {"bert_base", "ring16"},
      {"resnet50", "ring4"},
      {"inception_v3", "ring8"},
  };
  for (const auto& [graph, hw] : cases) {
    for (Kind kind : {Kind::kNearValid, Kind::kNearTight, Kind::kRandom}) {
      const char* name = kind == Kind::kRandom      ? "/random"
                         : kind == Kind::kNearValid ? "/near_valid"
                                                    : "/near_tight";
      benchmark::RegisterBenchmark(
          (std::string("BM_Repair/") + graph + "/" + hw + name).c_str(),
          BM_Repair, graph, hw, kind)
          ->Iterations(10)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  }
  return true;
}();

}  // namespace
}  // namespace mcmpart
