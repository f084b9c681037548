// Polish: greedy descent from a valid placement to a nearby local optimum.
//
// A split of one node order (solver/constructive.h) places the chip
// boundaries exactly for that order, but a node that could sit on the other
// side of a boundary without breaking an edge (a parallel branch, an expert,
// a table) stays where its order put it. Polish moves such nodes, alone or
// as a coherent block, while each move lowers the bottleneck, or keeps it
// and lowers the annealer's objective (solver/anneal.h: the bottleneck plus
// a tie-breaking spread term that rewards unloading the runner-up chips),
// and stops at the first placement no move of the kinds below improves so.
// The moves are the annealer's, taken greedily:
//   - one node (or colocation group) to any chip its edges allow;
//   - a block shifted across a boundary: from a node with no neighbour on
//     its chip in that direction, breadth-first through its neighbours on
//     the chip, the best prefix of up to PolishOptions::max_block nodes;
//   - a swap across a boundary: a node of chip c with no reader on c to
//     c + 1 and one of c + 1 with no input on c + 1 to c, which keeps the
//     load about even and reshuffles memory and link traffic (where
//     max_hops or memory binds, often the only move that helps).
// The rl strategy polishes the best few placements of each PPO step and
// each new best (docs/policy.md, "Polish"); on the 560-node moe_e8 one call
// takes about half a millisecond, as long as the split.
#ifndef MCMPART_SOLVER_POLISH_H_
#define MCMPART_SOLVER_POLISH_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {

namespace anneal {
class State;
}  // namespace anneal

struct PolishOptions {
  int max_block = 64;    // largest block shifted as one move, >= 1
  int max_passes = 100;  // passes over every move, >= 1 (each improves)
  bool swaps = true;     // also try swaps across each boundary
};

// Checks ranges; INVALID_ARGUMENT naming the field.
absl::Status ValidatePolishOptions(const PolishOptions& options);

// Reusable polishing state for one problem (which must outlive it). Not
// thread-safe: one Polisher per thread; several may share a problem.
class Polisher {
 public:
  explicit Polisher(const Problem& problem, const PolishOptions& options = {});
  ~Polisher();
  Polisher(const Polisher&) = delete;
  Polisher& operator=(const Polisher&) = delete;

  // The polished placement: valid (checked by the evaluator) and never of
  // lower throughput than `placement`; `placement` itself when no move
  // improves it. `stop` (may be null) and `deadline` are polled between
  // moves: at the deadline the descent ends where it is, and the placement
  // reached so far is the answer (a pass over a 7,000-node graph on 16
  // chips takes tens of milliseconds).
  // Errors: INVALID_ARGUMENT when `placement` is not a valid placement of
  // the problem or the options are out of range; CANCELLED when `stop` is
  // set.
  absl::StatusOr<Assignment> Run(absl::Span<const int> placement,
                                 const StopToken* stop,
                                 absl::Time deadline = absl::InfiniteFuture());

  // Improving moves applied by the last Run.
  int moves() const { return moves_; }

 private:
  bool SinglePass();
  bool BlockPass();
  bool SwapPass();
  // True once `stop` is set or the deadline has passed (then it stays so).
  bool Halted();
  // Nodes of chip c with no neighbour on c in direction d (into `out`).
  void Frontier(int c, int d, std::vector<int>* out) const;
  bool ShiftBlock(int start, int c, int d);
  bool KeepIfBetter();

  const Problem& problem_;
  const PolishOptions options_;
  Evaluator eval_;
  std::unique_ptr<anneal::State> state_;
  double energy_ = 0, bottleneck_ = 0;
  int moves_ = 0;
  // Run's limits.
  const StopToken* stop_ = nullptr;
  absl::Time deadline_;
  bool halted_ = false;
  int64_t polls_ = 0;
  // ShiftBlock's queue, visit marks and moved prefix, kept across calls.
  std::vector<int> queue_, seen_, moved_, starts_, ups_;
  int epoch_ = 0;
};

// One-shot Polisher::Run.
absl::StatusOr<Assignment> Polish(const Problem& problem,
                                  absl::Span<const int> placement,
                                  const StopToken* stop,
                                  const PolishOptions& options = {},
                                  absl::Time deadline = absl::InfiniteFuture());

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_POLISH_H_
