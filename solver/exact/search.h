// The exact search's driver: one run of the lattice walk of
// docs/exact.md over a problem, with the options of SolveExact
// (solver/exact.h), which runs it once or several times (beams first).
// Internal to solver/exact*.
#ifndef MCMPART_SOLVER_EXACT_SEARCH_H_
#define MCMPART_SOLVER_EXACT_SEARCH_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "solver/evaluator.h"
#include "solver/exact.h"
#include "solver/exact/lattice.h"
#include "solver/placement.h"
#include "solver/problem.h"

namespace mcmpart::exact {

// One search; make one per run (Run is called once).
class Search {
 public:
  Search(const Problem& problem, const ExactOptions& options)
      : p_(problem),
        g_(problem.graph()),
        opt_(options),
        n_(problem.num_nodes()),
        chips_(problem.num_chips()),
        width_((n_ + 63) / 64) {}

  absl::StatusOr<ExactResult> Run();

 private:
  // The per-node and per-chip figures the search reads (fastest times,
  // resident bytes, SRAM limits and their suffix sums, hash keys), and
  // which dominance rules the hardware allows.
  void Prepare();
  // The placement to beat: opt_.incumbent (INVALID_ARGUMENT unless valid),
  // else the constructive split when construct_incumbent is set, else none.
  // Sets incumbent_, its bottleneck and the pruning cutoff.
  absl::Status SetIncumbent();
  // cur_ := the empty downset holding the empty placement.
  void AddRoot();
  // Expands every entry of cur_ into next_. When the stop, the time or the
  // memory limit ends it first, returns which one, with the expanded
  // placements retired so that OpenBound counts only the open ones.
  std::optional<ExactOutcome> ExpandLayer();
  // Marks dead the states of entries 0..e-1 of cur_ and the first
  // `expanded` of entry e: their placements live on in next_.
  void RetireExpanded(int32_t e, size_t expanded);
  // The result: the better of the incumbent and the best placement found,
  // with `bound` as its bound unless the search proved optimality.
  ExactResult Finish(ExactOutcome outcome, double bound);
  bool InJ(const uint64_t* w, int v) const {
    return (w[v >> 6] >> (v & 63)) & 1;
  }
  double Optimistic(double b, double acc_c, int chip, double rem_time) const {
    return std::max({b, acc_c, lb0_, (acc_c + rem_time) / (chips_ - chip)});
  }
  double Cutoff() const { return std::min(incumbent_cut_, best_found_); }
  bool Dominates(const Layer& la, const State& a, const State& b) const;
  // Adds `s` (pending list `pend`) to entry `e` of `layer` unless a state
  // there dominates it; marks the ones it dominates dead. Returns the new
  // state's index or -1.
  int32_t Insert(Layer* layer, int32_t e, State s,
                 const std::vector<Pending>& pend, int32_t parent_trail,
                 int32_t action);
  int32_t ChildEntry(int32_t e, int v, std::vector<int>* left);
  // Expands the partial placements of entry `e` of cur_ (those its closes
  // add too). Returns how many it expanded: all of them, unless a limit
  // (LimitReached) cut it short.
  size_t ProcessEntry(int32_t e);
  // addable_ := the nodes that may join entry e's downset J (not in J,
  // every predecessor in J), ascending.
  void CollectAddable(int32_t e);
  // Places addable_[a] on the open chip of `s`, a partial placement of
  // entry e: a complete placement when it is the last node, else a state of
  // the child entry in next_ (made on first use, into child_[a]).
  void TryAdd(int32_t e, const State& s, size_t a);
  // The stop, the time limit or the memory limit has been reached.
  bool LimitReached() const {
    return (opt_.stop != nullptr && opt_.stop->stop_requested()) ||
           absl::Now() >= deadline_ || Bytes() > opt_.memory_limit_bytes;
  }
  void TryClose(int32_t e, const State& s);
  // Completes `s` with every node outside J on its open chip, when valid.
  void TryFinish(int32_t e, const State& s);
  // A completed placement of cost `cost` (the search's sums) reached by
  // `step`: kept as the best when the evaluator confirms it is valid.
  void Record(double cost, Trail step);
  // Records why a partial placement of `depth` nodes went no further. Only
  // the deepest blocks explain an infeasible instance, and only when no
  // placement is known is the explanation needed: `text` (a callable
  // returning the sentence) runs only then, off the search's hot path.
  template <typename Text>
  void Block(int depth, const Text& text) {
    if (incumbent_cut_ < kInf || depth <= blocker_.depth) return;
    blocker_.depth = depth;
    blocker_.text = text();
  }
  double OpenBound() const;
  // Keeps the opt_.beam partial placements of next_ with the least bound.
  void TrimToBeam();
  bool ColocationConsistent(const uint64_t* w) const;
  int FirstOpenPin(const uint64_t* w) const;
  Assignment Reconstruct(int32_t trail) const;
  int64_t Bytes() const {
    return cur_.Bytes() + next_.Bytes() +
           static_cast<int64_t>(trail_.capacity() * sizeof(Trail));
  }
  std::string Infeasible() const;

  const Problem& p_;
  const Graph& g_;
  const ExactOptions& opt_;
  const int n_;
  const int chips_;
  const int width_;
  int hops_ = 1;
  bool hop_free_ = false;         // max_hops >= C - 1: no hop constraint binds
  bool cross_level_ = false;      // fewer chips used dominates (uniform case)
  bool finish_anywhere_ = false;  // TryFinish from every chip
  double lb0_ = 0;
  std::vector<double> tmin_, res_;
  std::vector<double> sram_, suffix_sram_;
  std::vector<uint64_t> zobrist_;
  std::vector<int> sources_;
  std::vector<std::pair<int, int>> pinned_;  // (chip, node), by chip

  absl::Time start_;
  Assignment incumbent_;       // the placement to beat; may be empty
  double incumbent_s_ = kInf;  // its bottleneck

  Layer cur_, next_;
  int depth_ = 0;  // size of the downsets in cur_
  std::vector<Trail> trail_;
  absl::Time deadline_ = absl::InfiniteFuture();
  // Beam search: the least pruning bound of the partial placements dropped.
  double dropped_bound_ = kInf;
  bool truncated_ = false;
  // A completion the evaluator rejected: a bug, reported as such.
  bool inconsistent_ = false;
  Evaluator eval_{p_};
  int64_t ticks_ = 0;
  double incumbent_cut_ = kInf;
  double best_found_ = kInf;
  int32_t best_trail_ = -1;
  int64_t downsets_ = 0, states_ = 0, peak_ = 0;
  Blocker blocker_;

  // Scratch, reused per entry.
  std::vector<int64_t> mark_;
  int64_t epoch_ = 0;
  std::vector<int> addable_;
  std::vector<int32_t> child_;
  std::vector<std::vector<int>> left_;
  std::vector<Pending> scratch_pend_;
  std::vector<uint64_t> scratch_words_;
};

}  // namespace mcmpart::exact

#endif  // MCMPART_SOLVER_EXACT_SEARCH_H_
