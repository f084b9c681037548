#include "solver/repair/search.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/repair/bounds.h"
#include "solver/repair/explain.h"
#include "solver/repair/instance.h"
#include "solver/repair/min_cut.h"
#include "solver/repair/space.h"
#include "solver/repair/warm_start.h"

namespace mcmpart::repair {
namespace {

// Failures of the first complete search before large-neighbourhood search
// takes over, and per neighbourhood.
constexpr int64_t kFirstSlice = 10000;
constexpr int64_t kLnsSlice = 200;

// The caller's limits across the phases of one repair.
struct SearchStatus {
  const RepairOptions* options = nullptr;
  absl::Time deadline;
  int64_t used = 0;  // failures so far
  bool cancelled = false;
  bool time_hit = false;
  bool fail_hit = false;

  // Failure budget for a phase allowed `slice` failures (0 = no slice).
  int64_t Budget(int64_t slice) const {
    int64_t left = 0;
    if (options->fail_limit > 0)
      left = std::max<int64_t>(1, options->fail_limit - used);
    if (slice > 0 && (left == 0 || slice < left)) return slice;
    return left;
  }
  void Absorb(const SearchResult& r) {
    used += r.fails;
    cancelled = cancelled || r.cancelled;
    time_hit = time_hit || (r.time_hit && absl::Now() >= deadline);
    fail_hit =
        fail_hit || (options->fail_limit > 0 && used >= options->fail_limit);
  }
  bool Over() const { return cancelled || time_hit || fail_hit; }
};

// One repair, phase by phase; the incumbent (best, best_cost) improves
// from phase to phase.
class Driver {
 public:
  Driver(const Problem& problem, absl::Span<const int> candidate,
         absl::Span<const double> weights, const RepairOptions& options,
         absl::Time start)
      : problem_(problem),
        candidate_(candidate),
        weights_(weights),
        options_(options),
        start_(start),
        deadline_(start + options.time_limit),
        n_(problem.num_nodes()),
        eval_(problem) {
    st_.options = &options_;
    st_.deadline = deadline_;
  }

  absl::StatusOr<RepairResult> Run();

 private:
  // The result for placement p: distance and changed nodes from the
  // original weights, the time so far.
  RepairResult Finish(std::vector<int> p);
  // The result when no search is needed: p is proved optimal.
  RepairResult Optimal(std::vector<int> p);
  void NoteFirstSolution() {
    if (!have_) result_.first_solution_time = absl::Now() - start_;
  }
  // A complete candidate that is already valid is its own repair.
  bool CandidateIsValid();
  void PrepareInstance(Bounds bounds);
  // The best contiguous split, in well under a millisecond on the shared
  // graphs; it becomes the incumbent and the guide.
  void WarmStart();
  // The warm start's fallback: SplitOrder of the candidate's order
  // (OrderByChips), else ConstructPlacement. False when neither is valid.
  bool SplitStart(std::vector<int>* p);
  // Branch and bound per `spec` below the incumbent and above the cut's
  // bound; takes any better placement as the incumbent.
  SearchResult RunPhase(SearchSpec spec, absl::Time phase_end, int64_t slice);
  // The three search phases; whether the incumbent is proved optimal (or,
  // without one, that none exists).
  bool Search();
  // Phase 2: windows of consecutive node ids around the incumbent's chip
  // boundaries are freed and re-optimised with the rest fixed.
  bool SearchNeighbourhoods();
  // The error when no phase found a placement.
  absl::Status NoPlacement(bool proved);

