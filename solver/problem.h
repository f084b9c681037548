// A partitioning problem: one graph on one piece of hardware under one set of
// constraint options, with names resolved to ids and per-node times
// precomputed. This is what the evaluator, the repair solver and every
// search strategy take.
#ifndef MCMPART_SOLVER_PROBLEM_H_
#define MCMPART_SOLVER_PROBLEM_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph.h"
#include "solver/hardware.h"

namespace mcmpart {

// Immutable after Create; safe to share between threads.
class Problem {
 public:
  // Builds the problem. `constraints` is usually hardware.constraints(), or a
  // request's own. Errors (INVALID_ARGUMENT unless noted): those of
  // Hardware::FromProto; max_hops < 1; a pin or colocation group naming an
  // unknown node; a pin to a chip outside 0..C-1. FAILED_PRECONDITION for
  // use_all_chips with fewer nodes than chips (no valid placement exists).
  static absl::StatusOr<Problem> Create(std::shared_ptr<const Graph> graph,
                                        const v1::Hardware& hardware,
                                        const v1::Constraints& constraints);
  // Same, with the constraints carried by `hardware`.
  static absl::StatusOr<Problem> Create(std::shared_ptr<const Graph> graph,
                                        const v1::Hardware& hardware) {
    return Create(std::move(graph), hardware, hardware.constraints());
  }

  const Graph& graph() const { return *graph_; }
  const Hardware& hardware() const { return hardware_; }
  int num_nodes() const { return graph_->num_nodes(); }
  int num_chips() const { return hardware_.num_chips(); }

  int max_hops() const { return max_hops_; }
  bool use_all_chips() const { return use_all_chips_; }
  // The chip node v is pinned to, or -1.
  int pin(int v) const { return pin_[v]; }
  // Colocation groups as node ids (each with at least two distinct nodes).
  const std::vector<std::vector<int>>& colocation_groups() const {
    return colocation_;
  }

  // time(v) on chip c per the spec: time_s(v) if > 0, else
  // max(flops / peak_flops(c), touched(v) / mem_bandwidth(c)).
  double time(int v, int c) const {
    return time_[static_cast<size_t>(v) * time_stride_ +
                 (time_stride_ == 1 ? 0 : c)];
  }
  // touched(v) = param_bytes + output_bytes + sum of the inputs' output_bytes.
  double touched_bytes(int v) const;
  // param_bytes(v) + output_bytes(v): what v itself holds in SRAM.
  double resident_bytes(int v) const {
    return graph_->param_bytes(v) + graph_->output_bytes(v);
  }

  // upper_bound = 1 / max(sum of time(v) / C, max of time(v)). On chips that
  // differ, time(v) is taken on the chip where v runs fastest, which keeps it
  // a bound; on identical chips it is the spec's formula.
  double upper_bound_per_s() const { return upper_bound_per_s_; }

 private:
  Problem() = default;

  std::shared_ptr<const Graph> graph_;
  Hardware hardware_;
  int max_hops_ = 1;
  bool use_all_chips_ = false;
  std::vector<int> pin_;
  std::vector<std::vector<int>> colocation_;
  // time_[v * stride + c]; stride 1 when chips are identical.
  std::vector<double> time_;
  int time_stride_ = 1;
  double upper_bound_per_s_ = 0;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_PROBLEM_H_
