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

// What one run of Auto carries from stage to stage: the best placement so
// far, the best bound, the samples of the stages already run and whether
// the optimum is proved. The stages see one search through it: their
// improvements are forwarded only when strictly better than everything
// before, with samples and elapsed counted from the start of the run.
class StageChain {
 public:
  StageChain(const Problem& problem, const Budget& budget,
             const StopToken& stop, const ImprovementCallback& on_improvement)
      : problem_(problem),
        budget_(budget),
        stop_(stop),
        on_improvement_(on_improvement),
        start_(absl::Now()),
        bound_s_(BottleneckBound(problem)) {}

  // Runs one stage and folds its result in; false when the run is over
  // (cancelled, proved or converged, or the budget is used up).
  absl::StatusOr<bool> Stage(Strategy& s, const Budget& b) {
    absl::StatusOr<StrategyResult> r = s.Run(
        problem_, b, stop_, [this](const Improvement& imp) { Forward(imp); });
    if (!r.ok()) return r.status();
    samples_before_ += r->samples;
    bound_s_ = std::max(bound_s_, r->bound_s);
    proved_ = proved_ || r->proved_optimal;
    if (r->reason == EndReason::kCancelled || stop_.stop_requested()) {
      out_.reason = EndReason::kCancelled;
      return false;
    }
    if (proved_ || r->reason == EndReason::kConverged) return false;
    if (budget_.samples > 0 && samples_before_ >= budget_.samples) {
      return false;
    }
    return TimeLeft() > absl::ZeroDuration();
  }

  bool cancelled() const { return out_.reason == EndReason::kCancelled; }
  const Assignment& best() const { return out_.best; }

  // What is left of the run's budget for the next stage. A sample budget
  // never hands a stage 0 (which would mean "no limit").
  absl::Duration TimeLeft() const {
    return std::max(budget_.time - (absl::Now() - start_),
                    absl::ZeroDuration());
  }
  int64_t SamplesLeft() const {
    if (budget_.samples <= 0) return 0;
    return std::max<int64_t>(budget_.samples - samples_before_, 1);
  }

  // The reason for a run that ended at a limit rather than a proof.
  EndReason LimitReason() const {
    return proved_ ? EndReason::kConverged : EndReason::kBudget;
  }

  // The run's result. A best placement that reaches the bound is proved
  // optimal even when no stage proved it, and a proved run has converged.
  StrategyResult Finish(EndReason reason) {
    out_.reason = reason;
    out_.bound_s = bound_s_;
    if (!out_.best.empty() && out_.throughput_per_s > 0) {
      const double bottleneck = 1.0 / out_.throughput_per_s;
      proved_ = proved_ || bottleneck <= bound_s_ * (1 + kOptimalityTolerance);
    }
    out_.proved_optimal = proved_ && !out_.best.empty();
    if (out_.proved_optimal) out_.reason = EndReason::kConverged;
    out_.samples = samples_before_;
    out_.elapsed = absl::Now() - start_;
    return out_;
  }

 private:
  // One stream across the stages: only strict improvements go out.
  void Forward(const Improvement& imp) {
    if (!out_.best.empty() &&
        imp.figures.throughput_per_s <= out_.throughput_per_s) {
      return;
    }
    out_.best = imp.placement;
    out_.throughput_per_s = imp.figures.throughput_per_s;
    out_.quality = imp.figures.quality;
    bound_s_ = std::max(bound_s_, imp.bound_s);
    if (on_improvement_) {
      on_improvement_(Improvement{out_.best, imp.figures,
                                  samples_before_ + imp.samples,
                                  absl::Now() - start_, bound_s_});
    }
  }

  const Problem& problem_;
  const Budget& budget_;
  const StopToken& stop_;
  const ImprovementCallback& on_improvement_;
  const absl::Time start_;
  StrategyResult out_;
  double bound_s_;
  int64_t samples_before_ = 0;  // samples of the stages already run
  bool proved_ = false;
};

}  // namespace

absl::StatusOr<StrategyResult> Auto::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  StageChain chain(problem, budget, stop, on_improvement);
  StrategyOptions base = options_.base;
  base.initial.clear();

  // The exact search with its share of the time: often it proves the
  // optimum and the run ends here.
  Exact exact(base);
  Budget first;
  first.time = budget.time * std::clamp(options_.exact_share, 0.0, 1.0);
  absl::StatusOr<bool> more = chain.Stage(exact, first);
  if (!more.ok()) return more.status();
  if (chain.cancelled()) return chain.Finish(EndReason::kCancelled);
  if (!*more) return chain.Finish(EndReason::kConverged);

  // Nothing found yet (wide graphs under a tight hop limit): repaired
  // random candidates reach placements that neither the exact search's
  // first passes nor a repair of nothing reach, and annealing needs a start.
  if (chain.best().empty()) {
    RandomSearch random(base);
    Budget probe;
    probe.time = chain.TimeLeft() / 3;
    probe.samples = kProbeSamples;
    more = chain.Stage(random, probe);
    if (!more.ok()) return more.status();
    if (chain.cancelled()) return chain.Finish(EndReason::kCancelled);
    if (!*more) return chain.Finish(chain.LimitReason());
  }

  // Annealing, warm-started from the best placement so far.
  StrategyOptions warm = base;
  warm.initial = chain.best();
  Anneal anneal(warm);
  Budget second;
  second.time = options_.learned ? chain.TimeLeft() / 2 : chain.TimeLeft();
  second.samples = chain.SamplesLeft();
  more = chain.Stage(anneal, second);
  if (!more.ok()) return more.status();
  if (chain.cancelled()) return chain.Finish(EndReason::kCancelled);
  if (!*more || !options_.learned) return chain.Finish(chain.LimitReason());

  // The learned stage, warm-started from the best so far.
  warm.initial = chain.best();
  absl::StatusOr<std::unique_ptr<Strategy>> learned = options_.learned(warm);
  if (!learned.ok()) return learned.status();
  Budget third;
  third.time = chain.TimeLeft();
  third.samples = chain.SamplesLeft();
  more = chain.Stage(**learned, third);
  if (!more.ok()) return more.status();
  if (chain.cancelled()) return chain.Finish(EndReason::kCancelled);
  return chain.Finish(chain.LimitReason());
}

}  // namespace mcmpart