  const Problem& problem_;
  const absl::Span<const int> candidate_;
  const absl::Span<const double> weights_;
  const RepairOptions& options_;
  const absl::Time start_;
  const absl::Time deadline_;
  const int n_;
  Evaluator eval_;
  RepairResult result_;
  Instance in_;
  SearchStatus st_;
  std::vector<int> best_;
  int64_t best_cost_ = 0;
  bool have_ = false;
  int64_t lower_ = 0;  // proved lower bound on the scaled distance
};

RepairResult Driver::Finish(std::vector<int> p) {
  result_.placement = std::move(p);
  result_.distance = 0;
  result_.changed_nodes = 0;
  for (int v = 0; v < n_; ++v) {
    if (candidate_[v] >= 0 && result_.placement[v] != candidate_[v]) {
      result_.distance += weights_.empty() ? 1.0 : weights_[v];
      ++result_.changed_nodes;
    }
  }
  result_.solve_time = absl::Now() - start_;
  return result_;
}

RepairResult Driver::Optimal(std::vector<int> p) {
  result_.optimal = true;
  return Finish(std::move(p));
}

bool Driver::CandidateIsValid() {
  bool complete = true;
  for (int v = 0; v < n_; ++v) complete = complete && candidate_[v] >= 0;
  return complete && eval_.IsValid(candidate_);
}

void Driver::PrepareInstance(Bounds bounds) {
  BuildInstance(problem_, std::move(bounds), &in_);
  ScaleWeights(candidate_, weights_, &in_);
  ChooseOrder(&in_);
}

void Driver::WarmStart() {
  std::vector<int> p;
  int64_t cost = 0;
  bool found = ContiguousSplit(in_, deadline_, options_.stop, &p, &cost) &&
               eval_.IsValid(p);
  // The nearest split keeps every edge within one hop along the id order;
  // where none exists (wide fan-in, long hops) the best split of the order
  // the candidate proposes, else the constructive placement, is a valid
  // start: milliseconds, against a search that may not find one in time.
  if (!found) found = SplitStart(&p);
  if (found) {
    best_ = std::move(p);
    best_cost_ = ScaledCost(in_, best_);
    have_ = true;
    in_.guide = best_;
    result_.first_solution_time = absl::Now() - start_;
  }
}

bool Driver::SplitStart(std::vector<int>* p) {
  std::vector<int> proposed(candidate_.begin(), candidate_.end());
  for (int& chip : proposed) chip = std::max(chip, 0);  // free nodes first
  absl::StatusOr<Assignment> split = SplitOrder(
      problem_, OrderByChips(problem_.graph(), proposed), options_.stop);
  if (!split.ok()) split = ConstructPlacement(problem_, options_.stop);
  if (!split.ok() || !eval_.IsValid(*split)) return false;
  *p = *std::move(split);
  return true;
}

absl::StatusOr<RepairResult> Driver::Run() {
  if (CandidateIsValid()) {
    result_.first_solution_time = absl::Now() - start_;
    return Optimal(std::vector<int>(candidate_.begin(), candidate_.end()));
  }
  absl::StatusOr<Bounds> bounds = CheckAndBound(problem_);
  if (!bounds.ok()) return bounds.status();
  if (n_ == 0) {
    result_.first_solution_time = absl::Now() - start_;
    return Optimal({});
  }
  if (options_.stop != nullptr && options_.stop->stop_requested()) {
    return absl::CancelledError("repair cancelled before it started");
  }
  PrepareInstance(*std::move(bounds));
  WarmStart();
  if (have_ && best_cost_ == 0) return Optimal(std::move(best_));
  // Lower bound, and the optimum outright when memory does not bind.
  CutResult cut = MinCutRelaxation(in_, deadline_, options_.stop);
  if (cut.infeasible) {
    return absl::FailedPreconditionError(ExplainCutInfeasible(problem_));
  }
  if (cut.done && eval_.IsValid(cut.placement)) {
    NoteFirstSolution();
    return Optimal(std::move(cut.placement));
  }
  lower_ = cut.done ? cut.bound : 0;
  if (have_ && best_cost_ <= lower_) return Optimal(std::move(best_));
  const bool proved = Search();
  result_.failures = st_.used;
  if (!have_) return NoPlacement(proved);
  result_.optimal = proved;
  if (!proved) {
    result_.cancelled = st_.cancelled;
    result_.fail_limit_hit = st_.fail_hit;
    result_.time_limit_hit = st_.time_hit || (!st_.cancelled && !st_.fail_hit);
  }
  return Finish(std::move(best_));
}

SearchResult Driver::RunPhase(SearchSpec spec, absl::Time phase_end,
                              int64_t slice) {
  spec.lower = lower_;
  spec.bound = have_ ? best_cost_ : 0;
  if (have_) in_.guide = best_;
  SearchResult r = RunSearch(in_, spec, std::min(phase_end, deadline_),
                             st_.Budget(slice), options_.stop, &eval_);
  st_.Absorb(r);
  if (r.found && (!have_ || r.cost < best_cost_)) {
    if (!have_) result_.first_solution_time = r.first_found - start_;
    best_ = std::move(r.best);
    best_cost_ = r.cost;
    have_ = true;
  }
  return r;
}

// Search in three phases sharing the caller's limits (failures count
// across all of them):
//  1. complete branch and bound below the incumbent, for a slice of
//     failures: small and medium instances end here, proved;
//  2. large-neighbourhood search, for up to a third of the time left;
//  3. complete branch and bound below the improved incumbent with the rest.
bool Driver::Search() {
  const int64_t first_slice =
      !have_                    ? 0
      : options_.fail_limit > 0 ? std::max<int64_t>(1, options_.fail_limit / 2)
                                : kFirstSlice;
  bool proved = RunPhase(SearchSpec(), deadline_, first_slice).complete;
  if (!proved && have_ && !st_.Over() && best_cost_ > lower_) {
    proved = SearchNeighbourhoods();
  }
  if (!proved && have_ && best_cost_ <= lower_) proved = true;
  if (!proved && !st_.Over()) {
    proved = RunPhase(SearchSpec(), deadline_, 0).complete;
  }
  return proved;
}

bool Driver::SearchNeighbourhoods() {
  const absl::Time lns_end = absl::Now() + (deadline_ - absl::Now()) / 3;
  const int64_t lns_fails =
      options_.fail_limit > 0 ? st_.used + (options_.fail_limit - st_.used) / 2
                              : 0;
  std::mt19937 rng(0x5eed);
  int window = std::clamp(2 * n_ / std::max(1, in_.chips), 16, n_);
  std::vector<int> fixed(n_);
  int idle = 0;
  while (!st_.Over() && absl::Now() < lns_end && best_cost_ > lower_ &&
         (lns_fails == 0 || st_.used < lns_fails) && idle < 2 * in_.chips + 8) {
    std::vector<int> cuts;
    for (int v = 1; v < n_; ++v) {
      if (best_[v] != best_[v - 1]) cuts.push_back(v);
    }
    const int center =
        cuts.empty() ? static_cast<int>(rng() % n_) : cuts[rng() % cuts.size()];
    const int from = std::max(0, center - window / 2);
    const int to = std::min(n_, from + window);
    fixed = best_;
    for (int v = from; v < to; ++v) fixed[v] = -1;
    SearchSpec spec;
    spec.fixed = &fixed;
    const int64_t before = best_cost_;
    SearchResult r = RunPhase(
        spec, lns_end,
        lns_fails > 0 ? std::min<int64_t>(kLnsSlice, lns_fails - st_.used)
                      : kLnsSlice);
    idle = best_cost_ < before ? 0 : idle + 1;
    // The window was the whole graph.
    if (r.complete && from == 0 && to == n_) return true;
    // Exhausted windows grow, windows cut short shrink.
    window = r.complete ? std::min(n_, window + window / 2 + 1)
                        : std::max(8, window * 2 / 3);
  }
  return false;
}

absl::Status Driver::NoPlacement(bool proved) {
  if (proved) {
    return absl::FailedPreconditionError(
        ExplainInfeasible(problem_, in_, deadline_, options_.stop));
  }
  if (st_.cancelled) {
    return absl::CancelledError(
        "repair cancelled before any valid placement was found");
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "repair found no valid placement within its limits (",
      st_.fail_hit ? absl::StrCat(options_.fail_limit, " failures")
                   : absl::StrCat(absl::FormatDuration(options_.time_limit),
                                  " wall time"),
      ")"));
}

}  // namespace

absl::StatusOr<RepairResult> RunRepair(const Problem& problem,
                                       absl::Span<const int> candidate,
                                       absl::Span<const double> weights,
                                       const RepairOptions& options) {
  const absl::Time start = absl::Now();
  if (absl::Status s = CheckInputs(problem, candidate, weights); !s.ok()) {
    return s;
  }
  return Driver(problem, candidate, weights, options, start).Run();
}

}  // namespace mcmpart::repair
