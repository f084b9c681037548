// The "random" strategy: random candidates, each repaired to the nearest
// valid placement, keeping the one with the best throughput. The baseline
// every other strategy must beat.
#ifndef MCMPART_SOLVER_RANDOM_SEARCH_H_
#define MCMPART_SOLVER_RANDOM_SEARCH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solver/problem.h"
#include "solver/repair.h"
#include "solver/strategy.h"

namespace mcmpart {

// Each sample is one candidate, drawn in turn from three kinds:
//  * uniform: every node on a uniformly random chip;
//  * split: a random contiguous split of the topological order into k runs,
//    cut at random fractions of the total memory or of the total time
//    (uniform fractions or near-equal shares);
//  * nudge: the best placement so far with a few random nodes moved to a
//    neighbouring chip (only once there is a best).
// The candidate is repaired (solver/repair.h) with a short limit and scored
// with Evaluator::Score.
//
// Deterministic for a fixed seed: the candidates and their repairs (bounded
// by a failure limit, not by wall time) are the same on every run, so a run
// with a sample budget always returns the same placement; a run bounded only
// by time stops at a time-dependent point of that same sequence. Stops
// within 100 ms of a stop request: the token is passed into every repair.
class RandomSearch : public Strategy {
 public:
  // Per-repair limits used unless the caller gives its own: a failure limit
  // for determinism, and a wall-time cap as a safety net.
  static RepairOptions DefaultRepairOptions();

  explicit RandomSearch(const StrategyOptions& options,
                        const RepairOptions& repair = DefaultRepairOptions());

  absl::string_view name() const override { return "random"; }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override;

 private:
  uint64_t seed_;
  RepairOptions repair_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_RANDOM_SEARCH_H_
