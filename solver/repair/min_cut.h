// Lower bound and guide: the repair without memory and no-skipping
// (docs/repair.md, pipeline step 5).
//
// Minimising sum of w(v) * [x(v) != q(v)] under x(u) <= x(v) <= x(u) + H
// per edge, pins, colocation and the chip bounds is a labelling problem with
// convex pairwise terms, solved exactly by one minimum cut (Ishikawa's
// construction): node v gets a chain s -> v_1 -> ... -> v_{C-1} -> t whose
// i-th arc costs w(v) * [q(v) != i], and x(v) = the number of chain nodes on
// the source side. Infinite arcs v_{i+1} -> v_i keep that side a prefix,
// u_i -> v_i enforces x(u) <= x(v) and v_{i+H} -> u_i enforces
// x(v) - x(u) <= H. Every valid placement is feasible here, so the cut is a
// lower bound on the distance; when its placement also fits memory and uses
// chips 0..k-1 it is optimal outright.
#ifndef MCMPART_SOLVER_REPAIR_MIN_CUT_H_
#define MCMPART_SOLVER_REPAIR_MIN_CUT_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "solver/repair/instance.h"
#include "solver/strategy.h"

namespace mcmpart::repair {

struct CutResult {
  bool done = false;        // false when the deadline passed or too large
  bool infeasible = false;  // not even the relaxation has a placement
  int64_t bound = 0;        // minimum distance without memory / no-skipping
  std::vector<int> placement;
};

// The relaxation's optimum; not done above 1 M chain nodes, or when
// `deadline` passes or `stop` (may be null) is set first.
CutResult MinCutRelaxation(const Instance& in, absl::Time deadline,
                           const StopToken* stop);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_MIN_CUT_H_
