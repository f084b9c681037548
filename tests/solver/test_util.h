// Small builders shared by the solver tests.
#ifndef MCMPART_TESTS_SOLVER_TEST_UTIL_H_
#define MCMPART_TESTS_SOLVER_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/anneal.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart::testing {

inline v1::Node* AddNode(v1::Graph& g, const std::string& name,
                         std::initializer_list<const char*> inputs,
                         double flops, double param_bytes, double output_bytes,
                         double time_s = 0) {
  v1::Node* n = g.add_nodes();
  n->set_name(name);
  n->set_op("Op");
  for (const char* in : inputs) n->add_inputs(in);
  n->set_flops(flops);
  n->set_param_bytes(param_bytes);
  n->set_output_bytes(output_bytes);
  n->set_time_s(time_s);
  return n;
}

// C identical chips and C - 1 identical links.
inline v1::Hardware UniformHardware(int chips, double sram, double peak_flops,
                                    double mem_bandwidth, double link_bandwidth,
                                    double link_latency_s) {
  v1::Hardware hw;
  hw.set_name("test");
  for (int i = 0; i < chips; ++i) {
    v1::Chip* c = hw.add_chips();
    c->set_sram_bytes(sram);
    c->set_peak_flops(peak_flops);
    c->set_mem_bandwidth(mem_bandwidth);
  }
  for (int k = 0; k + 1 < chips; ++k) {
    v1::Link* l = hw.add_links();
    l->set_link_bandwidth(link_bandwidth);
    l->set_link_latency_s(link_latency_s);
  }
  return hw;
}

inline std::shared_ptr<const Graph> MustBuild(const v1::Graph& proto) {
  auto g = Graph::FromProto(proto);
  if (!g.ok()) std::abort();
  return std::make_shared<const Graph>(*std::move(g));
}

// Thirty independent branches (1..7 us, 1000 parameter bytes, 10 output
// bytes each) meeting in one node, on eight roomy chips: about a billion
// downsets, far more than the exact search holds.
inline absl::StatusOr<Problem> WideFanInProblem() {
  v1::Graph g;
  v1::Node* join = nullptr;
  for (int i = 0; i < 30; ++i) {
    AddNode(g, "t" + std::to_string(i), {}, 0, 1000, 10, (1 + i % 7) * 1e-6);
  }
  join = AddNode(g, "join", {}, 0, 0, 1, 1e-6);
  for (int i = 0; i < 30; ++i) join->add_inputs("t" + std::to_string(i));
  return Problem::Create(MustBuild(g),
                         UniformHardware(8, 1e9, 1e12, 1e12, 1e9, 1e-7));
}

// ---------------------------------------------------------------------------
// Shared by the strategy tests (constructive_test.cc, anneal_test.cc,
// strategy_test.cc).

// Hand-made hardware: compute-bound nodes take flops / 1e12 s; memory
// bandwidth is high enough never to bind; a link moves 1e9 B/s.
inline constexpr double kPeak = 1e12;
inline constexpr double kLinkBandwidth = 1e9;
inline constexpr double kLatency = 1e-6;

inline v1::Hardware Ring(int chips, double sram) {
  v1::Hardware hw;
  hw.set_name(absl::StrCat("test", chips));
  for (int c = 0; c < chips; ++c) {
    v1::Chip* chip = hw.add_chips();
    chip->set_sram_bytes(sram);
    chip->set_peak_flops(kPeak);
    chip->set_mem_bandwidth(1e18);
  }
  for (int k = 0; k + 1 < chips; ++k) {
    v1::Link* link = hw.add_links();
    link->set_link_bandwidth(kLinkBandwidth);
    link->set_link_latency_s(kLatency);
  }
  return hw;
}

// As AddNode above, with the inputs last and as strings, for graphs built in
// loops.
inline v1::Node* AddNode(v1::Graph* g, const std::string& name, double flops,
                         double param_bytes, double output_bytes,
                         const std::vector<std::string>& inputs = {}) {
  v1::Node* node = g->add_nodes();
  node->set_name(name);
  node->set_op("Op");
  node->set_flops(flops);
  node->set_param_bytes(param_bytes);
  node->set_output_bytes(output_bytes);
  for (const std::string& in : inputs) node->add_inputs(in);
  return node;
}

// A chain n0 -> n1 -> ... with the given flops (in GFLOP, so a node takes
// flops milliseconds), params and 1 KB outputs.
inline v1::Graph Chain(const std::vector<double>& gflops,
                       const std::vector<double>& params = {}) {
  v1::Graph g;
  g.set_name("chain");
  for (size_t i = 0; i < gflops.size(); ++i) {
    std::vector<std::string> in;
    if (i > 0) in.push_back(absl::StrCat("n", i - 1));
    AddNode(&g, absl::StrCat("n", i), gflops[i] * 1e9,
            params.empty() ? 0 : params[i], 1000, in);
  }
  return g;
}

