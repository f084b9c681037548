// PPO with the constraint solver in the loop (Xie et al., MLSys 2022):
// sample a batch of candidate placements from the policy, turn each into a
// valid placement (by default the best contiguous split of the order the
// candidate proposes, else the nearest valid placement, solver/repair.h;
// several at once), reward
// each by the quality of the repaired placement (docs/problem.md; the
// chip boundaries of the repaired placement first moved to their best
// positions, PpoOptions::rebalance), and
// update the policy with the clipped PPO objective plus an entropy bonus.
// See docs/policy.md ("PPO") for the choices and the numbers behind them.
#ifndef MCMPART_POLICY_PPO_H_
#define MCMPART_POLICY_PPO_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policy/policy.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart::policy {

// Which placement's log-probability the policy gradient follows.
enum class LogProbTarget {
  kProposal,  // the sampled candidate (what the policy actually did)
  kRepaired,  // the repaired placement (what was rewarded); a sample
              // decoded by the split (Decode::kSplit) follows its proposal,
              // whose order alone decided the placement
};

// How a sampled candidate becomes a valid placement.
enum class Decode {
  // The candidate's node order (OrderByChips: the nodes sorted by their
  // proposed chips, kept topological) cut into its best contiguous split
  // (SplitOrder, solver/constructive.h); the Gecode repair (kRepair) only
  // when no split of that order is valid. Microseconds to a millisecond per
  // candidate, so a step's batch can be large. docs/policy.md, "Decoding".
  kSplit,
  // The nearest valid placement (mcmpart::Repair), then `rebalance`.
  kRepair,
};

struct PpoOptions {
  int batch = 16;  // candidates sampled per step (the least, with max_batch)
  // Above `batch`: the batch follows the measured times, growing up to this
  // while learning takes more than half as long as sampling and decoding
  // (and shrinking back towards `batch` when it does not), so that the
  // update's cost, which hardly depends on the batch, is shared by enough
  // samples (docs/policy.md, "Decoding"). 0 (or `batch`): a fixed batch,
  // so that a seed reproduces a run.
  int max_batch = 0;
  // With max_batch: the batch also grows while fewer than this many
  // candidates a second are decoded, so that the sample rate does not drop
  // where each update is slow (docs/policy.md, "Decoding"). 0 = no floor.
  double min_sample_rate = 0;
  int epochs = 4;     // PPO passes over each batch; 0 = sample and repair
                      // only, never updating the policy
  double clip = 0.2;  // PPO ratio clip
  double entropy_coef = 0.01;
  double learning_rate = 1e-3;
  double max_grad_norm = 1.0;
  // Reward of a candidate whose repair failed (below every valid quality,
  // which is in (0, 1]).
  double failed_repair_reward = -0.1;
  LogProbTarget target = LogProbTarget::kRepaired;
  // After repair, move the chip boundaries to the best split of the
  // repaired placement's own node order (solver/constructive.h,
  // Rebalance): the policy decides which nodes go together and in what
  // order, the exact split decides where the boundaries fall. The reward and
  // (with kRepaired) the trained placement are the rebalanced one. See
  // docs/policy.md for the measurement behind the default.
  bool rebalance = true;
  Decode decode = Decode::kSplit;
  // Polish the step's best this many distinct valid placements
  // (solver/polish.h: the annealer's node, block and swap moves, taken
  // greedily while they improve) and report the best result as the step's
  // best. The rewards stay those of the decoded
  // placements: polishing every sample flattens the differences the policy
  // learns from (docs/policy.md, "Polish"). 0 = off.
  int polish_best = 4;
  // With kSplit: how many candidates of one step may fall back to the
  // repair when their order has no valid split (the rest get
  // failed_repair_reward). A repair takes up to repair_time_limit, so on a
  // tight instance where most orders fail a step would otherwise take
  // batch * repair_time_limit / repair_threads.
  int max_fallback_repairs = 4;
  int repair_threads = 2;
  absl::Duration repair_time_limit = absl::Seconds(1);
  // Also repair and score the most likely placement (not trained on): the
  // policy's own best guess, usually its best placement.
  bool score_greedy = true;
  // Sample the next step's batch before this step's update and decode it on
  // repair_threads - 1 threads while the update runs on the calling thread
  // (which joins the decoding when the update is done): a step then takes
  // about the longer of the two rather than their sum. The next batch comes
  // from the policy one update older: its update clips around the current
  // policy and weights each node's term by the two policies' ratio
  // (docs/policy.md, "Overlap"). Used by the next Step only on the same
  // Problem object; dropped otherwise. Not drawn when the next step could
  // not make its own update before the deadline. Runs stay reproducible
  // for a seed with a fixed batch.
  bool overlap = false;
  uint64_t seed = 0;
};

// Checks ranges; INVALID_ARGUMENT naming the field.
absl::Status ValidatePpoOptions(const PpoOptions& options);

struct PpoStepStats {
  int batch = 0;       // candidates sampled at this step
  int candidates = 0;  // repaired (batch, plus the greedy one)
  int valid = 0;       // repairs that gave a valid placement
  int split = 0;       // of those, decoded by the split alone (Decode::kSplit)
  double mean_reward = 0;   // over the batch
  double mean_quality = 0;  // over the valid ones
  // Best valid placement of this step, after the polish of its best few
  // (PpoOptions::polish_best); empty when none.
  Assignment best;
  double best_throughput = 0;
  double best_quality = 0;
  double entropy = 0;  // mean per-node entropy before the update (nats)
  // With PpoOptions::overlap: this step's batch was sampled and decoded
  // during the previous step's update (its sample_time and repair_time are
  // those of that work).
  bool prefetched = false;
  absl::Duration sample_time, repair_time, learn_time;
  bool cancelled = false;  // `stop` or the deadline ended the step early
};

// Trains one private policy. Not thread-safe: one thread drives a trainer;
// different trainers may run at once (each owns its model and optimizer;
// repairs use their own threads).
class PpoTrainer {
 public:
  // Takes ownership of `policy` (normally a Clone of a shared one).
  static absl::StatusOr<std::unique_ptr<PpoTrainer>> Create(
      std::unique_ptr<Policy> policy, const PpoOptions& options);
  ~PpoTrainer();

  // One PPO iteration on `problem` (which must outlive the call). Polls
  // `stop` (may be null) and `deadline` between phases, before each repair
  // and between PPO epochs; when either is reached the step returns early
  // with stats.cancelled, keeping the candidates scored so far (stats.best)
  // and making no further update. With PpoOptions::overlap, stats.best also
  // covers the next step's batch, decoded during this step's update (which
  // the next step reports again, with its counts). Repairs stop at their own
  // time limit, which the caller keeps inside the deadline. Errors:
  // INVALID_ARGUMENT when the problem does not fit the policy (too many chips),
  // FAILED_PRECONDITION when the problem has no valid placement (the solver's
  // explanation), INTERNAL for Torch failures.
  absl::StatusOr<PpoStepStats> Step(
      const Problem& problem, const StopToken* stop,
      absl::Time deadline = absl::InfiniteFuture());

  const Policy& policy() const { return *policy_; }
  const PpoOptions& options() const { return options_; }
  int64_t steps() const { return steps_; }

  // Optimizer state and step count, for resumable pre-training
  // (optimizer.pt + trainer.state in `dir`).
  absl::Status SaveState(const std::string& dir) const;
  absl::Status LoadState(const std::string& dir);

  struct Impl;

 private:
  PpoTrainer() = default;
  std::unique_ptr<Policy> policy_;
  PpoOptions options_;
  int64_t steps_ = 0;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_PPO_H_
