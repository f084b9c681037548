#include "solver/bound.h"

#include <algorithm>
#include <cmath>

namespace mcmpart {

double BottleneckBound(const Problem& problem) {
  const double ub = problem.upper_bound_per_s();
  return std::isfinite(ub) && ub > 0 ? 1.0 / ub : 0.0;
}

void TightenBound(double bound_s, v1::Evaluation* evaluation) {
  if (bound_s > 0 && std::isfinite(bound_s) &&
      1.0 / bound_s < evaluation->bound_per_s()) {
    evaluation->set_bound_per_s(1.0 / bound_s);
    evaluation->set_bound_source("exact");
  }
  if (!evaluation->valid()) {
    evaluation->set_gap(1);
    evaluation->set_proved_optimal(false);
    return;
  }
  const double bound = evaluation->bound_per_s();
  const double t = evaluation->throughput_per_s();
  // A graph that costs nothing runs at any rate (both infinite): every
  // valid placement is as good as any other.
  double gap = std::isinf(bound) ? (std::isinf(t) ? 0 : 1)
                                 : std::max(0.0, 1 - t / bound);
  if (gap <= kOptimalityTolerance) gap = 0;
  evaluation->set_gap(gap);
  evaluation->set_proved_optimal(gap == 0);
}

}  // namespace mcmpart
