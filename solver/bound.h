// Proved limits on the best possible placement, and how an answer states its
// distance from them (docs/problem.md, "How good an answer is").
#ifndef MCMPART_SOLVER_BOUND_H_
#define MCMPART_SOLVER_BOUND_H_

#include "mcmpart/v1/problem.pb.h"
#include "solver/problem.h"

namespace mcmpart {

// Two placements whose bottlenecks differ by less than this relative amount
// are taken as equal: a placement this close to a proved bound is reported
// as proved optimal. Far below any difference the cost model can mean, far
// above the rounding of its sums.
inline constexpr double kOptimalityTolerance = 1e-9;

// The compute bound of the spec: no valid placement has a bottleneck below
// max(sum of time(v) / C, max of time(v)), with time(v) on the chip where v
// runs fastest. 1 / Problem::upper_bound_per_s(); 0 for a graph that costs
// nothing. O(1).
double BottleneckBound(const Problem& problem);

// Makes evaluation.bound_per_s at most 1 / bound_s, where bound_s > 0 is a
// proved lower bound on the bottleneck of every valid placement (bound_s <= 0:
// none), with bound_source "exact" when that tightens it; then sets gap and
// proved_optimal from throughput_per_s. Evaluator::Evaluate starts every
// evaluation at the compute bound (bound_source "compute"). An invalid
// placement gets no claim: gap 1, proved_optimal false.
void TightenBound(double bound_s, v1::Evaluation* evaluation);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_BOUND_H_
