// Per-node chip bounds lo(v)..hi(v) implied by pins, edges, max_hops,
// colocation and no-skipping, and the pre-checks that come with them
// (docs/repair.md, "Cheap checks"). The later steps of a repair start from
// these bounds: the warm start, the cut and the Gecode model.
#ifndef MCMPART_SOLVER_REPAIR_BOUNDS_H_
#define MCMPART_SOLVER_REPAIR_BOUNDS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "solver/problem.h"
#include "solver/repair/checks.h"

namespace mcmpart::repair {

// What the pre-checks give the solver.
struct Bounds {
  std::vector<int> pin;  // effective pin per node, -1 if none
  std::vector<int> lo, hi;
};

// The chip bounds, tightened by sweeps over the edges and the colocation
// sets; FAILED_PRECONDITION when they leave a node no chip, or no chip large
// enough, or when the nodes forced onto chips 0..c (or c..C-1) need more
// SRAM than those chips have, or when a pin leaves chip 0 (or, with
// use_all_chips, chip C-1) empty.
absl::StatusOr<Bounds> ComputeBounds(const Problem& problem,
                                     const ColocationSets& sets,
                                     const EffectivePins& pins);

// Every check of checks.h in order, then ComputeBounds: the first fault
// found, else the bounds. CheckFeasibility (solver/repair.h) is this
// without the bounds.
absl::StatusOr<Bounds> CheckAndBound(const Problem& problem);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_BOUNDS_H_
