// A constructive valid placement: a topological order cut into contiguous
// runs, one run per chip, with the cuts chosen to minimise the bottleneck.
//
// Giving chips 0..k-1 consecutive ranges of a topological order always
// satisfies acyclic dataflow and no-skipping. Memory, link time and
// max_hops then depend on the cut positions only (a tensor is in transit on
// chip c, and crosses link c-1, exactly when its producer is before the cut
// that opens chip c and its last reader is at or after it). The search binary
// searches the bottleneck time T and decides, for each T, which cut positions
// are reachable chip by chip (an exact dynamic program over the contiguous
// splits, O(C * n) per T). It does so for several topological orders (the
// graph's own, depth- and breadth-first ones, a few seeded random ones),
// since independent branches interleaved differently often fit where the
// graph's order does not. See docs/strategies.md.
#ifndef MCMPART_SOLVER_CONSTRUCTIVE_H_
#define MCMPART_SOLVER_CONSTRUCTIVE_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {

// The best valid contiguous split of those topological orders into k = 1..C
// runs (k = C with use_all_chips), by throughput; deterministic. Pins and
// colocation groups are honoured when a contiguous split can honour them. A
// tensor may travel up to max_hops chips (paying transit buffers and link
// time on each chip it crosses), so wide fan-in (embedding tables, experts)
// spreads over the chips a hop limit allows.
//
// Errors: FAILED_PRECONDITION when no valid contiguous split exists, with a
// message naming what failed: a proof from the checks on single nodes,
// colocation groups, pins and total memory, worded as CheckFeasibility
// words them (solver/repair/checks.h), or the node no split of the graph's
// own order gets past and why.
// The heuristic is not complete: a valid non-contiguous placement may exist
// when it fails. CANCELLED when `stop` (may be null) is set during the search.
absl::StatusOr<Assignment> ConstructPlacement(const Problem& problem,
                                              const StopToken* stop);
inline absl::StatusOr<Assignment> ConstructPlacement(const Problem& problem) {
  return ConstructPlacement(problem, nullptr);
}

// The best valid contiguous split of one topological `order` of the nodes
// (chips 0..k-1 take consecutive runs of it), by throughput: the exact
// optimum of the bottleneck over those splits, ties to fewer chips. Pins,
// colocation groups, memory and max_hops are honoured. The optimum is exact
// for max_hops 1, 2 and >= C - 1; for 2 < max_hops < C - 1 the split found
// is valid but one that only a different history of earlier cuts allows
// may be missed. Errors: INVALID_ARGUMENT when `order` is not a permutation of
// the node ids or not topological (naming the edge), NOT_FOUND when no valid
// split of it exists, CANCELLED when `stop` (may be null) is set.
// With `tolerance` > 0 the search stops at a bottleneck within that
// relative distance of the smallest (fewer sweeps: for decoding many
// samples, where a reward need not be exact); INVALID_ARGUMENT unless
// 0 <= tolerance < 1. O(C * n * 64) time.
absl::StatusOr<Assignment> SplitOrder(const Problem& problem,
                                      absl::Span<const int> order,
                                      const StopToken* stop,
                                      double tolerance = 0);

// The nodes sorted by chip p[v], each chip's nodes in node-id order. For a
// placement with p(u) <= p(v) on every edge this is a topological order in
// which `p` is a contiguous split. `p` must have one entry per node.
std::vector<int> OrderOfPlacement(const Graph& graph, absl::Span<const int> p);

// A topological order that follows a proposed chip per node (which need
// not be valid: `chips` may break acyclic dataflow, max_hops or memory):
// Kahn's algorithm taking, among the ready nodes, the one with the
// smallest proposed chip, ties to the smaller id. For a placement with
// p(u) <= p(v) on every edge it is OrderOfPlacement(p). This is how a
// proposal becomes a valid placement fast: SplitOrder of this order keeps
// the proposal's grouping and sequence of nodes and places the chip
// boundaries exactly. `chips` must have one entry per node. O((V + E) log V).
std::vector<int> OrderByChips(const Graph& graph, absl::Span<const int> chips);

// Kahn's algorithm as in OrderByChips, with any key per node (smallest
// first, ties to the smaller id). `keys` must have one entry per node and
// no NaN. O((V + E) log V).
std::vector<int> OrderByKeys(const Graph& graph, absl::Span<const double> keys);

// Keeps the node order the placement induces and moves the chip boundaries
// along it (possibly using more or fewer chips): SplitOrder over
// OrderOfPlacement(p). Returns that split when it has strictly higher
// throughput than `placement`, otherwise `placement` unchanged (so never
// worse). Used on repaired policy
// samples: repair keeps the placement near the proposal, which leaves a
// slightly unbalanced proposal unbalanced; this fixes the balance exactly.
// Errors: INVALID_ARGUMENT when `placement` is not a valid placement of
// every node; CANCELLED when `stop` (may be null) is set.
absl::StatusOr<Assignment> Rebalance(const Problem& problem,
                                     absl::Span<const int> placement,
                                     const StopToken* stop);

// Strategy "constructive": ConstructPlacement as a strategy. Run returns at
// once (EndReason::kConverged, one sample) and reports the placement through
// on_improvement once. It ignores the budget: the construction is fast
// (microseconds to milliseconds on the shared graphs).
class Constructive : public Strategy {
 public:
  Constructive() = default;
  explicit Constructive(const StrategyOptions& /*options*/) {}

  absl::string_view name() const override { return "constructive"; }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_CONSTRUCTIVE_H_
