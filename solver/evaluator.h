// The cost model and the constraint checker: the one implementation of
// docs/problem.md ("Hard constraints", "Cost model") in the project.
#ifndef MCMPART_SOLVER_EVALUATOR_H_
#define MCMPART_SOLVER_EVALUATOR_H_

#include <vector>

#include "absl/types/span.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/problem.h"

namespace mcmpart {

// The most bytes a chip with `sram_bytes` of SRAM may hold. Memory is
// compared with a relative slack of 1e-12, so that a sum of doubles that
// should equal the SRAM size exactly is not reported as over it. Every
// memory check of the solver (repair's bounds, annealing's moves, the
// constructive splits) uses this, so none calls infeasible what IsValid
// accepts.
inline double MemoryLimit(double sram_bytes) {
  return sram_bytes * (1 + 1e-12);
}

// The spec's figures for one placement.
struct Figures {
  std::vector<double> compute_s;     // per chip
  std::vector<double> comm_s;        // per link, C - 1 entries
  std::vector<double> memory_bytes;  // per chip, with transit buffers
  std::vector<double> link_bytes;    // per link: bytes sent over it
  std::vector<int> link_tensors;     // per link: tensors sent over it
  double bottleneck_s = 0;
  double throughput_per_s = 0;  // 1 / bottleneck_s
  double latency_s = 0;
  double quality = 0;  // throughput / upper bound
  int chips_used = 0;
  // Where the bottleneck is: a chip (bottleneck_link < 0) or a link. Ties go
  // to the lowest chip, then the lowest link.
  int bottleneck_chip = -1;
  int bottleneck_link = -1;
};

// Scores and checks placements of one problem.
//
// Not thread-safe: it owns scratch buffers so that Score and IsValid do not
// allocate after the first call. Make one per thread; construction is cheap.
// `problem` must outlive the evaluator.
class Evaluator {
 public:
  explicit Evaluator(const Problem& problem);

  // The figures of placement `p`. Preconditions: p.size() == num_nodes and
  // 0 <= p[v] < num_chips (checked in debug builds only; callers validate
  // user input with AssignmentFromProto). O(V + E + sum of tensor spans).
  // The reference stays valid until the next call.
  const Figures& Score(absl::Span<const int> p);

  // True when every hard constraint holds. Same preconditions; O(V + E + C).
  bool IsValid(absl::Span<const int> p);

  // Every broken constraint, one Violation per offending edge, chip, pin or
  // group, in the order acyclic, max_hops, no_skipping, memory, pin,
  // colocation. Allocates; meant for reports, not search loops.
  std::vector<v1::Violation> Violations(absl::Span<const int> p);

  // Figures, upper bound, quality and violations as one message, with the
  // compute bound as its bound (solver/bound.h; a search that proved a
  // tighter one applies it with TightenBound).
  v1::Evaluation Evaluate(absl::Span<const int> p);

  const Problem& problem() const { return problem_; }

 private:
  // Fills figures_.memory_bytes and figures_.chips_used only.
  void ComputeMemory(absl::Span<const int> p);

  const Problem& problem_;
  Figures figures_;
  std::vector<char> used_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_EVALUATOR_H_
