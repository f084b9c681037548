// Stable topological sorting, shared by the graph IR and the ONNX importer.
#ifndef MCMPART_SOLVER_TOPOLOGICAL_ORDER_H_
#define MCMPART_SOLVER_TOPOLOGICAL_ORDER_H_

#include <vector>

#include "absl/types/span.h"

namespace mcmpart {

// Sorts nodes 0..n-1 given each node's distinct predecessors. Kahn's
// algorithm always taking the lowest-numbered ready node, so an input that is
// already topological keeps its order. O((V + E) log V).
//
// Returns true and sets `order` when the graph is acyclic. Otherwise returns
// false and sets `cycle` to the nodes of one cycle in edge order, starting
// from its lowest-numbered node (not repeated at the end); a self-loop is a
// cycle of one node.
bool StableTopologicalOrder(absl::Span<const std::vector<int>> preds,
                            std::vector<int>* order, std::vector<int>* cycle);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_TOPOLOGICAL_ORDER_H_
