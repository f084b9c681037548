// The evaluator against a reference written straight from docs/problem.md,
// term by term and as naively as possible, on random graphs and random
// (mostly invalid) placements, and on the shared models.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "gtest/gtest.h"
#include "solver/evaluator.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/placement.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

struct Reference {
  std::vector<double> compute, comm, memory;
  double bottleneck = 0, throughput = 0, latency = 0, upper_bound = 0;
};

// Reads the spec's formulas off the message, not the IR: inputs by name,
// duplicates counted once, graph inputs free.
Reference SpecFigures(const v1::Graph& g, const v1::Hardware& hw,
                      const std::vector<int>& p_by_message_index) {
  const int n = g.nodes_size();
  const int chips = hw.chips_size();
  std::map<std::string, int> index;
  for (int i = 0; i < n; ++i) index[g.nodes(i).name()] = i;
  auto inputs_of = [&](int v) {
    std::set<int> in;
    for (const std::string& name : g.nodes(v).inputs()) {
      if (index.count(name)) in.insert(index[name]);
    }
    return in;
  };
  auto p = [&](int v) { return p_by_message_index[v]; };
  auto last = [&](int u) {
    int l = p(u);
    for (int v = 0; v < n; ++v) {
      if (inputs_of(v).count(u)) l = std::max(l, p(v));
    }
    return l;
  };
  auto time_on = [&](int v, int c) {
    const v1::Node& node = g.nodes(v);
    if (node.time_s() > 0) return node.time_s();
    double touched = node.param_bytes() + node.output_bytes();
    for (int u : inputs_of(v)) touched += g.nodes(u).output_bytes();
    return std::max(node.flops() / hw.chips(c).peak_flops(),
                    touched / hw.chips(c).mem_bandwidth());
  };
  Reference r;
  r.compute.assign(chips, 0);
  r.comm.assign(chips - 1, 0);
  r.memory.assign(chips, 0);
  for (int c = 0; c < chips; ++c) {
    for (int v = 0; v < n; ++v) {
      if (p(v) == c) {
        r.compute[c] += time_on(v, c);
        r.memory[c] += g.nodes(v).param_bytes() + g.nodes(v).output_bytes();
      }
    }
    for (int u = 0; u < n; ++u) {
      if (p(u) < c && c <= last(u)) r.memory[c] += g.nodes(u).output_bytes();
    }
  }
  for (int k = 0; k + 1 < chips; ++k) {
    for (int u = 0; u < n; ++u) {
      if (p(u) <= k && k < last(u)) {
        r.comm[k] += g.nodes(u).output_bytes() / hw.links(k).link_bandwidth() +
                     hw.links(k).link_latency_s();
      }
    }
  }
  for (double x : r.compute) r.bottleneck = std::max(r.bottleneck, x);
  for (double x : r.comm) r.bottleneck = std::max(r.bottleneck, x);
  r.throughput = 1 / r.bottleneck;
  for (double x : r.compute) r.latency += x;
  for (double x : r.comm) r.latency += x;
  double sum = 0, max = 0;
  for (int v = 0; v < n; ++v) {
    double fastest = time_on(v, 0);
    for (int c = 1; c < chips; ++c) fastest = std::min(fastest, time_on(v, c));
    sum += fastest;
    max = std::max(max, fastest);
  }
  r.upper_bound = 1 / std::max(sum / chips, max);
  return r;
}

void ExpectRelNear(double actual, double expected, const std::string& what) {
  const double scale = std::max(std::fabs(expected), 1e-300);
  EXPECT_LE(std::fabs(actual - expected) / scale, 1e-9)
      << what << ": " << actual << " vs " << expected;
}

