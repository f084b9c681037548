// Fine-tuning: from a loaded (shared, read-only) policy, train a private
// copy on one problem with PPO + repair for a time or sample budget,
// streaming every new best valid placement. This is what the "rl" strategy
// runs for a request.
#ifndef MCMPART_POLICY_FINETUNE_H_
#define MCMPART_POLICY_FINETUNE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "policy/policy.h"
#include "policy/ppo.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart::policy {

struct FineTuneOptions {
  // Shorter repairs than pre-training: a request's budget is seconds, and
  // each PPO step should leave room for several. The batch starts at 32
  // (four times the split-decoded samples of a batch of 8 at the same
  // quality) and, under a time budget, grows with the measured cost of the
  // update up to 1,024: on a 560-node graph one update takes as long as
  // decoding a few hundred samples (docs/policy.md, "Decoding"); each batch
  // is decoded while the update before it runs (PpoOptions::overlap).
  // Under a sample budget the batch stays at ppo.batch and nothing is
  // decoded ahead, so that a seed reproduces the run.
  FineTuneOptions() {
    ppo.batch = 32;
    ppo.max_batch = 1024;
    ppo.overlap = true;
    ppo.min_sample_rate = 1500;
    ppo.repair_time_limit = absl::Milliseconds(250);
  }
  PpoOptions ppo;  // ppo.seed makes a run deterministic (with a sample budget)
  // Start from the constructive split (solver/constructive.h), polished
  // when ppo.polish_best > 0 (solver/polish.h), as the best placement so
  // far: a request never gets less than the classical baseline,
  // and PPO spends the budget trying to beat it. docs/policy.md, "Warm start".
  bool warm_start = true;
  // With warm_start: a valid placement to start from instead of the
  // constructive split (the auto strategy's best so far); ignored when it is
  // not a valid placement of the problem.
  Assignment initial;
};

// Fine-tunes a private Clone of `base` on `problem` until `budget` is used or
// `stop` is set; `base` is only read, so any number of FineTune calls may
// share one policy on different threads. Calls `on_improvement` (may be
// empty) on the calling thread with each valid placement strictly better in
// throughput than every earlier one; samples = candidates repaired so far.
// Ends early, with EndReason::kConverged, when the best placement reaches
// the problem's upper bound (Problem::upper_bound_per_s): it is then proved
// optimal.
// Cancellation: `stop` is polled between phases, inside repairs and between
// PPO epochs; on the shared graphs the call returns within 100 ms of it.
// Errors: FAILED_PRECONDITION when the problem has no valid placement (the
// solver's explanation); INVALID_ARGUMENT when it has more chips than the
// policy serves or the options are out of range; INTERNAL for Torch errors.
absl::StatusOr<StrategyResult> FineTune(
    const Policy& base, const Problem& problem, const Budget& budget,
    const StopToken& stop, const ImprovementCallback& on_improvement,
    const FineTuneOptions& options = {});

// Strategy "rl": FineTune from a shared policy. A strategy object runs one
// search at a time (per the Strategy contract); the policy may be shared by
// many strategy objects.
class RlStrategy : public Strategy {
 public:
  RlStrategy(std::shared_ptr<const Policy> policy, FineTuneOptions options)
      : policy_(std::move(policy)), options_(options) {}

  absl::string_view name() const override { return "rl"; }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override;

 private:
  std::shared_ptr<const Policy> policy_;
  FineTuneOptions options_;
};

// The "rl" strategy with `policy` and seed; INVALID_ARGUMENT when `policy`
// is null.
absl::StatusOr<std::unique_ptr<Strategy>> MakeRlStrategy(
    std::shared_ptr<const Policy> policy, const StrategyOptions& options);

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_FINETUNE_H_
