// Instance builders shared by the repair and random-search tests: small
// graphs from node lists, uniform-link hardware from SRAM sizes, and a
// random instance whose candidates are hard to repair.
#ifndef MCMPART_TESTS_SOLVER_REPAIR_TEST_UTIL_H_
#define MCMPART_TESTS_SOLVER_REPAIR_TEST_UTIL_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph.h"
#include "solver/problem.h"

namespace mcmpart::repair_testing {

struct NodeSpec {
  std::string name;
  std::vector<std::string> inputs;
  double param_bytes = 0;
  double output_bytes = 0;
  double flops = 1e6;
};

inline std::shared_ptr<const Graph> MakeGraph(
    const std::vector<NodeSpec>& nodes) {
  v1::Graph proto;
  proto.set_name("test");
  for (const NodeSpec& spec : nodes) {
    v1::Node* node = proto.add_nodes();
    node->set_name(spec.name);
    node->set_op("Op");
    for (const std::string& in : spec.inputs) node->add_inputs(in);
    node->set_param_bytes(spec.param_bytes);
    node->set_output_bytes(spec.output_bytes);
    node->set_flops(spec.flops);
  }
  absl::StatusOr<Graph> g = Graph::FromProto(proto);
  EXPECT_TRUE(g.ok()) << g.status();
  return std::make_shared<const Graph>(*std::move(g));
}

inline v1::Hardware MakeHardware(const std::vector<double>& sram) {
  v1::Hardware hw;
  hw.set_name("test");
  for (double s : sram) {
    v1::Chip* chip = hw.add_chips();
    chip->set_sram_bytes(s);
    chip->set_peak_flops(1e12);
    chip->set_mem_bandwidth(1e12);
  }
  for (size_t k = 0; k + 1 < sram.size(); ++k) {
    v1::Link* link = hw.add_links();
    link->set_link_bandwidth(1e9);
    link->set_link_latency_s(1e-6);
  }
  return hw;
}

inline Problem MakeProblem(std::shared_ptr<const Graph> g,
                           const v1::Hardware& hw,
                           const v1::Constraints& constraints = {}) {
  absl::StatusOr<Problem> p = Problem::Create(std::move(g), hw, constraints);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// A chain n0 -> n1 -> ... of `n` nodes.
inline std::vector<NodeSpec> Chain(int n, double param, double output) {
  std::vector<NodeSpec> nodes;
  for (int i = 0; i < n; ++i) {
    NodeSpec s;
    s.name = absl::StrCat("n", i);
    if (i > 0) s.inputs = {absl::StrCat("n", i - 1)};
    s.param_bytes = param;
    s.output_bytes = output;
    nodes.push_back(s);
  }
  return nodes;
}

// A chain of `n` nodes with random skip edges over three nodes and memory
// that fills `chips` chips to ~85%; random candidates are hard to repair
// optimally.
inline Problem HardProblem(int n, int chips, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> size(1, 1000);
  std::vector<NodeSpec> nodes;
  double total = 0;
  for (int v = 0; v < n; ++v) {
    NodeSpec s;
    s.name = absl::StrCat("v", v);
    if (v >= 1) s.inputs.push_back(absl::StrCat("v", v - 1));
    if (v >= 3 && size(rng) % 3 == 0)
      s.inputs.push_back(absl::StrCat("v", v - 3));
    s.param_bytes = size(rng) * (size(rng) % 7 == 0 ? 5 : 1);
    s.output_bytes = size(rng) / 10;
    total += s.param_bytes + s.output_bytes;
    nodes.push_back(s);
  }
  return MakeProblem(MakeGraph(nodes),
                     MakeHardware(std::vector<double>(
                         chips, std::ceil(total / chips / 0.85))));
}

inline std::vector<int> RandomCandidate(int n, int chips, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int> q(n);
  for (int& c : q) c = static_cast<int>(rng() % chips);
  return q;
}

}  // namespace mcmpart::repair_testing

#endif  // MCMPART_TESTS_SOLVER_REPAIR_TEST_UTIL_H_
