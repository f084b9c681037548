// The one interface every search strategy meets: classical ones here
// ("constructive", "anneal", "random"), the learned policy in policy/.
// The server runs any of them the same way and never knows which it runs.
#ifndef MCMPART_SOLVER_STRATEGY_H_
#define MCMPART_SOLVER_STRATEGY_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"

namespace mcmpart {

// Cooperative cancellation: the owner of a job requests a stop, the work
// polls stop_requested() often enough to end within 100 ms. Thread-safe.
class StopToken {
 public:
  void RequestStop() { stop_.store(true, std::memory_order_relaxed); }
  bool stop_requested() const { return stop_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> stop_{false};
};

struct Budget {
  // Wall time from the start of Run.
  absl::Duration time = absl::Seconds(10);
  // Candidate placements to try (proposals scored or repaired); 0 = no limit.
  int64_t samples = 0;
};

enum class EndReason {
  kBudget,     // time or sample budget used up
  kCancelled,  // the stop token was set
  kConverged,  // nothing better can be found (proved optimal or exhausted)
};

absl::string_view EndReasonName(EndReason reason);

// A new best valid placement, handed to the callback as it is found.
struct Improvement {
  const Assignment& placement;
  const Figures& figures;
  int64_t samples;         // candidates tried so far
  absl::Duration elapsed;  // since Run started
  // A proved lower bound on the bottleneck of every valid placement, in
  // seconds, when the strategy knows one beyond the problem's compute bound
  // (the exact search's); 0 otherwise.
  double bound_s = 0;
};
using ImprovementCallback = std::function<void(const Improvement&)>;

struct StrategyResult {
  // Best valid placement found; empty when none was.
  Assignment best;
  double throughput_per_s = 0;
  double quality = 0;
  int64_t samples = 0;
  absl::Duration elapsed;
  EndReason reason = EndReason::kBudget;
  // A proved lower bound on the bottleneck of every valid placement, in
  // seconds; 0 when the strategy knows none beyond the problem's compute
  // bound (BottleneckBound in solver/bound.h combines the two).
  double bound_s = 0;
  // `best` is proved optimal (its bottleneck equals the bound).
  bool proved_optimal = false;
};

class Strategy {
 public:
  virtual ~Strategy() = default;

  virtual absl::string_view name() const = 0;

  // Searches valid placements of `problem` until `budget` is used, `stop` is
  // requested, or the search has converged. Calls `on_improvement` (may be
  // empty) on the calling thread with each valid placement strictly better
  // in throughput than every earlier one. Errors: FAILED_PRECONDITION when
  // the instance has no valid placement, with the solver's explanation.
  // Running out of budget before any valid placement is found is not an
  // error: the result has an empty `best`. A Strategy object runs one search
  // at a time; make one per concurrent run.
  virtual absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) = 0;
};

struct StrategyOptions {
  StrategyOptions() = default;
  explicit StrategyOptions(uint64_t seed) : seed(seed) {}

  uint64_t seed = 0;
  // A valid placement to start from (warm start), e.g. the best an earlier
  // strategy found; empty = the strategy's own start. Strategies that use
  // one ("anneal", "exact") report it as their first improvement; an
  // invalid one is ignored.
  Assignment initial;
  // "exact": bytes its search may hold (ExactOptions::memory_limit_bytes);
  // 0 = its default.
  int64_t exact_memory_bytes = 0;
};

// True when `p` can warm-start a search of `problem` (StrategyOptions::
// initial): one chip per node, and a valid placement. Checking allocates.
bool IsWarmStart(const Problem& problem, absl::Span<const int> p);

// The classical strategies by name: "auto", "exact", "constructive",
// "anneal", "random".
// NOT_FOUND for any other name (the message lists these).
absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(
    absl::string_view name, const StrategyOptions& options = {});
std::vector<std::string> StrategyNames();

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_STRATEGY_H_
