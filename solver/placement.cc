#include "solver/placement.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "solver/quote.h"

namespace mcmpart {

absl::StatusOr<Assignment> AssignmentFromProto(const Problem& problem,
                                               const v1::Placement& placement,
                                               bool allow_missing) {
  const Graph& g = problem.graph();
  const int c = problem.num_chips();
  Assignment p(g.num_nodes(), -1);
  for (const auto& [name, chip] : placement.assignment()) {
    std::optional<int> v = g.FindNode(name);
    if (!v) {
      return absl::InvalidArgumentError(
          absl::StrCat("placement: unknown node ", QuoteInput(name)));
    }
    if (chip < 0 || chip >= c) {
      return absl::InvalidArgumentError(
          absl::StrCat("placement: node ", QuoteInput(name), " is on chip ",
                       chip, "; the hardware has chips 0..", c - 1));
    }
    p[*v] = chip;
  }
  if (!allow_missing) {
    int missing = 0;
    int first = -1;
    for (int v = 0; v < g.num_nodes(); ++v) {
      if (p[v] < 0) {
        if (first < 0) first = v;
        ++missing;
      }
    }
    if (missing > 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "placement: node ", QuoteInput(g.node_name(first)), " has no chip (",
          missing, " of ", g.num_nodes(), " nodes unassigned)"));
    }
  }
  return p;
}

v1::Placement AssignmentToProto(const Graph& graph, absl::Span<const int> p) {
  v1::Placement placement;
  auto& map = *placement.mutable_assignment();
  for (int v = 0; v < graph.num_nodes(); ++v) {
    if (p[v] >= 0) map[graph.node_name(v)] = p[v];
  }
  return placement;
}

}  // namespace mcmpart
