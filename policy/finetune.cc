#include "policy/finetune.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/polish.h"

namespace mcmpart::policy {

absl::StatusOr<StrategyResult> FineTune(
    const Policy& base, const Problem& problem, const Budget& budget,
    const StopToken& stop, const ImprovementCallback& on_improvement,
    const FineTuneOptions& options) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + budget.time;
  StrategyResult result;
  if (stop.stop_requested()) {
    result.reason = EndReason::kCancelled;
    return result;
  }

  PpoOptions ppo = options.ppo;
  // A batch that follows measured times would make a seeded run with a
  // sample budget depend on the machine, and a batch decoded ahead could
  // report a placement from beyond the budget.
  if (budget.samples > 0) {
    ppo.max_batch = 0;
    ppo.overlap = false;
  }
  absl::StatusOr<std::unique_ptr<PpoTrainer>> trainer =
      PpoTrainer::Create(base.Clone(), ppo);
  if (!trainer.ok()) return trainer.status();

  Evaluator eval(problem);
  Polisher polisher(problem);
  // Makes `p`, polished when ppo.polish_best > 0, the best so far and
  // streams it.
  auto take_best = [&](Assignment p) {
    if (ppo.polish_best > 0) {
      absl::StatusOr<Assignment> polished = polisher.Run(p, &stop, deadline);
      if (polished.ok()) p = *std::move(polished);
    }
    result.best = std::move(p);
    const Figures& f = eval.Score(result.best);
    result.throughput_per_s = f.throughput_per_s;
    result.quality = f.quality;
    if (on_improvement) {
      on_improvement(
          Improvement{result.best, f, result.samples, absl::Now() - start});
    }
  };
  // The placement reaches the problem's upper bound: proved optimal, so
  // the rest of the budget cannot buy anything (the annealer's test).
  auto optimal = [&] {
    return result.throughput_per_s >= problem.upper_bound_per_s() * (1 - 1e-12);
  };
  if (options.warm_start) {
    // Not finding one is no error: the policy and repair may still succeed.
    const bool given = IsWarmStart(problem, options.initial);
    absl::StatusOr<Assignment> warm =
        given ? absl::StatusOr<Assignment>(options.initial)
              : ConstructPlacement(problem, &stop);
    if (warm.ok()) {
      result.samples = 1;
      take_best(*std::move(warm));
    }
  }
  while (true) {
    const absl::Time now = absl::Now();
    if (!result.best.empty() && optimal()) {
      result.reason = EndReason::kConverged;
      break;
    }
    if (stop.stop_requested()) {
      result.reason = EndReason::kCancelled;
      break;
    }
    if (now >= deadline ||
        (budget.samples > 0 && result.samples >= budget.samples)) {
      result.reason = EndReason::kBudget;
      break;
    }
    // The step keeps its repairs inside the deadline.
    absl::StatusOr<PpoStepStats> st =
        (*trainer)->Step(problem, &stop, deadline);
    if (!st.ok()) return st.status();
    result.samples += st->candidates;
    if (!st->best.empty() && st->best_throughput > result.throughput_per_s) {
      // Samples are decoded to within a thousandth of their order's best
      // split (ppo.cc); the order's exact best is never worse.
      absl::StatusOr<Assignment> exact = Rebalance(problem, st->best, nullptr);
      take_best(exact.ok() ? *std::move(exact) : std::move(st->best));
    }
    if (st->cancelled) {
      result.reason =
          stop.stop_requested() ? EndReason::kCancelled : EndReason::kBudget;
      break;
    }
  }
  result.elapsed = absl::Now() - start;
  return result;
}

absl::StatusOr<StrategyResult> RlStrategy::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  return FineTune(*policy_, problem, budget, stop, on_improvement, options_);
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeRlStrategy(
    std::shared_ptr<const Policy> policy, const StrategyOptions& options) {
  if (policy == nullptr) {
    return absl::InvalidArgumentError("the rl strategy needs a policy");
  }
  FineTuneOptions ft;
  ft.ppo.seed = options.seed;
  return std::unique_ptr<Strategy>(
      std::make_unique<RlStrategy>(std::move(policy), ft));
}

}  // namespace mcmpart::policy