void CheckAgainstSpec(const v1::Graph& proto, const v1::Hardware& hw,
                      std::mt19937_64& rng) {
  auto graph = ::mcmpart::testing::MustBuild(proto);
  auto problem = Problem::Create(graph, hw);
  ASSERT_TRUE(problem.ok()) << problem.status();
  Evaluator eval(*problem);
  std::uniform_int_distribution<int> chip(0, hw.chips_size() - 1);
  std::vector<int> by_message(proto.nodes_size());
  for (int& c : by_message) c = chip(rng);
  Assignment p(graph->num_nodes());
  for (int i = 0; i < proto.nodes_size(); ++i) {
    p[*graph->FindNode(proto.nodes(i).name())] = by_message[i];
  }
  const Reference ref = SpecFigures(proto, hw, by_message);
  const Figures& f = eval.Score(p);
  for (int c = 0; c < hw.chips_size(); ++c) {
    ExpectRelNear(f.compute_s[c], ref.compute[c], "compute");
    ExpectRelNear(f.memory_bytes[c], ref.memory[c], "memory");
  }
  for (int k = 0; k + 1 < hw.chips_size(); ++k) {
    ExpectRelNear(f.comm_s[k], ref.comm[k], "comm");
  }
  ExpectRelNear(f.bottleneck_s, ref.bottleneck, "bottleneck");
  ExpectRelNear(f.throughput_per_s, ref.throughput, "throughput");
  ExpectRelNear(f.latency_s, ref.latency, "latency");
  ExpectRelNear(problem->upper_bound_per_s(), ref.upper_bound, "upper bound");
  ExpectRelNear(f.quality, ref.throughput / ref.upper_bound, "quality");
}

TEST(EvaluatorReferenceTest, RandomGraphsAndPlacementsMatchTheSpec) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    const int n = std::uniform_int_distribution<int>(1, 14)(rng);
    const int chips = std::uniform_int_distribution<int>(1, 5)(rng);
    std::uniform_real_distribution<double> size(0, 1000);
    v1::Graph g;
    g.add_inputs("x");
    for (int v = 0; v < n; ++v) {
      v1::Node* node = g.add_nodes();
      node->set_name("n" + std::to_string(v));
      node->set_op("Op");
      for (int u = 0; u < v; ++u) {
        if (rng() % 3 == 0) node->add_inputs("n" + std::to_string(u));
        if (rng() % 9 == 0) node->add_inputs("n" + std::to_string(u));  // dup
      }
      if (rng() % 4 == 0) node->add_inputs("x");
      node->set_flops(size(rng) * 1e3);
      node->set_param_bytes(std::floor(size(rng)));
      node->set_output_bytes(std::floor(size(rng)));
      if (rng() % 5 == 0) node->set_time_s(size(rng) * 1e-3);
    }
    // Message order shuffled: the IR renumbers, the reference must not care.
    std::shuffle(g.mutable_nodes()->begin(), g.mutable_nodes()->end(), rng);
    v1::Hardware hw;
    for (int c = 0; c < chips; ++c) {
      v1::Chip* chip = hw.add_chips();
      chip->set_sram_bytes(1e4);
      chip->set_peak_flops(1e6 * (1 + rng() % 3));
      chip->set_mem_bandwidth(1e5 * (1 + rng() % 3));
    }
    for (int k = 0; k + 1 < chips; ++k) {
      v1::Link* link = hw.add_links();
      link->set_link_bandwidth(1e4 * (1 + rng() % 4));
      link->set_link_latency_s(1e-3 * (rng() % 3));
    }
    SCOPED_TRACE("trial " + std::to_string(trial));
    CheckAgainstSpec(g, hw, rng);
  }
}

TEST(EvaluatorReferenceTest, SharedModelsMatchTheSpec) {
  std::mt19937_64 rng(11);
  for (const char* model : {"resnet18", "squeezenet1_1", "googlenet"}) {
    auto g = LoadGraphFile(std::string(MCMPART_TEST_DATA_DIR) + "/graphs/" +
                           model + ".onnx");
    ASSERT_TRUE(g.ok()) << g.status();
    SCOPED_TRACE(model);
    CheckAgainstSpec(*g, *PresetHardware("ring8"), rng);
  }
}

}  // namespace
}  // namespace mcmpart
