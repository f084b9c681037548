// Placements as the search loops hold them (a chip id per node id) and as
// users write them (node name -> chip).
#ifndef MCMPART_SOLVER_PLACEMENT_H_
#define MCMPART_SOLVER_PLACEMENT_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/problem.h"

namespace mcmpart {

// p[v] is node v's chip; v is a Graph node id.
using Assignment = std::vector<int>;

// Node ids of `problem` to chips. Errors (INVALID_ARGUMENT): a name that is
// no node of the graph, a chip outside 0..C-1, and (unless `allow_missing`)
// a node with no chip. With `allow_missing`, absent nodes get -1.
absl::StatusOr<Assignment> AssignmentFromProto(const Problem& problem,
                                               const v1::Placement& placement,
                                               bool allow_missing = false);

// The user-facing form of `p` (every node with p[v] >= 0).
v1::Placement AssignmentToProto(const Graph& graph, absl::Span<const int> p);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_PLACEMENT_H_