inline Problem MakeProblem(const v1::Graph& proto, const v1::Hardware& hw,
                           const v1::Constraints& constraints) {
  absl::StatusOr<Graph> graph = Graph::FromProto(proto);
  EXPECT_TRUE(graph.ok()) << graph.status();
  absl::StatusOr<Problem> problem = Problem::Create(
      std::make_shared<const Graph>(*std::move(graph)), hw, constraints);
  EXPECT_TRUE(problem.ok()) << problem.status();
  return *std::move(problem);
}
inline Problem MakeProblem(const v1::Graph& proto, const v1::Hardware& hw) {
  return MakeProblem(proto, hw, hw.constraints());
}

inline double Throughput(const Problem& problem, const Assignment& p) {
  return Evaluator(problem).Score(p).throughput_per_s;
}

// A chain of six with a skip edge n0 -> n5.
inline v1::Graph ChainWithSkip() {
  v1::Graph g = Chain({1, 1, 1, 1, 1, 1});
  g.mutable_nodes(5)->add_inputs("n0");
  return g;
}

struct RandomInstance {
  v1::Graph graph;
  v1::Hardware hardware;
};

// A DAG in topological order whose nodes read 1-3 recent nodes (and now and
// then one far back, like a skip connection), with compute and link times of
// the same order, on `chips` chips whose SRAM is `slack` times an even share
// of the resident bytes.
inline RandomInstance RandomDag(std::mt19937_64& rng, int n, int chips,
                                double slack, bool constraints = false) {
  auto unit = [&rng] { return (rng() >> 11) * 0x1.0p-53; };
  auto below = [&rng](int k) { return static_cast<int>(rng() % k); };
  RandomInstance inst;
  inst.graph.set_name("random");
  double resident = 0;
  for (int v = 0; v < n; ++v) {
    std::vector<std::string> in;
    const int fan_in = v == 0 ? 0 : 1 + below(std::min(v, 3));
    for (int i = 0; i < fan_in; ++i) {
      const int window = std::min(v, unit() < 0.05 ? 30 : 4);
      in.push_back(absl::StrCat("v", v - 1 - below(window)));
    }
    // Weights dominate memory and outputs are smaller, as in real models.
    const double params = unit() < 0.5 ? 0 : 1e6 * unit();
    const double out = 1e3 + 2e5 * unit();
    resident += params + out;
    AddNode(&inst.graph, absl::StrCat("v", v), 1e9 * unit(), std::round(params),
            std::round(out), in);
  }
  inst.hardware = Ring(chips, std::round(slack * resident / chips));
  if (constraints && n >= 4) {
    v1::Constraints* c = inst.hardware.mutable_constraints();
    if (unit() < 0.5)
      (*c->mutable_pins())[absl::StrCat("v", n - 1)] = chips - 1;
    if (unit() < 0.5) {
      v1::ColocationGroup* group = c->add_colocation_groups();
      const int a = below(n - 1);
      group->add_nodes(absl::StrCat("v", a));
      group->add_nodes(absl::StrCat("v", a + 1));
    }
  }
  return inst;
}

// The best valid placement by exhaustive search, or empty when none is valid.
inline Assignment BruteForce(const Problem& problem) {
  const int n = problem.num_nodes();
  const int chips = problem.num_chips();
  Evaluator evaluator(problem);
  Assignment p(n, 0), best;
  double best_throughput = -1;
  while (true) {
    if (evaluator.IsValid(p)) {
      const double t = evaluator.Score(p).throughput_per_s;
      if (t > best_throughput) {
        best_throughput = t;
        best = p;
      }
    }
    int i = 0;
    while (i < n && ++p[i] == chips) p[i++] = 0;
    if (i == n) break;
  }
  return best;
}

// What one anneal run reported: every improvement, in order.
struct Trace {
  std::vector<Assignment> placements;
  std::vector<double> throughputs;
  std::vector<int64_t> samples;
};

// Anneal with `seed` for `samples` samples (and 60 s at most), recording its
// improvements in `trace` when one is given.
inline absl::StatusOr<StrategyResult> RunAnneal(const Problem& problem,
                                                int64_t samples, uint64_t seed,
                                                Trace* trace = nullptr) {
  Anneal anneal(StrategyOptions{seed});
  Budget budget;
  budget.samples = samples;
  budget.time = absl::Seconds(60);
  StopToken stop;
  return anneal.Run(problem, budget, stop, [&](const Improvement& imp) {
    if (trace == nullptr) return;
    trace->placements.push_back(imp.placement);
    trace->throughputs.push_back(imp.figures.throughput_per_s);
    trace->samples.push_back(imp.samples);
  });
}

}  // namespace mcmpart::testing

#endif  // MCMPART_TESTS_SOLVER_TEST_UTIL_H_
