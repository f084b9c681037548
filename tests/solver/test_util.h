// Small builders shared by the solver tests.
#ifndef MCMPART_TESTS_SOLVER_TEST_UTIL_H_
#define MCMPART_TESTS_SOLVER_TEST_UTIL_H_

#include <initializer_list>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph.h"
#include "solver/problem.h"

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

}  // namespace mcmpart::testing

#endif  // MCMPART_TESTS_SOLVER_TEST_UTIL_H_
