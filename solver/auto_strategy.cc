#include "solver/auto_strategy.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "solver/anneal.h"
#include "solver/bound.h"
#include "solver/evaluator.h"
#include "solver/exact.h"
#include "solver/random_search.h"

namespace mcmpart {
namespace {

// Repaired random candidates tried when the exact search found nothing.
constexpr int64_t kProbeSamples = 48;

}  // namespace

absl::StatusOr<StrategyResult> Auto::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  const absl::Time start = absl::Now();
  StrategyResult out;
  double bound_s = BottleneckBound(problem);
  int64_t samples_before = 0;  // samples of the stages already run
  bool proved = false;

  // One stream across the stages: only strict improvements go out.
  auto forward = [&](const Improvement& imp) {
    if (!out.best.empty() &&
        imp.figures.throughput_per_s <= out.throughput_per_s) {
      return;
    }
    out.best = imp.placement;
    out.throughput_per_s = imp.figures.throughput_per_s;
    out.quality = imp.figures.quality;
    bound_s = std::max(bound_s, imp.bound_s);
    if (on_improvement) {
      on_improvement(Improvement{out.best, imp.figures,
                                 samples_before + imp.samples,
                                 absl::Now() - start, bound_s});
    }
  };
  auto time_left = [&] {
    return std::max(budget.time - (absl::Now() - start), absl::ZeroDuration());
  };
  auto samples_left = [&]() -> int64_t {
    if (budget.samples <= 0) return 0;
    return std::max<int64_t>(budget.samples - samples_before, 1);
  };
  auto finish = [&](EndReason reason) {
    out.reason = reason;
    out.bound_s = bound_s;
    if (!out.best.empty() && out.throughput_per_s > 0) {
      const double bottleneck = 1.0 / out.throughput_per_s;
      proved = proved || bottleneck <= bound_s * (1 + kOptimalityTolerance);
    }
    out.proved_optimal = proved && !out.best.empty();
    if (out.proved_optimal) out.reason = EndReason::kConverged;
    out.samples = samples_before;
    out.elapsed = absl::Now() - start;
    return out;
  };
  // Runs one stage and folds its result in; false when the run is over.
  auto stage = [&](Strategy& s, const Budget& b) -> absl::StatusOr<bool> {
    absl::StatusOr<StrategyResult> r = s.Run(problem, b, stop, forward);
    if (!r.ok()) return r.status();
    samples_before += r->samples;
    bound_s = std::max(bound_s, r->bound_s);
    proved = proved || r->proved_optimal;
    if (r->reason == EndReason::kCancelled || stop.stop_requested()) {
      out.reason = EndReason::kCancelled;
      return false;
    }
    if (proved || r->reason == EndReason::kConverged) return false;
    if (budget.samples > 0 && samples_before >= budget.samples) return false;
    return time_left() > absl::ZeroDuration();
  };

  StrategyOptions base = options_.base;
  base.initial.clear();
  Exact exact(base);
  Budget first;
  first.time = budget.time * std::clamp(options_.exact_share, 0.0, 1.0);
  absl::StatusOr<bool> more = stage(exact, first);
  if (!more.ok()) return more.status();
  if (out.reason == EndReason::kCancelled) return finish(EndReason::kCancelled);
  if (!*more) return finish(EndReason::kConverged);

  // Nothing found yet (wide graphs under a tight hop limit): repaired
  // random candidates reach placements that neither the exact search's
  // first passes nor a repair of nothing reach, and annealing needs a start.
  if (out.best.empty()) {
    RandomSearch random(base);
    Budget probe;
    probe.time = time_left() / 3;
    probe.samples = kProbeSamples;
    more = stage(random, probe);
    if (!more.ok()) return more.status();
    if (out.reason == EndReason::kCancelled) {
      return finish(EndReason::kCancelled);
    }
    if (!*more) {
      return finish(proved ? EndReason::kConverged : EndReason::kBudget);
    }
  }

  // Annealing, warm-started from the best placement so far.
  StrategyOptions warm = base;
  warm.initial = out.best;
  Anneal anneal(warm);
  Budget second;
  second.time = options_.learned ? time_left() / 2 : time_left();
  second.samples = samples_left();
  more = stage(anneal, second);
  if (!more.ok()) return more.status();
  if (out.reason == EndReason::kCancelled) return finish(EndReason::kCancelled);
  if (!*more || !options_.learned) {
    return finish(proved ? EndReason::kConverged : EndReason::kBudget);
  }

  // The learned stage, warm-started from the best so far.
  warm.initial = out.best;
  absl::StatusOr<std::unique_ptr<Strategy>> learned = options_.learned(warm);
  if (!learned.ok()) return learned.status();
  Budget third;
  third.time = time_left();
  third.samples = samples_left();
  more = stage(**learned, third);
  if (!more.ok()) return more.status();
  if (out.reason == EndReason::kCancelled) return finish(EndReason::kCancelled);
  return finish(proved ? EndReason::kConverged : EndReason::kBudget);
}

}  // namespace mcmpart
