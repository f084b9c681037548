// The cheap necessary conditions of a valid placement, one function per
// fault and one wording per fault (docs/repair.md, "Messages"). Each
// returns FAILED_PRECONDITION with a message a user can act on when it
// proves that no valid placement exists. The repair runs them all before
// any search (CheckFeasibility, solver/repair/bounds.h); the constructive
// split runs CheckPinsAndMemory, so both say the same for the same fault.
#ifndef MCMPART_SOLVER_REPAIR_CHECKS_H_
#define MCMPART_SOLVER_REPAIR_CHECKS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "solver/graph.h"
#include "solver/problem.h"

namespace mcmpart::repair {

// Node v's name, quoted for a message.
std::string Quote(const Graph& g, int v);

// Colocation groups merged where they overlap (a node may be in several).
struct ColocationSets {
  std::vector<int> root;      // per node: the smallest node of its set
  std::vector<double> bytes;  // per root: resident bytes of the set
  // Per root: the set's pin (-1 if none) and the node whose pin it is.
  std::vector<int> pin;
  std::vector<int> pinned_by;
  int count = 0;  // sets: the nodes that can go to different chips
};

// Pins spread over colocation sets: a pin holds for its whole set.
struct EffectivePins {
  std::vector<int> chip;    // per node, -1 if none
  std::vector<int> source;  // the node whose pin it is, -1 if none
  // "is pinned to chip 3", or "must be on chip 3 (colocated with 'z', which
  // is pinned there)".
  std::string Phrase(const Graph& g, int v) const;
};

// Every node's own param_bytes + output_bytes fit the largest chip.
absl::Status CheckEachNodeFits(const Problem& problem);

// Merges the colocation groups and spreads their pins; fails when one set
// holds nodes pinned to different chips.
absl::Status MergeColocationGroups(const Problem& problem,
                                   ColocationSets* sets);

// Every colocation set fits the largest chip.
absl::Status CheckColocationMemory(const Problem& problem,
                                   const ColocationSets& sets);

EffectivePins SpreadPins(const Problem& problem, const ColocationSets& sets);

// Every pinned node, with its colocation set, fits the chip it is pinned to.
absl::Status CheckPinnedMemory(const Problem& problem,
                               const ColocationSets& sets,
                               const EffectivePins& pins);

// All nodes together fit the total SRAM.
absl::Status CheckTotalMemory(const Problem& problem);

// Under a hop limit, each node and the producers of what it reads fit the
// best max_hops + 1 consecutive chips.
absl::Status CheckFanIn(const Problem& problem);

// Under a hop limit, node v and the nodes within d edges before it (or
// after it) lie within d * max_hops chips of it, so they share
// d * max_hops + 1 consecutive chips; for every d that leaves a chip out,
// they must pack into them: their bytes fit the best such window and, with
// identical chips, those over half a chip (no two of which share one) are
// no more than the chips (DLRM's tables, each read through one node, under
// max_hops 2). First, on the whole module: the nodes over half a chip are
// no more than the chips. Searched from the nodes where branches meet; skipped past a
// cap on the work.
absl::Status CheckReachWindows(const Problem& problem);

// The most SRAM any `span` consecutive chips hold (span <= C), and the
// first of them (may be null).
double BestWindow(const Hardware& hw, int span, int* first);

// Under a hop limit, the two ends of an edge and every node on a path
// between them fit the best max_hops + 1 consecutive chips (skipped past a
// cap on the work).
absl::Status CheckSkips(const Problem& problem);

// No two pinned nodes contradict acyclic dataflow or max_hops along the
// shortest path between them (skipped on huge inputs with many pins).
absl::Status CheckPinnedPaths(const Problem& problem,
                              const EffectivePins& pins);

// Enough colocation sets for the chips that must be in use (all of them
// with use_all_chips, chips 0..c below a pin to chip c).
absl::Status CheckChipsInUse(const Problem& problem, const ColocationSets& sets,
                             const EffectivePins& pins);

// What CheckNodesAndColocation found out on the way.
struct NodesAndColocation {
  ColocationSets sets;
  EffectivePins pins;
};

// The checks on single nodes, colocation sets, pins and total memory, in
// the order the repair runs them.
absl::StatusOr<NodesAndColocation> CheckNodesAndColocation(
    const Problem& problem);

// CheckNodesAndColocation, then CheckPinnedPaths: what the constructive
// split checks before it searches.
absl::Status CheckPinsAndMemory(const Problem& problem);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_CHECKS_H_
