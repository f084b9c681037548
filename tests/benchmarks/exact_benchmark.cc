// The exact search on the bundled real models: per case the downsets it
// reached, the time to the proof and the proved optimum, beside what every
// other strategy reaches in 1 s and 10 s. Results: docs/benchmarks.md
// ("Exact search").
//
//   exact_benchmark [--cases=resnet50/ring4,...] [--strategies] [--hops=N]
//                   [--csv=FILE]
//   exact_benchmark --synthetic    (a 7,000-node chain; 64 wide branches)
//
// Without --strategies only the exact search runs (a few seconds in all).
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "solver/exact.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {
namespace {

constexpr char kDefaultCases[] =
    "resnet50/ring4,resnet50/ring8,googlenet/ring4,googlenet/ring8,"
    "inception_v3/ring8,inception_v3/ring16,mobilenet_v2/ring4,"
    "regnet_y_400mf/ring8,bert_base/ring8,bert_base/ring16,"
    "resnext50_32x4d/ring4,mnasnet1_0/ring4,mobilenet_v3_large/ring4,"
    "efficientnet_b0/ring4,shufflenet_v2/ring8";

absl::StatusOr<Problem> Load(absl::string_view graph, absl::string_view preset,
                             int hops) {
  const std::string path =
      absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", graph, ".onnx");
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(path);
  if (!proto.ok()) return proto.status();
  absl::StatusOr<Graph> g = Graph::FromProto(*proto);
  if (!g.ok()) return g.status();
  absl::StatusOr<v1::Hardware> hw = PresetHardware(preset);
  if (!hw.ok()) return hw.status();
  v1::Constraints c;
  c.set_max_hops(hops);
  return Problem::Create(std::make_shared<const Graph>(*std::move(g)), *hw, c);
}

// Every downset of the graph, counted layer by layer; -1 beyond `cap`.
int64_t CountDownsets(const Graph& g, int64_t cap) {
  const int n = g.num_nodes();
  using Set = std::vector<bool>;
  std::vector<Set> layer = {Set(n, false)};
  int64_t total = 1;
  for (int s = 0; s < n; ++s) {
    absl::flat_hash_set<Set> next;
    for (const Set& j : layer) {
      for (int v = 0; v < n; ++v) {
        if (j[v]) continue;
        bool ready = true;
        for (int u : g.predecessors(v)) ready = ready && j[u];
        if (!ready) continue;
        Set k = j;
        k[v] = true;
        next.insert(std::move(k));
      }
    }
    total += static_cast<int64_t>(next.size());
    if (total > cap) return -1;
    layer.assign(next.begin(), next.end());
  }
  return total;
}

// A 7,000-node chain of blocks with skips inside each block (a deep
// residual network's shape), and 64 independent branches meeting in one
// node (far more downsets than any memory holds).
Problem Synthetic(absl::string_view name) {
  v1::Graph g;
  g.set_name(std::string(name));
  auto add = [&](const std::string& id, std::vector<std::string> inputs,
                 double t, double out) {
    v1::Node* node = g.add_nodes();
    node->set_name(id);
    node->set_op("Op");
    for (std::string& in : inputs) node->add_inputs(std::move(in));
    node->set_time_s(t);
    node->set_param_bytes(4096);
    node->set_output_bytes(out);
  };
  if (name == "chain7000") {
    std::string prev;
    for (int i = 0; i < 7000; ++i) {
      std::vector<std::string> in;
      if (!prev.empty()) in.push_back(prev);
      // Each block of 7 nodes ends in a node that also reads its start.
      if (i % 7 == 6) in.push_back(absl::StrCat("n", i - 6));
      add(absl::StrCat("n", i), in, (1 + i % 5) * 1e-7, 1e5 + (i % 3) * 1e5);
      prev = absl::StrCat("n", i);
    }
  } else {
    std::vector<std::string> ends;
    for (int b = 0; b < 64; ++b) {
      add(absl::StrCat("a", b), {}, (1 + b % 7) * 1e-6, 1e4);
      add(absl::StrCat("b", b), {absl::StrCat("a", b)}, 2e-6, 1e4);
      ends.push_back(absl::StrCat("b", b));
    }
    add("join", ends, 1e-6, 1e3);
  }
  absl::StatusOr<Graph> graph = Graph::FromProto(g);
  return *Problem::Create(std::make_shared<const Graph>(*std::move(graph)),
                          *PresetHardware("ring16"));
}

// The synthetic cases: time to the proof on the chain, and on the wide
// graph a 2 s limit that must end with a placement and a bound.
void RunSynthetic() {
  for (const char* name : {"chain7000", "wide64"}) {
    const Problem problem = Synthetic(name);
    ExactOptions options;
    if (absl::string_view(name) == "wide64") {
      options.time_limit = absl::Seconds(2);
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<ExactResult> r = SolveExact(problem, options);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!r.ok()) {
      std::printf("%-26s %s\n", name, r.status().ToString().c_str());
      continue;
    }
    std::printf(
        "%-26s %9lld %9lld %8.1f %10.2f %14.6f %6s %s, bound %.6f /s (gap "
        "%.4f)\n",
        name, static_cast<long long>(r->downsets),
        static_cast<long long>(r->states), r->peak_bytes / 1048576.0, ms,
        r->best.empty() ? 0.0 : 1.0 / r->bottleneck_s, "",
        std::string(ExactOutcomeName(r->outcome)).c_str(),
        r->bound_s > 0 ? 1.0 / r->bound_s : 0.0,
        r->best.empty() ? 1.0 : 1 - r->bound_s / r->bottleneck_s);
  }
}

int Main(int argc, char** argv) {
  std::string cases = kDefaultCases;
  bool strategies = false;
  int hops = 1;
  std::string csv_path;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--cases=")) {
      cases = std::string(a);
    } else if (a == "--synthetic") {
      RunSynthetic();
      return 0;
    } else if (a == "--strategies") {
      strategies = true;
    } else if (absl::ConsumePrefix(&a, "--hops=")) {
      if (!absl::SimpleAtoi(a, &hops) || hops < 1) {
        std::fprintf(stderr, "--hops takes a number >= 1\n");
        return 2;
      }
    } else if (absl::ConsumePrefix(&a, "--csv=")) {
      csv_path = std::string(a);
    } else {
      std::fprintf(stderr,
                   "usage: exact_benchmark [--cases=graph/preset,...] "
                   "[--strategies] [--hops=N] [--csv=FILE]\n");
      return 2;
    }
  }
  FILE* csv = csv_path.empty() ? nullptr : std::fopen(csv_path.c_str(), "w");
  if (csv != nullptr) {
    std::fprintf(csv,
                 "case,max_hops,downsets,states,peak_mib,proof_ms,"
                 "outcome,optimum_per_s,bound_per_s,chips");
    if (strategies) {
      for (const char* s : {"constructive", "anneal", "random"}) {
        std::fprintf(csv, ",%s_1s,%s_10s", s, s);
      }
    }
    std::fprintf(csv, "\n");
  }
  std::printf("%-26s %9s %9s %9s %8s %10s %14s %6s\n", "case", "downsets",
              "reached", "states", "MiB", "proof ms", "optimum /s", "chips");
  for (absl::string_view c : absl::StrSplit(cases, ',')) {
    std::vector<std::string> parts = absl::StrSplit(c, '/');
    if (parts.size() != 2) {
      std::fprintf(stderr, "case '%s' is not graph/preset\n",
                   std::string(c).c_str());
      return 2;
    }
    absl::StatusOr<Problem> problem = Load(parts[0], parts[1], hops);
    if (!problem.ok()) {
      std::fprintf(stderr, "%s: %s\n", std::string(c).c_str(),
                   problem.status().ToString().c_str());
      return 1;
    }
    const absl::Time start = absl::Now();
    absl::StatusOr<ExactResult> r = SolveExact(*problem);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!r.ok()) {
      std::printf("%-26s %s\n", std::string(c).c_str(),
                  r.status().ToString().c_str());
      continue;
    }
    int chips = 0;
    for (int p : r->best) chips = std::max(chips, p + 1);
    const double opt = r->best.empty() ? 0 : 1.0 / r->bottleneck_s;
    const int64_t all = CountDownsets(problem->graph(), 2'000'000);
    std::printf("%-26s %9lld %9lld %9lld %8.1f %10.2f %14.6f %6d %s\n",
                std::string(c).c_str(), static_cast<long long>(all),
                static_cast<long long>(r->downsets),
                static_cast<long long>(r->states), r->peak_bytes / 1048576.0,
                ms, opt, chips,
                std::string(ExactOutcomeName(r->outcome)).c_str());
    if (csv != nullptr) {
      std::fprintf(csv, "%s,%d,%lld,%lld,%lld,%.1f,%.3f,%s,%.6f,%.6f,%d",
                   std::string(c).c_str(), hops, static_cast<long long>(all),
                   static_cast<long long>(r->downsets),
                   static_cast<long long>(r->states), r->peak_bytes / 1048576.0,
                   ms, std::string(ExactOutcomeName(r->outcome)).c_str(), opt,
                   r->bound_s > 0 ? 1.0 / r->bound_s : 0.0, chips);
    }
    if (strategies) {
      for (const char* name : {"constructive", "anneal", "random"}) {
        for (int seconds : {1, 10}) {
          StrategyOptions o;
          o.seed = 1;
          absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy(name, o);
          Budget b;
          b.time = absl::Seconds(seconds);
          StopToken stop;
          absl::StatusOr<StrategyResult> sr =
              (*s)->Run(*problem, b, stop, nullptr);
          const double t =
              sr.ok() && !sr->best.empty() ? sr->throughput_per_s : 0.0;
          std::printf("    %-12s %2d s: %12.1f /s  (%.4f of the optimum)\n",
                      name, seconds, t, opt > 0 ? t / opt : 0.0);
          if (csv != nullptr) std::fprintf(csv, ",%.6f", t);
        }
      }
    }
    if (csv != nullptr) std::fprintf(csv, "\n");
    std::fflush(stdout);
  }
  if (csv != nullptr) std::fclose(csv);
  return 0;
}

}  // namespace
}  // namespace mcmpart

int main(int argc, char** argv) { return mcmpart::Main(argc, argv); }
