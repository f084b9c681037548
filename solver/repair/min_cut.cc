#include "solver/repair/min_cut.h"

#include <cstdint>
#include <vector>

#include "solver/repair/max_flow.h"

namespace mcmpart::repair {
namespace {

// Ishikawa's graph over chain nodes id(v, i), i in 1..k, plus s and t.
class CutGraph {
 public:
  CutGraph(const Instance& in, int64_t inf)
      : in_(in),
        k_(in.chips - 1),
        inf_(inf),
        s_(in.n * k_),
        t_(in.n * k_ + 1),
        flow_(in.n * k_ + 2) {
    for (int v = 0; v < in.n; ++v) AddNode(v);
    AddColocation();
  }

  int64_t Run(absl::Time deadline, const StopToken* stop) {
    return flow_.Run(s_, t_, deadline, stop);
  }

  // After Run: the placement of the minimum cut.
  std::vector<int> Placement() const {
    std::vector<int> p(in_.n, 0);
    for (int v = 0; v < in_.n; ++v) {
      for (int i = 1; i <= k_ && flow_.SourceSide(Id(v, i)); ++i) p[v] = i;
    }
    return p;
  }

 private:
  int Id(int v, int i) const { return v * k_ + (i - 1); }  // i in 1..k

  // Cost of x(v) = c: the distance term, infinite outside the bounds.
  int64_t Cost(int v, int c) const {
    if (c < in_.lo[v] || c > in_.hi[v]) return inf_;
    return in_.q[v] >= 0 && in_.q[v] != c ? in_.w[v] : 0;
  }

  // v's chain, and the arcs of the edges into v.
  void AddNode(int v) {
    const int k = k_;
    flow_.AddArc(s_, Id(v, 1), Cost(v, 0));
    for (int i = 1; i < k; ++i) {
      flow_.AddArc(Id(v, i), Id(v, i + 1), Cost(v, i));
      flow_.AddArc(Id(v, i + 1), Id(v, i), inf_);
    }
    flow_.AddArc(Id(v, k), t_, Cost(v, k));
    for (int u : in_.graph->predecessors(v)) {
      for (int i = 1; i <= k; ++i) flow_.AddArc(Id(u, i), Id(v, i), inf_);
      if (in_.hops < k) {
        for (int i = in_.hops + 1; i <= k; ++i) {
          flow_.AddArc(Id(v, i), Id(u, i - in_.hops), inf_);
        }
      }
    }
  }

  void AddColocation() {
    for (const std::vector<int>& group : in_.problem->colocation_groups()) {
      for (size_t j = 1; j < group.size(); ++j) {
        for (int i = 1; i <= k_; ++i) {
          flow_.AddArc(Id(group[0], i), Id(group[j], i), inf_);
          flow_.AddArc(Id(group[j], i), Id(group[0], i), inf_);
        }
      }
    }
  }

  const Instance& in_;
  const int k_;  // chain nodes per graph node
  const int64_t inf_;
  const int s_, t_;
  MaxFlow flow_;
};

}  // namespace

CutResult MinCutRelaxation(const Instance& in, absl::Time deadline,
                           const StopToken* stop) {
  CutResult r;
  const int n = in.n;
  const int k = in.chips - 1;  // chain nodes per graph node
  if (k == 0) {
    r.done = true;
    r.placement.assign(n, 0);
    for (int v = 0; v < n; ++v) r.bound += in.q[v] > 0 ? in.w[v] : 0;
    return r;
  }
  // About 250 bytes per chain node; beyond this the bound is not worth it.
  if (static_cast<int64_t>(n) * k > 1'000'000) return r;
  int64_t total = 0;
  for (int v = 0; v < n; ++v) total += in.w[v];
  const int64_t inf = total + 1;
  CutGraph graph(in, inf);
  const int64_t value = graph.Run(deadline, stop);
  if (value < 0) return r;
  r.done = true;
  if (value >= inf) {
    r.infeasible = true;
    return r;
  }
  r.bound = value;
  r.placement = graph.Placement();
  return r;
}

}  // namespace mcmpart::repair
