// How much better than the classical baselines can any placement be on the
// policy benchmark's cases? Every valid placement (max_hops = 1) is a
// contiguous split of the node order it induces (solver/constructive.h,
// OrderOfPlacement), so searching orders and splitting each exactly covers
// the whole space. This samples random topological orders (Kahn's algorithm
// taking a random ready node, or with a random probability the newest one,
// which keeps branches together) for a fixed time per case and reports the
// best split found next to the constructive split and simulated annealing
// with the same time. Results: docs/benchmarks.md ("Policy", "Headroom").
//
//   headroom_benchmark [--seconds=20] [--cases=bert_base/ring8,...]
#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {
namespace {

constexpr char kDefaultCases[] =
    "bert_base/ring8,resnet50/ring4,inception_v3/ring8,efficientnet_b0/ring4,"
    "mobilenet_v2/ring4,shufflenet_v2/ring8,regnet_y_400mf/ring8,"
    "googlenet/ring4";

// A random topological order. With probability `newest` the most recently
// readied node goes next (depth-first), else a uniformly random ready one.
std::vector<int> RandomOrder(const Graph& g, std::mt19937_64& rng) {
  const int n = g.num_nodes();
  std::uniform_real_distribution<double> unif(0.0, 1.0);
  const double newest = unif(rng);
  std::vector<int> indegree(n), ready, order;
  order.reserve(n);
  for (int v = 0; v < n; ++v) {
    indegree[v] = static_cast<int>(g.predecessors(v).size());
    if (indegree[v] == 0) ready.push_back(v);
  }
  while (!ready.empty()) {
    const size_t i =
        unif(rng) < newest ? ready.size() - 1 : rng() % ready.size();
    const int v = ready[i];
    ready[i] = ready.back();
    ready.pop_back();
    order.push_back(v);
    for (int w : g.successors(v)) {
      if (--indegree[w] == 0) ready.push_back(w);
    }
  }
  return order;
}

int Main(int argc, char** argv) {
  std::string cases = kDefaultCases;
  double seconds = 20;
  for (int i = 1; i < argc; ++i) {
    std::vector<std::string> kv =
        absl::StrSplit(argv[i], absl::MaxSplits('=', 1));
    if (kv.size() == 2 && kv[0] == "--cases") {
      cases = kv[1];
    } else if (kv.size() == 2 && kv[0] == "--seconds" &&
               absl::SimpleAtod(kv[1], &seconds) && seconds > 0) {
    } else {
      std::fprintf(stderr,
                   "usage: headroom_benchmark [--seconds=S] "
                   "[--cases=graph/preset,...]\n");
      return 2;
    }
  }
  std::printf(
      "| graph/hardware | constructive | anneal %gs | random orders %gs "
      "| orders with a valid split | best known over constructive "
      "|\n|---|---|---|---|---|---|\n",
      seconds, seconds);
  for (const std::string& c :
       std::vector<std::string>(absl::StrSplit(cases, ','))) {
    std::vector<std::string> gh = absl::StrSplit(c, '/');
    absl::StatusOr<v1::Graph> proto = LoadGraphFile(
        absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", gh[0], ".onnx"));
    if (gh.size() != 2 || !proto.ok()) {
      std::fprintf(stderr, "%s: cannot load\n", c.c_str());
      return 1;
    }
    absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
    absl::StatusOr<v1::Hardware> hw = PresetHardware(gh[1]);
    if (!graph.ok() || !hw.ok()) return 1;
    absl::StatusOr<Problem> problem =
        Problem::Create(std::make_shared<const Graph>(*std::move(graph)), *hw);
    if (!problem.ok()) return 1;
    Evaluator evaluator(*problem);
    absl::StatusOr<Assignment> constructive = ConstructPlacement(*problem);
    if (!constructive.ok()) return 1;
    const double base = evaluator.Score(*constructive).throughput_per_s;

    StrategyOptions options;
    options.seed = 1;
    absl::StatusOr<std::unique_ptr<Strategy>> anneal =
        MakeStrategy("anneal", options);
    if (!anneal.ok()) return 1;
    Budget budget;
    budget.time = absl::Seconds(seconds);
    StopToken stop;
    absl::StatusOr<StrategyResult> annealed =
        (*anneal)->Run(*problem, budget, stop, nullptr);
    if (!annealed.ok()) return 1;

    std::mt19937_64 rng(1);
    double best = 0;    // the best split of a random order alone
    int64_t split = 0;  // orders with a valid split
    const absl::Time end = absl::Now() + absl::Seconds(seconds);
    while (absl::Now() < end) {
      absl::StatusOr<Assignment> p =
          SplitOrder(*problem, RandomOrder(problem->graph(), rng), nullptr);
      if (!p.ok()) continue;
      ++split;
      best = std::max(best, evaluator.Score(*p).throughput_per_s);
    }
    const double best_known =
        std::max({base, best, annealed->throughput_per_s});
    std::printf("| %s | %.1f | %.1f | %.1f | %lld | %+.2f%% |\n", c.c_str(),
                base, annealed->throughput_per_s, best,
                static_cast<long long>(split), 100 * (best_known / base - 1));
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace mcmpart

int main(int argc, char** argv) { return mcmpart::Main(argc, argv); }
