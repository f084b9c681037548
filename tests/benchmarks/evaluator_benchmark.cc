// Evaluator speed: Evaluator::Score and Evaluator::IsValid on a placement of
// a synthetic 2,000-node layered DAG (no importer needed) and on bert_large,
// plus the two search baselines that run on top of it (ConstructPlacement,
// and anneal's cost per sample). Results and the command line are in
// docs/benchmarks.md ("Evaluator").
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "solver/anneal.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/placement.h"
#include "solver/problem.h"

namespace mcmpart {
namespace {

constexpr int kLayers = 100;
constexpr int kWidth = 20;  // 100 x 20 = 2,000 nodes
constexpr int kChips = 8;

// A layered DAG like a wide CNN: each node reads two nodes of the previous
// layer and, one time in ten, one of three layers back (a skip connection).
// Sizes are in the range of the shared models; the hardware is ring8 with
// SRAM large enough for any contiguous split, so the placement is valid and
// IsValid runs to the end.
const Problem& Synthetic() {
  static const Problem* problem = [] {
    std::mt19937_64 rng(1);
    auto unit = [&rng] { return (rng() >> 11) * 0x1.0p-53; };
    v1::Graph g;
    g.set_name("layered2000");
    for (int layer = 0; layer < kLayers; ++layer) {
      for (int i = 0; i < kWidth; ++i) {
        v1::Node* node = g.add_nodes();
        node->set_name(absl::StrCat("l", layer, "_", i));
        node->set_op("Conv");
        node->set_flops(1e6 + 1e9 * unit());
        node->set_param_bytes(std::round(1e5 * unit()));
        node->set_output_bytes(std::round(1e3 + 1e5 * unit()));
        if (layer == 0) continue;
        for (int k = 0; k < 2; ++k) {
          node->add_inputs(absl::StrCat("l", layer - 1, "_", rng() % kWidth));
        }
        if (layer >= 3 && unit() < 0.1) {
          node->add_inputs(absl::StrCat("l", layer - 3, "_", rng() % kWidth));
        }
      }
    }
    v1::Hardware hw = *PresetHardware("ring8");
    for (v1::Chip& chip : *hw.mutable_chips()) chip.set_sram_bytes(1e12);
    absl::StatusOr<Graph> graph = Graph::FromProto(g);
    return new Problem(
        *Problem::Create(std::make_shared<const Graph>(*std::move(graph)), hw));
  }();
  return *problem;
}

// The constructive placement (valid), or contiguous blocks of equal node
// count if there is none.
Assignment Placement(const Problem& problem) {
  absl::StatusOr<Assignment> constructed = ConstructPlacement(problem);
  if (constructed.ok()) return *std::move(constructed);
  Assignment p(problem.num_nodes());
  const int chips = problem.num_chips();
  for (int v = 0; v < problem.num_nodes(); ++v) {
    p[v] =
        static_cast<int>(static_cast<int64_t>(v) * chips / problem.num_nodes());
  }
  return p;
}

// bert_large on ring16 with SRAM raised so that its embedding fits (the
// preset's 96 MiB do not): a real graph's shape for the evaluator. Null
// when the graph cannot be loaded.
const Problem* BertLarge() {
  static const Problem* problem = []() -> const Problem* {
    absl::StatusOr<v1::Graph> proto = LoadGraphFile(
        std::string(MCMPART_TEST_DATA_DIR) + "/graphs/bert_large.onnx");
    if (!proto.ok()) return nullptr;
    absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
    if (!graph.ok()) return nullptr;
    v1::Hardware hw = *PresetHardware("ring16");
    for (v1::Chip& chip : *hw.mutable_chips()) chip.set_sram_bytes(1e12);
    absl::StatusOr<Problem> p =
        Problem::Create(std::make_shared<const Graph>(*std::move(graph)), hw);
    return p.ok() ? new Problem(*std::move(p)) : nullptr;
  }();
  return problem;
}

void BM_Score(benchmark::State& state, const Problem* problem) {
  if (problem == nullptr) {
    state.SkipWithError("graph not available");
    return;
  }
  Evaluator evaluator(*problem);
  const Assignment p = Placement(*problem);
  for (auto _ : state) {
    benchmark::DoNotOptimize(evaluator.Score(p).throughput_per_s);
  }
  state.counters["nodes"] = problem->num_nodes();
  state.counters["edges"] = problem->graph().num_edges();
}

void BM_IsValid(benchmark::State& state, const Problem* problem) {
  if (problem == nullptr) {
    state.SkipWithError("graph not available");
    return;
  }
  Evaluator evaluator(*problem);
  const Assignment p = Placement(*problem);
  if (!evaluator.IsValid(p)) {
    state.SkipWithError("the benchmark placement is not valid");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(evaluator.IsValid(p));
  state.counters["nodes"] = problem->num_nodes();
}

BENCHMARK_CAPTURE(BM_Score, layered2000, &Synthetic())
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_IsValid, layered2000, &Synthetic())
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Score, bert_large, BertLarge())
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_IsValid, bert_large, BertLarge())
    ->Unit(benchmark::kMicrosecond);

// The constructive placement of the 2,000-node DAG on 8 chips.
void BM_ConstructPlacement(benchmark::State& state) {
  const Problem& problem = Synthetic();
  for (auto _ : state) {
    absl::StatusOr<Assignment> p = ConstructPlacement(problem);
    if (!p.ok()) {
      state.SkipWithError(std::string(p.status().message()).c_str());
      return;
    }
    benchmark::DoNotOptimize(p->data());
  }
}
BENCHMARK(BM_ConstructPlacement)->Unit(benchmark::kMillisecond);

// Anneal on the 2,000-node DAG: a run of 20,000 samples (including the
// constructive start); the per_sample counter is the cost of one scored
// candidate.
void BM_AnnealSamples(benchmark::State& state) {
  const Problem& problem = Synthetic();
  constexpr int64_t kSamples = 20'000;
  Budget budget;
  budget.samples = kSamples;
  budget.time = absl::Seconds(60);
  StopToken stop;
  int64_t samples = 0;
  for (auto _ : state) {
    Anneal anneal(StrategyOptions{1});
    absl::StatusOr<StrategyResult> r =
        anneal.Run(problem, budget, stop, nullptr);
    if (!r.ok()) {
      state.SkipWithError(std::string(r.status().message()).c_str());
      return;
    }
    samples += r->samples;
  }
  state.counters["per_sample"] = benchmark::Counter(
      static_cast<double>(samples),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_AnnealSamples)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mcmpart
