// Exact search: the placement of highest throughput, with a proof.
//
// Every valid placement is a chain of downsets {} = I_0 < I_1 < ... < I_k = V
// (I_j = the nodes on chips 0..j-1; acyclic dataflow makes each one closed
// under predecessors), and every figure of the cost model depends on the
// chain only: chip j runs I_{j+1} \ I_j, and both the transit buffers of
// chip j and the tensors on link j-1 are the boundary of I_j (its nodes with
// a successor outside it). The search walks the downset lattice upward one
// node at a time, keeping per downset only the partial placements that no
// other one dominates, and prunes by the best placement known and by the
// work still to place. docs/exact.md derives it from docs/problem.md and
// states what is proved.
#ifndef MCMPART_SOLVER_EXACT_H_
#define MCMPART_SOLVER_EXACT_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {

struct ExactOptions {
  // Wall time for the search; when it runs out the result carries the best
  // placement known and a proved bound.
  absl::Duration time_limit = absl::InfiniteDuration();
  // Bytes the search's partial placements may take at once (two layers of
  // the lattice and the trail back to the start). When more would be needed
  // the search stops cleanly, as for the time limit. The default keeps two
  // concurrent searches of a server well under 1 GiB.
  int64_t memory_limit_bytes = int64_t{256} << 20;
  // Polled between downsets; may be null.
  const StopToken* stop = nullptr;
  // A valid placement to beat (prunes the search). Empty: the constructive
  // split (solver/constructive.h) when it finds one and construct_incumbent
  // is set; without one the search prunes only by what it finds itself.
  Assignment incumbent;
  bool construct_incumbent = true;
  // 0: the exact search. N > 0: a beam search, keeping the N partial
  // placements of best bound per layer of the lattice; fast on any graph,
  // but what it drops is not searched, so its result is a placement and a
  // bound (outcome kBeam), not a proof unless it never had to drop any.
  // SolveExact runs beams of kIncumbentBeam / 16, / 4 and kIncumbentBeam
  // on its own, until one finds a placement, when the constructive split
  // finds none.
  int64_t beam = 0;
  // Called (on the calling thread; may be empty) with the first placement
  // the search knows when it did not get one as `incumbent` (the
  // constructive split's or the beam search's), before the search proper.
  // Not called when `beam` > 0 or construct_incumbent is false.
  std::function<void(const Assignment&)> on_incumbent;
};

inline constexpr int64_t kIncumbentBeam = 256;

enum class ExactOutcome {
  kProved,       // the search completed: `best` is optimal
  kMemoryLimit,  // stopped by memory_limit_bytes
  kTimeLimit,    // stopped by time_limit
  kCancelled,    // stopped by `stop`
  kBeam,         // a beam search that had to drop partial placements
};

absl::string_view ExactOutcomeName(ExactOutcome outcome);

struct ExactResult {
  // The best valid placement known (the incumbent or better); empty only
  // when a limit or the beam stopped the search before it found any (a
  // completed search that finds none is FAILED_PRECONDITION).
  Assignment best;
  // Its bottleneck per the cost model; +inf when `best` is empty.
  double bottleneck_s = 0;
  // No valid placement has a smaller bottleneck (proved, up to a relative
  // 1e-12: placements that close to the incumbent are not searched for).
  // Equal to bottleneck_s when outcome is kProved.
  double bound_s = 0;
  ExactOutcome outcome = ExactOutcome::kProved;
  // Distinct downsets reached and partial placements kept.
  int64_t downsets = 0;
  int64_t states = 0;
  // Most bytes the search held at once.
  int64_t peak_bytes = 0;
  absl::Duration elapsed;
};

// The exact optimum of `problem` (any max_hops, chips and links that differ,
// pins, colocation groups, use_all_chips), or, when a limit stops it first,
// the best placement known with a proved lower bound on the bottleneck.
// Errors: FAILED_PRECONDITION when no valid placement exists (the search
// completed and found none), with a message naming the constraint that
// blocks; INVALID_ARGUMENT for an incumbent that is not a valid placement.
// Thread-safe: any number of searches may run at once on one Problem.
absl::StatusOr<ExactResult> SolveExact(const Problem& problem,
                                       const ExactOptions& options = {});

// Strategy "exact": SolveExact within the budget's time (the sample budget
// does not apply). Reports the incumbent, then the optimum if it is better;
// ends with kConverged when the optimum is proved, else kBudget or
// kCancelled. The result carries the bound.
class Exact : public Strategy {
 public:
  explicit Exact(const StrategyOptions& options = {}) : options_(options) {}

  absl::string_view name() const override { return "exact"; }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override;

 private:
  StrategyOptions options_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_EXACT_H_
