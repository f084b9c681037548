#include "solver/exact.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "solver/bound.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/exact/search.h"
#include "solver/repair.h"

// The lattice walk itself is in solver/exact/ (lattice.h: its data;
// search.h: one run). This file holds the public entry points: how
// SolveExact finds a first placement and chains runs, and strategy "exact".
namespace mcmpart {

using exact::Search;

absl::string_view ExactOutcomeName(ExactOutcome outcome) {
  switch (outcome) {
    case ExactOutcome::kProved:
      return "proved";
    case ExactOutcome::kMemoryLimit:
      return "memory limit";
    case ExactOutcome::kTimeLimit:
      return "time limit";
    case ExactOutcome::kCancelled:
      return "cancelled";
    case ExactOutcome::kBeam:
      return "beam";
  }
  return "unknown";
}

absl::StatusOr<ExactResult> SolveExact(const Problem& problem,
                                       const ExactOptions& options) {
  if (options.beam > 0 || !options.incumbent.empty() ||
      !options.construct_incumbent) {
    return Search(problem, options).Run();
  }
  const absl::Time start = absl::Now();
  ExactOptions main = options;
  main.construct_incumbent = false;
  absl::StatusOr<Assignment> made = ConstructPlacement(problem, options.stop);
  if (made.ok()) {
    main.incumbent = *std::move(made);
    if (options.on_incumbent) options.on_incumbent(main.incumbent);
    return Search(problem, main).Run();
  }
  // No contiguous split of the orders it tries (wide fan-in, hops beyond
  // one): an explained infeasibility is cheap to find, and a beam search
  // over the same lattice finds a first placement to prune with.
  absl::Status feasible = CheckFeasibility(problem);
  if (!feasible.ok() && !absl::IsUnimplemented(feasible)) return feasible;
  // Narrow beams first: they are cheap, and on wide graphs a wider beam
  // keeps more balanced partial placements that run out of SRAM later.
  absl::StatusOr<ExactResult> first;
  for (int64_t width :
       {kIncumbentBeam / 16, kIncumbentBeam / 4, kIncumbentBeam}) {
    ExactOptions beam = main;
    beam.beam = width;
    if (options.time_limit != absl::InfiniteDuration()) {
      beam.time_limit = std::max(options.time_limit / 2 - (absl::Now() - start),
                                 absl::ZeroDuration());
    }
    absl::StatusOr<ExactResult> tried = Search(problem, beam).Run();
    if (!tried.ok() || tried->outcome == ExactOutcome::kProved) return tried;
    const bool found = !tried->best.empty();
    // A limit, not the beam, ended it: wider beams would fare no better.
    const bool last = found || tried->outcome != ExactOutcome::kBeam;
    if (!first.ok() || found || tried->bound_s > first->bound_s) {
      first = std::move(tried);
    }
    if (last) break;
  }
  if (!first->best.empty()) {
    main.incumbent = first->best;
    if (options.on_incumbent) options.on_incumbent(main.incumbent);
  }
  if (options.time_limit != absl::InfiniteDuration()) {
    main.time_limit = std::max(options.time_limit - (absl::Now() - start),
                               absl::ZeroDuration());
  }
  absl::StatusOr<ExactResult> r = Search(problem, main).Run();
  if (!r.ok()) return r;
  // Both bounds are proved; the beam's may be the larger when the exact
  // search stopped early.
  if (r->outcome != ExactOutcome::kProved) {
    r->bound_s =
        std::min(std::max(r->bound_s, first->bound_s), r->bottleneck_s);
  }
  r->downsets += first->downsets;
  r->states += first->states;
  r->peak_bytes = std::max(r->peak_bytes, first->peak_bytes);
  r->elapsed = absl::Now() - start;
  return r;
}

absl::StatusOr<StrategyResult> Exact::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  const absl::Time start = absl::Now();
  ExactOptions options;
  options.time_limit = budget.time;
  options.stop = &stop;
  if (options_.exact_memory_bytes > 0) {
    options.memory_limit_bytes = options_.exact_memory_bytes;
  }
  Evaluator eval(problem);
  StrategyResult out;
  const double cheap = BottleneckBound(problem);
  // Makes `p` the best so far and streams it.
  auto take = [&](const Assignment& p, int64_t samples, double bound_s) {
    out.best = p;
    out.samples = samples;
    const Figures& f = eval.Score(out.best);
    out.throughput_per_s = f.throughput_per_s;
    out.quality = f.quality;
    if (on_improvement) {
      on_improvement(
          Improvement{out.best, f, samples, absl::Now() - start, bound_s});
    }
  };
  if (IsWarmStart(problem, options_.initial)) {
    options.incumbent = options_.initial;
    take(options.incumbent, 1, cheap);
  } else {
    options.on_incumbent = [&](const Assignment& p) { take(p, 1, cheap); };
  }
  absl::StatusOr<ExactResult> r = SolveExact(problem, options);
  if (!r.ok()) return r.status();
  out.bound_s = std::max(r->bound_s, cheap);
  out.proved_optimal = r->outcome == ExactOutcome::kProved;
  out.samples = std::max<int64_t>(r->downsets, 1);
  if (!r->best.empty() && r->best != out.best) {
    take(r->best, std::max<int64_t>(r->downsets, 1), out.bound_s);
  }
  out.elapsed = absl::Now() - start;
  switch (r->outcome) {
    case ExactOutcome::kProved:
      out.reason = EndReason::kConverged;
      break;
    case ExactOutcome::kCancelled:
      out.reason = EndReason::kCancelled;
      break;
    default:
      out.reason = EndReason::kBudget;
  }
  return out;
}

}  // namespace mcmpart
