// Simulated annealing over valid placements.
//
// Starts from the constructive placement (or, when that heuristic fails, from
// a repair of the empty candidate) and proposes moves that keep the edge
// constraints by construction: a node (or a whole colocation group) moved to
// another chip its neighbours allow, a run of frontier nodes pushed across a
// chip boundary, or a swap of frontier nodes between neighbouring chips.
// Memory and no-skipping are checked on the chips a move touches. Figures are
// updated incrementally (O(degree * hops) per node moved, plus O(C) for the
// objective), so a proposal costs far less than a full Evaluator::Score.
// See docs/strategies.md.
#ifndef MCMPART_SOLVER_ANNEAL_H_
#define MCMPART_SOLVER_ANNEAL_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {

// Strategy "anneal".
//
// Objective: bottleneck + 0.1 * (sum of squared chip and link times) / (sum
// of those times), minimised. The second term is at most a tenth of the
// bottleneck and breaks the ties of the flat max, so moves that unload the
// runner-up chips are rewarded before they pay off in the bottleneck.
//
// Schedule: the budget is split into restart cycles; each cycle starts from
// the best placement so far and cools geometrically. Progress is measured in
// samples when Budget::samples > 0 (then the run is deterministic for a seed,
// as long as the time budget does not end it first), otherwise in wall time.
// A sample is one complete candidate placement whose memory and objective
// were evaluated; proposals rejected by the local edge checks are not
// counted. The stop token is polled before every proposal.
//
// Every placement handed to on_improvement has been confirmed by
// Evaluator::IsValid and scored by Evaluator::Score, and has strictly higher
// throughput than the one before. Ends with kConverged when no node can
// move at all or the placement reaches the problem's upper bound.
class Anneal : public Strategy {
 public:
  explicit Anneal(const StrategyOptions& options = {}) : options_(options) {}

  absl::string_view name() const override { return "anneal"; }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override;

 private:
  StrategyOptions options_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ANNEAL_H_
