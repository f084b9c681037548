// The contiguous splits of one topological order into chip runs: the exact
// search over cut positions behind the constructive placement, SplitOrder
// and Rebalance (solver/constructive.h). Internal to the solver library.
#ifndef MCMPART_SOLVER_SPLITTER_H_
#define MCMPART_SOLVER_SPLITTER_H_

#include <string>
#include <vector>

#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/split_cuts.h"

namespace mcmpart {

// Contiguous splits of the topological order. A split is cut positions
// 0 = s_0 < s_1 < ... < s_k = n; chip c runs nodes [s_c, s_{c+1}). Every
// figure of the cost model is then a function of one or two cuts:
//   compute(c) = sum of time(v, c) over [s_c, s_{c+1})
//   memory(c)  = live_bytes(s_c) + resident bytes of [s_c, s_{c+1})
//   comm(c)    = live_bytes(s_{c+1}) / bw(c) + live_count(s_{c+1}) * lat(c)
// where live(s) are the tensors produced before s and read at or after s.
// max_hops = h holds when s_{i+h} > max_reach(s_i) for every cut i: what is
// placed before s_i (chips < i) is read before s_{i+h} (chips < i + h).
// Pins bound s_c and s_{c+1}; colocation groups forbid cuts inside them.
// With h = 1 (or h >= C - 1, when the rule can never bind) the reachable
// cuts after c chips depend only on the reachable cuts after c - 1 chips: a
// layered reachability, one layer per chip. With 1 < h < C - 1 a cut's
// history matters too; each reached cut keeps its smallest predecessor,
// which for h = 2 is exact (the smaller s_{c-1}, the weaker the demand
// s_{c+1} > max_reach(s_{c-1}) on the next cut) and for larger h a sound
// heuristic (every split found is valid; a split whose history is not the
// one kept may be missed).
class Splitter {
 public:
  // `order` is a topological order of the nodes; runs are contiguous in
  // it. Everything below is indexed by position in `order`.
  Splitter(const Problem& problem, std::vector<int> order);

  // Whether some chip count admits a split with bottleneck <= t. With
  // `all_counts` every chip count is explored (for Reconstruct and
  // Explain); without, it stops at the first feasible one. Every layer is
  // kept either way: with a hop rule the layers hold the predecessors.
  bool Feasible(double t, bool all_counts);

  // Whether Feasible is exact: true unless 2 < max_hops < C - 1, where a
  // reached cut keeps one history of several. When exact, a split found at
  // one target is found again at its own bottleneck.
  bool exact() const {
    return hops_ != HopRule::kChain || problem_.max_hops() <= 2;
  }

  // Chip counts that were feasible at the last Feasible call.
  const std::vector<int>& feasible_k() const { return feasible_k_; }

  // A split into k runs with bottleneck <= t; needs Feasible(t, true) first
  // and k in feasible_k(). Walks the layers back from the end; among the
  // admissible starts of each run it takes the one whose compute is closest
  // to an even share of what remains, so that the chips off the bottleneck
  // are balanced too (a better start for annealing). A start is admissible
  // when its run fits and its kept history keeps max_hops with the cuts
  // already chosen after it; the start the layer recorded always is.
  Assignment Reconstruct(int k, double t) const;

  // A lower bound on the bottleneck of every split: the slowest node on its
  // fastest chip, and the total compute on the fastest chips spread evenly.
  // Feasible(t) is false below it.
  double ComputeFloor() const;

  // The largest compute and link time of `split` (a contiguous split of the
  // order, as Reconstruct returns), summed exactly as Feasible sums them:
  // Feasible(t) holds at this t for the split itself.
  double SplitBottleneck(const Assignment& split) const;

  // An upper bound on every compute and link time of any split: a bottleneck
  // target this large is as good as no target.
  double MaxLoad() const;

  // Why Feasible(inf, true) failed: the first node no run of any split
  // gets past, why the run before it cannot take it, and why no new chip
  // can start at it.
  std::string Explain() const;

 private:
  // How max_hops constrains the cuts: s_{i+1} > max_reach(s_i) (one hop),
  // not at all (max_hops >= C - 1: no split has max_hops + 1 cuts after
  // chip 0), or through the cut max_hops - 1 chips back (a chain of kept
  // predecessors).
  enum class HopRule { kOneHop, kNone, kChain };
  static HopRule RuleOf(const Problem& problem);

  // Calls on_run(s, lo, hi) for every start s that layer c reaches and
  // every admissible run of chip c from it, ending in [lo, hi] (compute
  // <= t, memory, max_hops, pins); whether there was one.
  template <typename OnRun>
  bool ForEachRun(int c, double t, OnRun on_run) const;

  // Layer c + 1 from layer c when the hop rule does not depend on history:
  // the ends a run of chip c may take from a start s form an interval, and
  // a difference array marks their union (value 0: reached). False when
  // no run of chip c fits.
  bool ReachByInterval(int c, double t, int* next);

  // Layer c + 1 from layer c under the chain rule: every end keeps the
  // smallest start that reaches it (starts in increasing order, each end
  // claimed once through a find-next-unclaimed forest). False when no run
  // of chip c fits.
  bool ReachByPredecessor(int c, double t, int* next);

  // The cut `back` chips before cut s of layer c along the kept
  // predecessors (cut 0 before chip 0).
  int Ancestor(int c, int s, int back) const;

  // Whether cut s of layer c, with its kept history, keeps max_hops with
  // the later cuts cut[c + 1..k] already chosen (cut[k] = n).
  bool KeepsHops(int c, int s, const std::vector<int>& cut, int k) const;

  static std::vector<int> Pins(const Problem& problem);

  // Per chip kind (one when all chips are alike): prefix sums of compute
  // time and, per start, the furthest end whose memory fits.
  void PrepareChipKinds();

  std::string Name(int position) const;

  // Why chip c cannot start a run at position s.
  std::string WhyNotStart(int c, int s) const;

  // The first admissible end of chip c's run when it starts at cut s (of
  // layer c, with its kept history), or n + 1 when chip c cannot start at s.
  int Lo(int c, int s) const;

  // Link c's time when the cut after chip c is at s.
  double CommTime(int c, int s) const;

  const Problem& problem_;
  const Graph& graph_;
  const int n_;
  const int chips_;
  const std::vector<int> order_;
  const SplitCuts cuts_;
  const HopRule hops_;
  std::vector<double> live_bytes_;
  std::vector<int> live_count_;
  std::vector<double> prefix_resident_;
  std::vector<std::vector<double>> prefix_time_;  // per chip kind
  std::vector<std::vector<int>> hi_mem_;          // per chip kind
  std::vector<int> kind_of_chip_;
  // Prefix sums of each node's time on its fastest chip kind.
  std::vector<double> prefix_fastest_;
  // Per layer c (0..C) and cut s: -1 when no split reaches s after c chips,
  // else the predecessor kept for it (kChain) or 0.
  std::vector<int> layers_;
  // Per layer: the cuts [band_lo_, band_hi_] outside which every entry is
  // -1 (empty when lo > hi). The reached cuts of a layer form a band (about
  // a third of the order near the smallest bottleneck on moe_e8), so the
  // sweeps and the reset between calls walk the band, not the whole order.
  std::vector<int> band_lo_, band_hi_;
  std::vector<int> diff_;       // all zero between calls
  std::vector<int> unclaimed_;  // ReachByPredecessor's forest
  std::vector<int> feasible_k_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_SPLITTER_H_
