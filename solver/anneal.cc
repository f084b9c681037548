#include "solver/anneal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "solver/anneal/state.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/repair.h"
#include "solver/splitmix.h"

namespace mcmpart {
namespace {

using anneal::State;

// Relative bottleneck gain below which the incremental figures are not
// trusted to show an improvement (their rounding drift is far smaller).
constexpr double kImprovementTolerance = 1e-9;
// Restart cycles per budget; each starts from the best placement so far.
constexpr int kCycles = 4;
// Temperatures relative to the starting bottleneck: the first cycle starts
// where a move that costs a few percent of the bottleneck is often accepted,
// every cycle ends where only tiny regressions are.
constexpr double kStartTemperature = 0.02;
constexpr double kEndTemperature = 2e-5;
// With no sample budget and no finite time budget, one cycle is this many
// samples per node (at least kMinCycleSamples).
constexpr int64_t kCycleSamplesPerNode = 200;
constexpr int64_t kMinCycleSamples = 100'000;
// Accepted moves between full recomputations of the incremental figures,
// which bounds floating-point drift.
constexpr int64_t kResyncEvery = 20'000;

// xoshiro256**, seeded by splitmix64: fast (walks draw a number per
// neighbour) and the same sequence for a seed on every platform, which the
// std distributions do not promise.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) word = SplitMix64(&seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n > 0.
  int Uniform(int n) {
    return static_cast<int>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double Unit() { return (Next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// One search run; Anneal::Run sets it up and reports.
class Search {
 public:
  Search(const Problem& problem, const Budget& budget, const StopToken& stop,
         const ImprovementCallback& on_improvement, uint64_t seed,
         absl::Time start)
      : problem_(problem),
        budget_(budget),
        stop_(stop),
        on_improvement_(on_improvement),
        start_(start),
        rng_(seed),
        state_(problem),
        evaluator_(problem) {
    queue_.reserve(problem.num_nodes());
    seen_.assign(problem.num_nodes(), 0);
  }

  // Reports `initial` (valid) as the first improvement and anneals from it.
  StrategyResult Run(Assignment initial) {
    samples_ = 1;  // the initial placement
    best_ = std::move(initial);
    const Figures& f = evaluator_.Score(best_);
    best_throughput_ = f.throughput_per_s;
    best_bottleneck_ = f.bottleneck_s;
    Report(f);
    StrategyResult result;
    result.reason = Anneal();
    result.best = best_;
    const Figures& final_figures = evaluator_.Score(best_);
    result.throughput_per_s = final_figures.throughput_per_s;
    result.quality = final_figures.quality;
    result.samples = samples_;
    result.elapsed = absl::Now() - start_;
    return result;
  }

 private:
  void Report(const Figures& figures) {
    if (on_improvement_) {
      on_improvement_(
          Improvement{best_, figures, samples_, absl::Now() - start_});
    }
  }

  bool AtUpperBound() const {
    return best_bottleneck_ <= 0 ||
           best_throughput_ >= problem_.upper_bound_per_s() * (1 - 1e-12);
  }

  // Fraction of the budget used, in [0, 1) while running. Deterministic
  // (samples only) when there is a sample budget.
  double Progress(absl::Duration elapsed) const {
    if (budget_.samples > 0) {
      return static_cast<double>(samples_) / budget_.samples;
    }
    if (budget_.time < absl::InfiniteDuration() &&
        budget_.time > absl::ZeroDuration()) {
      return absl::FDivDuration(elapsed, budget_.time);
    }
    return -1;  // unbounded: see Schedule
  }

  // Cycle index and temperature for progress `frac`.
  std::pair<int64_t, double> Schedule(double frac) const {
    int64_t cycle;
    double local;
    if (frac < 0) {
      const int64_t length = std::max(
          kMinCycleSamples, kCycleSamplesPerNode * problem_.num_nodes());
      cycle = samples_ / length;
      local = static_cast<double>(samples_ % length) / length;
    } else {
      const double x = std::min(frac, 1.0) * kCycles;
      cycle = std::min<int64_t>(static_cast<int64_t>(x), kCycles - 1);
      local = std::min(x - cycle, 1.0);
    }
    // Later cycles start colder: they refine the best rather than explore.
    const double hot =
        kStartTemperature * std::pow(0.5, std::min<int64_t>(cycle, 3));
    const double t = hot * std::pow(kEndTemperature / hot, local);
    return {cycle, t * scale_};
  }

  // A random node on chip c and then a walk, within chip c, along edges in
  // direction d until a node with no neighbour on c that way: the frontier
  // nodes are the ones that can cross to chip c + d.
  int FrontierNode(int c, int d) {
    const std::vector<int>& nodes = state_.nodes_on(c);
    if (nodes.empty()) return -1;
    int v = nodes[rng_.Uniform(static_cast<int>(nodes.size()))];
    const Graph& g = problem_.graph();
    while (true) {
      absl::Span<const int> next = d > 0 ? g.successors(v) : g.predecessors(v);
      int pick = -1, seen = 0;
      for (int w : next) {
        // Reservoir sampling: a uniform neighbour on chip c.
        if (state_.chip(w) == c && rng_.Uniform(++seen) == 0) pick = w;
      }
      if (pick < 0) return v;
      v = pick;
    }
  }

  // Moves v's unit to chip `to` if its edges allow; true when moved.
  bool TryMove(int v, int to) {
    if (v < 0 || to < 0 || to >= problem_.num_chips()) return false;
    int lo, hi;
    if (!state_.Range(v, &lo, &hi) || to < lo || to > hi) return false;
    state_.MoveUnit(v, to);
    return true;
  }

  // Shifts the boundary between chip c and c + d by up to m nodes: starts
  // at a frontier node and grows the moved set breadth-first through its
  // neighbours on chip c (inputs when moving down the pipeline, readers when
  // moving up), each moved as soon as its edges allow. This moves coherent
  // pieces (a whole residual block, say) that single moves could only
  // reach through worse states.
  void ShiftBoundary(int c, int d, int m) {
    const Graph& g = problem_.graph();
    ++epoch_;
    queue_.clear();
    const int start = FrontierNode(c, d);
    if (start < 0) return;
    queue_.push_back(start);
    seen_[start] = epoch_;
    int moved = 0;
    for (size_t head = 0; head < queue_.size() && moved < m; ++head) {
      const int v = queue_[head];
      if (state_.chip(v) != c || !TryMove(v, c + d)) continue;
      ++moved;
      for (int u : d > 0 ? g.predecessors(v) : g.successors(v)) {
        if (seen_[u] != epoch_ && state_.chip(u) == c) {
          seen_[u] = epoch_;
          queue_.push_back(u);
        }
      }
    }
  }

  // Proposes one composite move and applies it to the state (logged). False
  // when no part of it was admissible; the state is then unchanged.
  bool Propose() {
    const int k = state_.used_chips();
    const int chips = problem_.num_chips();
    const int top = std::min(k, chips - 1);  // may open the next chip
    const double r = rng_.Unit();
    if (r < 0.6) {
      // Shift one boundary, half of the time one of the bottleneck's: the
      // hot chip's, or the hot link's in either direction.
      int c, d;
      if (rng_.Unit() < 0.5) {
        c = hot_ >= 0 ? hot_ : -hot_ - 1;
        d = rng_.Unit() < 0.5 ? 1 : -1;
        if (hot_ < 0 && d < 0) ++c;  // chip k + 1 back over link k
      } else {
        c = rng_.Uniform(k);
        d = rng_.Unit() < 0.5 ? 1 : -1;
      }
      if (c + d < 0 || c + d > top) d = -d;
      if (c + d < 0 || c + d > top) return false;
      // Sizes spread over orders of magnitude: 1, 2, 4, ... 64.
      ShiftBoundary(c, d, 1 << rng_.Uniform(7));
      return state_.moved_any();
    }
    if (r < 0.85 || k < 2) {
      // One node or group to any chip its neighbours allow.
      const int v = rng_.Uniform(problem_.num_nodes());
      int lo, hi;
      if (!state_.Range(v, &lo, &hi) || lo == hi) return false;
      const int a = state_.chip(v);
      int b = lo + rng_.Uniform(hi - lo);
      if (b >= a) ++b;
      if (b > hi) return false;  // a was outside [lo, hi]; cannot happen
      state_.MoveUnit(v, b);
      return true;
    }
    // Swap: a frontier node of chip c down to c + 1 and one of c + 1 up to
    // c; roughly load-neutral, so it mostly reshuffles memory and links.
    const int c = rng_.Uniform(k - 1);
    const int down = FrontierNode(c, 1);
    if (!TryMove(down, c + 1)) return false;
    const int up = FrontierNode(c + 1, -1);
    if (up == down || state_.SameUnit(up, down) || !TryMove(up, c)) {
      state_.Undo();
      return false;
    }
    return true;
  }

  // True when some node or group can move at all.
  bool AnyMovable() {
    for (int v = 0; v < problem_.num_nodes(); ++v) {
      int lo, hi;
      if (state_.Range(v, &lo, &hi) && lo < hi) return true;
    }
    return false;
  }

  // The annealing loop: propose, check, accept or undo, and keep every
  // improvement the evaluator confirms, until a limit or convergence.
  EndReason Anneal() {
    if (problem_.num_chips() == 1 || AtUpperBound())
      return EndReason::kConverged;
    LoadBest();
    scale_ = best_bottleneck_;
    // Proposals fail in a row only near a dead end; after this many, check
    // whether anything can move at all.
    int64_t failed_in_a_row = 0;
    const int64_t fail_check =
        1000 + 20 * static_cast<int64_t>(problem_.num_nodes());
    for (int64_t iter = 0;; ++iter) {
      if (std::optional<EndReason> end = Poll(iter)) return *end;
      if (!Propose()) {
        if (++failed_in_a_row >= fail_check) {
          if (!AnyMovable()) return EndReason::kConverged;
          failed_in_a_row = 0;
        }
        continue;
      }
      failed_in_a_row = 0;
      ++samples_;
      if (!state_.LoggedMovesValid() || !Accept()) {
        state_.Undo();
        continue;
      }
      if (bottleneck_ < best_bottleneck_ * (1 - kImprovementTolerance) &&
          KeepIfBetter()) {
        return EndReason::kConverged;
      }
    }
  }

  // The state := the best placement so far, with its energy.
  void LoadBest() {
    state_.Load(best_);
    energy_ = state_.Energy(&bottleneck_, &hot_);
  }

  // Before each proposal: the stop token and the sample budget; every 16th
  // also the clock and the schedule (temperature, and a restart from the
  // best when a new cycle begins). The reason to end, if any.
  std::optional<EndReason> Poll(int64_t iter) {
    if (stop_.stop_requested()) return EndReason::kCancelled;
    if (budget_.samples > 0 && samples_ >= budget_.samples) {
      return EndReason::kBudget;
    }
    // The clock and the schedule (two pow calls) are cheap but not free;
    // a proposal takes about a microsecond, so every 16th is well inside
    // the 100 ms stop promise and the temperature steps stay tiny.
    if (iter % 16 == 0) {
      const absl::Duration elapsed = absl::Now() - start_;
      if (elapsed >= budget_.time) return EndReason::kBudget;
      const auto [new_cycle, new_temperature] = Schedule(Progress(elapsed));
      temperature_ = new_temperature;
      if (new_cycle != cycle_) {
        // Restart from the best placement so far.
        cycle_ = new_cycle;
        LoadBest();
      }
    }
    return std::nullopt;
  }

  // The Metropolis rule for the proposal just applied (valid): commits it
  // and true when accepted, false (the caller undoes it) when not. Every
  // kResyncEvery acceptances the figures are recomputed from scratch.
  bool Accept() {
    double new_bottleneck;
    int new_hot;
    const double new_energy = state_.Energy(&new_bottleneck, &new_hot);
    const double delta = new_energy - energy_;
    if (delta > 0 && rng_.Unit() >= std::exp(-delta / temperature_)) {
      return false;
    }
    state_.Commit();
    energy_ = new_energy;
    bottleneck_ = new_bottleneck;
    hot_ = new_hot;
    if (++accepted_ % kResyncEvery == 0) {
      state_.Load(Assignment(state_.placement()));
      energy_ = state_.Energy(&bottleneck_, &hot_);
    }
    return true;
  }

  // The state's bottleneck beats the best by more than
  // kImprovementTolerance. The incremental figures drift by rounding, so
  // the evaluator decides what counts as valid and better (the tolerance
  // keeps drift alone from calling it on every accepted move): an invalid
  // placement sends the walk back to the best; a better one becomes the
  // best and is reported. True when it reaches the upper bound, which ends
  // the run.
  bool KeepIfBetter() {
    const Assignment& p = state_.placement();
    if (!evaluator_.IsValid(p)) {
      LoadBest();
      return false;
    }
    const Figures& f = evaluator_.Score(p);
    if (f.throughput_per_s > best_throughput_) {
      best_ = p;
      best_throughput_ = f.throughput_per_s;
      best_bottleneck_ = f.bottleneck_s;
      Report(f);
      if (AtUpperBound()) return true;
    }
    return false;
  }

  const Problem& problem_;
  const Budget& budget_;
  const StopToken& stop_;
  const ImprovementCallback& on_improvement_;
  const absl::Time start_;
  Rng rng_;
  State state_;
  Evaluator evaluator_;

  Assignment best_;
  double best_throughput_ = 0;
  double best_bottleneck_ = 0;
  double scale_ = 1;
  int hot_ = 0;  // where the bottleneck is; see State::Energy
  // The walk: the state's objective and bottleneck, the schedule's cycle
  // and temperature, and the moves accepted so far.
  double energy_ = 0;
  double bottleneck_ = 0;
  int64_t cycle_ = 0;
  double temperature_ = 0;
  int64_t accepted_ = 0;
  // ShiftBoundary's breadth-first queue and visit marks, kept across calls
  // so that a proposal does not allocate.
  std::vector<int> queue_;
  std::vector<int64_t> seen_;
  int64_t epoch_ = 0;
  int64_t samples_ = 0;
};

}  // namespace

absl::StatusOr<StrategyResult> Anneal::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  const absl::Time start = absl::Now();
  StrategyResult empty;
  auto ended = [&](EndReason reason) {
    empty.reason = reason;
    empty.elapsed = absl::Now() - start;
    return empty;
  };

  // A warm start (the best an earlier strategy found) replaces the
  // constructive split when it is a valid placement of this problem.
  const bool warm = IsWarmStart(problem, options_.initial);
  absl::StatusOr<Assignment> initial =
      warm ? absl::StatusOr<Assignment>(options_.initial)
           : ConstructPlacement(problem, &stop);
  if (absl::IsCancelled(initial.status())) return ended(EndReason::kCancelled);
  if (!initial.ok()) {
    // The constructive heuristic is not complete; the repair solver is, and
    // explains infeasibility. Unrepaired, the heuristic's reason stands.
    RepairOptions options;
    options.time_limit =
        std::max(budget.time - (absl::Now() - start), absl::ZeroDuration()) / 2;
    options.stop = &stop;
    Assignment free(problem.num_nodes(), -1);
    absl::StatusOr<RepairResult> repaired =
        Repair(problem, free, /*weights=*/{}, options);
    if (repaired.ok()) {
      initial = std::move(repaired->placement);
    } else if (absl::IsFailedPrecondition(repaired.status())) {
      return repaired.status();
    } else if (absl::IsCancelled(repaired.status())) {
      return ended(EndReason::kCancelled);
    } else if (absl::IsDeadlineExceeded(repaired.status())) {
      return ended(EndReason::kBudget);
    } else {
      return initial.status();
    }
    if (!Evaluator(problem).IsValid(*initial)) {
      return absl::InternalError(
          "anneal: the repaired starting placement is not valid");
    }
  }
  Search search(problem, budget, stop, on_improvement, options_.seed, start);
  return search.Run(*std::move(initial));
}

}  // namespace mcmpart
