// The repair's driver: the pipeline of docs/repair.md ("Pipeline"), one
// named phase per step, from the candidate itself to the three search
// phases (complete search, large-neighbourhood search, complete search).
#ifndef MCMPART_SOLVER_REPAIR_SEARCH_H_
#define MCMPART_SOLVER_REPAIR_SEARCH_H_

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "solver/problem.h"
#include "solver/repair.h"

namespace mcmpart::repair {

// Repair (solver/repair.h) without its exception guard: Gecode's
// exceptions pass through.
absl::StatusOr<RepairResult> RunRepair(const Problem& problem,
                                       absl::Span<const int> candidate,
                                       absl::Span<const double> weights,
                                       const RepairOptions& options);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_SEARCH_H_
