// Builders shared by the policy tests: hand-made graphs and hardware, the
// problems they make, a small network configuration and scratch directories.
#ifndef MCMPART_TESTS_POLICY_TEST_UTIL_H_
#define MCMPART_TESTS_POLICY_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "policy/policy.h"
#include "solver/graph.h"
#include "solver/problem.h"

namespace mcmpart::policy::testing {

inline v1::Node* AddNode(v1::Graph& g, const std::string& name,
                         const std::string& op,
                         std::initializer_list<const char*> inputs,
                         double flops, double param_bytes,
                         double output_bytes) {
  v1::Node* n = g.add_nodes();
  n->set_name(name);
  n->set_op(op);
  for (const char* in : inputs) n->add_inputs(in);
  n->set_flops(flops);
  n->set_param_bytes(param_bytes);
  n->set_output_bytes(output_bytes);
  return n;
}

inline v1::Hardware Uniform(int chips, double sram) {
  v1::Hardware hw;
  hw.set_name("test");
  for (int i = 0; i < chips; ++i) {
    v1::Chip* c = hw.add_chips();
    c->set_sram_bytes(sram);
    c->set_peak_flops(1e9);
    c->set_mem_bandwidth(1e12);
  }
  for (int k = 0; k + 1 < chips; ++k) {
    v1::Link* l = hw.add_links();
    l->set_link_bandwidth(1e9);
    l->set_link_latency_s(0);
  }
  return hw;
}

inline Problem MakeProblem(const v1::Graph& g, const v1::Hardware& hw) {
  absl::StatusOr<Graph> graph = Graph::FromProto(g);
  EXPECT_TRUE(graph.ok()) << graph.status();
  absl::StatusOr<Problem> p =
      Problem::Create(std::make_shared<const Graph>(*std::move(graph)), hw);
  EXPECT_TRUE(p.ok()) << p.status();
  return *std::move(p);
}

// Diamond a -> {b, c} -> d, times 1, 2, 3, 4 s (flops / 1e9 FLOP/s).
inline v1::Graph Diamond() {
  v1::Graph g;
  g.set_name("diamond");
  AddNode(g, "a", "Conv", {}, 1e9, 100, 10);
  AddNode(g, "b", "Relu", {"a"}, 2e9, 0, 20);
  AddNode(g, "c", "MatMul", {"a"}, 3e9, 300, 30);
  AddNode(g, "d", "Add", {"b", "c"}, 4e9, 0, 40);
  return g;
}

// A tiny instance where placement matters: a chain of 12 nodes with uneven
// times on 3 chips.
inline Problem TinyChain() {
  v1::Graph g;
  g.set_name("chain");
  const double flops[] = {1, 5, 1, 1, 8, 1, 2, 2, 6, 1, 1, 3};
  std::string prev;
  for (int i = 0; i < 12; ++i) {
    std::string name = "n" + std::to_string(i);
    v1::Node* n = g.add_nodes();
    n->set_name(name);
    n->set_op(i % 2 ? "MatMul" : "Relu");
    if (!prev.empty()) n->add_inputs(prev);
    n->set_flops(flops[i] * 1e9);
    n->set_param_bytes(10);
    n->set_output_bytes(1e6);
    prev = name;
  }
  return MakeProblem(g, Uniform(3, 1e9));
}

// A fresh (removed) path under the temporary directory, unique to `name`
// and this process.
inline std::string TempDir(const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / ("mcmpart_policy_test_" + name +
                                            "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

// A network small enough to create and run in milliseconds.
inline PolicyConfig SmallConfig() {
  PolicyConfig c;
  c.hidden = 32;
  c.gnn_layers = 2;
  c.attention_layers = 1;
  c.heads = 4;
  c.window = 8;
  c.max_chips = 32;
  c.chip_embedding = 16;
  return c;
}

}  // namespace mcmpart::policy::testing

#endif  // MCMPART_TESTS_POLICY_TEST_UTIL_H_
