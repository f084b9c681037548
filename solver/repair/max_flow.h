// A maximum s-t flow by Dinic's algorithm, iterative (graphs of long chains
// would overflow the stack recursively), with a minimum cut read off the
// last level graph. Used by the repair's lower bound (min_cut.h); usable on
// any graph with non-negative integer capacities.
#ifndef MCMPART_SOLVER_REPAIR_MAX_FLOW_H_
#define MCMPART_SOLVER_REPAIR_MAX_FLOW_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "solver/strategy.h"

namespace mcmpart::repair {

class MaxFlow {
 public:
  // A graph of `nodes` nodes, 0..nodes-1, and no arcs.
  explicit MaxFlow(int nodes) : head_(nodes, -1), level_(nodes), it_(nodes) {}

  // An arc from -> to of capacity `cap` >= 0 (parallel arcs add up).
  void AddArc(int from, int to, int64_t cap) {
    arcs_.push_back({to, head_[from], cap});
    head_[from] = static_cast<int>(arcs_.size()) - 1;
    arcs_.push_back({from, head_[to], 0});
    head_[to] = static_cast<int>(arcs_.size()) - 1;
  }

  // The maximum flow value from s to t (s != t), or -1 when `deadline`
  // passes or `stop` (may be null) is set; both are checked between phases.
  // Once per graph: the flow stays in the residual capacities.
  int64_t Run(int s, int t, absl::Time deadline, const StopToken* stop);
  int64_t Run(int s, int t) {
    return Run(s, t, absl::InfiniteFuture(), nullptr);
  }

  // After a completed Run: whether `v` is on the source side of a minimum
  // cut (reachable from s in the residual graph).
  bool SourceSide(int v) const { return level_[v] >= 0; }

 private:
  struct Arc {
    int to;
    int next;
    int64_t cap;
  };

  // Breadth-first levels from s in the residual graph; whether t is reached.
  bool Levels(int s, int t);
  // A blocking flow along the level graph.
  int64_t Blocking(int s, int t);

  std::vector<Arc> arcs_;
  std::vector<int> head_;
  std::vector<int> level_;
  std::vector<int> it_;
  std::vector<int> queue_;
  std::vector<int> path_;
};

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_MAX_FLOW_H_
