// Warm start: the best contiguous split of the topological order
// (docs/repair.md, pipeline step 4).
//
// Chips 0..k-1 take consecutive runs of node ids. Memory of chip c is then
// the run's residents plus T(a), the outputs of earlier nodes read at or
// after the run's start a. With every edge spanning at most one chip
// (stricter than or equal to max_hops), the run starting at a must extend
// past the last reader of any earlier node. Pins and colocation restrict
// where runs start and end (solver/split_cuts.h). Dynamic programming over
// (chip, run end) with a heap over run starts: O(C n log n).
#ifndef MCMPART_SOLVER_REPAIR_WARM_START_H_
#define MCMPART_SOLVER_REPAIR_WARM_START_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "solver/repair/instance.h"
#include "solver/strategy.h"

namespace mcmpart::repair {

// The split of minimum scaled distance into `placement` and `cost`; false
// when no split exists, the table would pass 10 M entries, `stop` (may be
// null) is set, or (above 100,000 nodes only) `deadline` passes.
bool ContiguousSplit(const Instance& in, absl::Time deadline,
                     const StopToken* stop, std::vector<int>* placement,
                     int64_t* cost);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_WARM_START_H_
