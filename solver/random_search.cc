#include "solver/random_search.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "solver/evaluator.h"
#include "solver/placement.h"

namespace mcmpart {
namespace {

enum class Kind { kUniform, kSplit, kNudge };

// Every node on a uniformly random chip.
void Uniform(const Problem& problem, std::mt19937_64& rng, Assignment* q) {
  std::uniform_int_distribution<int> chip(0, problem.num_chips() - 1);
  for (int& c : *q) c = chip(rng);
}

// A contiguous split of the topological order into k runs (k = C with
// use_all_chips, else random), cut at fractions of the total of one measure
// per node: resident memory (keeps candidates close to valid on graphs that
// fill the chips) or time on chip 0 (close to balanced compute, which is
// what throughput rewards). Fractions are uniformly random, or equal shares
// jittered by up to a third of a share.
void Split(const Problem& problem, std::mt19937_64& rng, Assignment* q) {
  const int n = problem.num_nodes();
  const int chips = problem.num_chips();
  std::uniform_int_distribution<int> kd(1, chips);
  const int k = problem.use_all_chips() ? chips : kd(rng);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const bool by_time = unit(rng) < 0.5;
  const bool balanced = unit(rng) < 0.5;
  std::vector<double> cuts(k - 1);
  for (int i = 0; i < k - 1; ++i) {
    cuts[i] = balanced ? (i + 1 + (unit(rng) - 0.5) * 0.66) / k : unit(rng);
  }
  std::sort(cuts.begin(), cuts.end());
  auto measure = [&](int v) {
    return by_time ? problem.time(v, 0) : problem.resident_bytes(v);
  };
  double total = 0;
  for (int v = 0; v < n; ++v) total += measure(v);
  double seen = 0;
  int chip = 0;
  for (int v = 0; v < n; ++v) {
    // The node's midpoint decides its run.
    const double mid =
        total > 0 ? (seen + measure(v) / 2) / total : (v + 0.5) / n;
    while (chip < k - 1 && mid > cuts[chip]) ++chip;
    (*q)[v] = chip;
    seen += measure(v);
  }
}

// `best` with 1 to 8 random nodes moved one chip up or down.
void Nudge(const Problem& problem, const Assignment& best, std::mt19937_64& rng,
           Assignment* q) {
  *q = best;
  const int n = problem.num_nodes();
  const int chips = problem.num_chips();
  std::uniform_int_distribution<int> node(0, n - 1);
  std::uniform_int_distribution<int> count(1, 8);
  const int moves = count(rng);
  for (int i = 0; i < moves; ++i) {
    const int v = node(rng);
    const int dir = (rng() & 1) != 0 ? 1 : -1;
    int c = (*q)[v] + dir;
    if (c < 0 || c >= chips) c = (*q)[v] - dir;
    if (c >= 0 && c < chips) (*q)[v] = c;
  }
}

}  // namespace

RepairOptions RandomSearch::DefaultRepairOptions() {
  RepairOptions o;
  o.fail_limit = 500;
  o.time_limit = absl::Milliseconds(250);
  return o;
}

RandomSearch::RandomSearch(const StrategyOptions& options,
                           const RepairOptions& repair)
    : seed_(options.seed), repair_(repair) {}

absl::StatusOr<StrategyResult> RandomSearch::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + budget.time;
  StrategyResult result;
  auto done = [&](EndReason reason) {
    result.elapsed = absl::Now() - start;
    result.reason = reason;
    return result;
  };
  if (absl::Status s = CheckFeasibility(problem); !s.ok()) return s;
  const int n = problem.num_nodes();
  if (n == 0) return done(EndReason::kConverged);

  std::mt19937_64 rng(seed_);
  Evaluator eval(problem);
  Assignment q(n);
  const Kind kinds[] = {Kind::kUniform, Kind::kSplit, Kind::kNudge};
  int turn = 0;
  while (true) {
    if (stop.stop_requested()) return done(EndReason::kCancelled);
    const absl::Time now = absl::Now();
    if (now >= deadline) return done(EndReason::kBudget);
    if (budget.samples > 0 && result.samples >= budget.samples) {
      return done(EndReason::kBudget);
    }

    Kind kind = kinds[turn++ % 3];
    if (kind == Kind::kNudge && result.best.empty()) kind = Kind::kSplit;
    switch (kind) {
      case Kind::kUniform:
        Uniform(problem, rng, &q);
        break;
      case Kind::kSplit:
        Split(problem, rng, &q);
        break;
      case Kind::kNudge:
        Nudge(problem, result.best, rng, &q);
        break;
    }

    RepairOptions options = repair_;
    options.stop = &stop;
    options.time_limit = std::min(options.time_limit, deadline - now);
    absl::StatusOr<RepairResult> r = Repair(problem, q, {}, options);
    ++result.samples;
    if (!r.ok()) {
      // No placement exists at all: the caller needs the explanation.
      if (absl::IsFailedPrecondition(r.status())) return r.status();
      // A limit or the stop ended this repair before any placement.
      if (absl::IsDeadlineExceeded(r.status()) ||
          absl::IsCancelled(r.status())) {
        continue;
      }
      return r.status();
    }
    const Figures& f = eval.Score(r->placement);
    if (!result.best.empty() &&
        !(f.throughput_per_s > result.throughput_per_s)) {
      continue;
    }
    result.best = r->placement;
    result.throughput_per_s = f.throughput_per_s;
    result.quality = f.quality;
    if (on_improvement) {
      on_improvement(
          Improvement{result.best, f, result.samples, absl::Now() - start});
    }
  }
}

}  // namespace mcmpart
