// SplitOrder speed: turning one proposed placement into the best valid split
// of its order (OrderByChips, then SplitOrder), the decoding step of the rl
// strategy's PPO loop (docs/policy.md, "Decoding"). Proposals are uniformly
// random chips, a fixed set per case, so that runs compare. The hard graphs
// are the bundled copies; results are in docs/benchmarks.md ("Evaluator").
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "solver/constructive.h"
#include "solver/problem.h"
#include "tests/benchmarks/cases.h"

namespace mcmpart {
namespace {

constexpr int kProposals = 64;

struct Case {
  std::unique_ptr<Problem> problem;
  std::vector<std::vector<int>> orders;  // OrderByChips of each proposal
};

// Null when the case cannot be loaded.
const Case* LoadSplitCase(const std::string& name) {
  absl::StatusOr<Problem> p =
      bench::LoadCase(std::string(MCMPART_TEST_DATA_DIR) + "/graphs", name);
  if (!p.ok()) return nullptr;
  auto* c = new Case;
  c->problem = std::make_unique<Problem>(*std::move(p));
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int> chip(0, c->problem->num_chips() - 1);
  for (int i = 0; i < kProposals; ++i) {
    std::vector<int> q(c->problem->num_nodes());
    for (int& v : q) v = chip(rng);
    c->orders.push_back(OrderByChips(c->problem->graph(), q));
  }
  return c;
}

void BM_SplitOrder(benchmark::State& state, const char* name) {
  static auto* cache = new std::map<std::string, const Case*>();
  const Case*& c = (*cache)[name];
  if (c == nullptr) c = LoadSplitCase(name);
  if (c == nullptr) {
    state.SkipWithError("cannot load the case");
    return;
  }
  size_t i = 0;
  int64_t valid = 0;
  for (auto _ : state) {
    absl::StatusOr<Assignment> p =
        SplitOrder(*c->problem, c->orders[i++ % c->orders.size()], nullptr);
    if (p.ok()) ++valid;
    benchmark::DoNotOptimize(p);
  }
  state.counters["valid"] = benchmark::Counter(
      static_cast<double>(valid), benchmark::Counter::kAvgIterations);
}
BENCHMARK_CAPTURE(BM_SplitOrder, moe_e8_ring16_h16, "moe_e8/ring16/h16")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SplitOrder, moe_e8_ring16_h2, "moe_e8/ring16/h2")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SplitOrder, dlrm_criteo_ring8_h8, "dlrm_criteo/ring8/h8")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SplitOrder, unet_ring8_h8, "unet/ring8/h8")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_SplitOrder, inception_v3_ring8_h1, "inception_v3/ring8/h1")
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace mcmpart
