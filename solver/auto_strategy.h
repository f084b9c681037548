// Strategy "auto", the default: prove the optimum when that is quick, and
// search well when it is not.
//
// The exact search (solver/exact.h) runs first with a bounded share of the
// budget. When it proves the optimum, the run ends at once (kConverged):
// on the torchvision and BERT-style graphs that takes milliseconds. When it
// stops at a limit instead (having found no placement at all, a few
// repaired random candidates are tried first), the rest of the budget goes
// to annealing and,
// when the caller supplies one, a learned strategy, each warm-started from
// the best placement so far; the exact search's bound stays the answer's
// bound. See docs/strategies.md.
#ifndef MCMPART_SOLVER_AUTO_STRATEGY_H_
#define MCMPART_SOLVER_AUTO_STRATEGY_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solver/strategy.h"

namespace mcmpart {

// Makes the learned stage for one run, warm-started from options.initial.
using StageFactory = std::function<absl::StatusOr<std::unique_ptr<Strategy>>(
    const StrategyOptions& options)>;

struct AutoOptions {
  StrategyOptions base;  // seed, exact memory limit; `initial` is ignored
  // Share of the time budget the exact search may take.
  double exact_share = 0.25;
  // The stage after annealing; empty = annealing takes the rest. When set,
  // annealing and it share what the exact search leaves, half each.
  StageFactory learned;
};

// Improvements are streamed across the stages as one search: each strictly
// better than every earlier one, samples and elapsed counted from the
// start of Run, every one carrying the exact search's bound. The result's
// proved_optimal is set when the optimum was proved, or when a later stage
// reached the bound. Errors: FAILED_PRECONDITION when no valid placement
// exists (the exact search's or the repair solver's explanation); the
// learned stage's own errors.
class Auto : public Strategy {
 public:
  explicit Auto(AutoOptions options) : options_(std::move(options)) {}

  absl::string_view name() const override { return "auto"; }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override;

 private:
  AutoOptions options_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_AUTO_STRATEGY_H_
