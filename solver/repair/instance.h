// One repair's instance: the problem in integers (memory in units, weights
// scaled), the chip bounds from the pre-checks, the candidate and the
// branching order. docs/repair.md, "Integers" and "Branching".
#ifndef MCMPART_SOLVER_REPAIR_INSTANCE_H_
#define MCMPART_SOLVER_REPAIR_INSTANCE_H_

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "solver/graph.h"
#include "solver/problem.h"
#include "solver/repair/bounds.h"

namespace mcmpart::repair {

// Memory is held as int64 multiples of a power-of-two unit chosen so that
// the sum of every node's resident and output figures is at most 2^53
// units. Prefix sums over at most kMaxChips chips of loads that count each
// output at most once per chip then stay far below 2^63.
constexpr double kMaxMemoryUnits = 9007199254740992.0;  // 2^53
// The distance is a Gecode IntVar: weights are scaled so that their sum is
// at most 2^30, inside Gecode's int limits with room to spare.
constexpr double kMaxWeightUnits = 1073741824.0;  // 2^30
constexpr int64_t kInf = std::numeric_limits<int64_t>::max() / 4;

// Smallest power of two u with total / u <= limit (any u when total is 0).
// A power of two keeps x / u exact in binary floating point.
double PowerOfTwoUnit(double total, double limit);

// Everything one repair computes with, shared read-only by every space of
// that repair; only `guide` changes, and only between searches.
struct Instance {
  const Problem* problem = nullptr;
  const Graph* graph = nullptr;
  int n = 0;
  int chips = 0;
  int hops = 1;
  bool use_all = false;
  double unit = 1.0;                // bytes per memory unit
  std::vector<int64_t> res;         // resident units per node, rounded up
  std::vector<int64_t> out;         // output units per node, rounded up
  std::vector<int64_t> cap;         // SRAM units per chip, rounded down
  std::vector<int64_t> cap_prefix;  // cap of chips 0..c
  std::vector<int64_t> cap_suffix;  // cap of chips c..C-1
  // res[v] + outputs of v's predecessors: the most v can add to one chip.
  std::vector<int64_t> max_extra;
  std::vector<int> pin;     // effective pin (pins spread over colocation)
  std::vector<int> lo, hi;  // chip bounds from pins, edges and max_hops
  std::vector<int> q;       // candidate, -1 = free
  std::vector<int64_t> w;   // scaled weight, 0 for free nodes
  std::vector<int> guide;   // warm-start placement, for value choice
  std::vector<int> order;   // branching order of node ids
};

// INVALID_ARGUMENT naming the node unless the candidate has one chip or -1
// per node and the weights (none, or one per node) are finite and >= 0.
absl::Status CheckInputs(const Problem& problem,
                         absl::Span<const int> candidate,
                         absl::Span<const double> weights);

// Fills the memory, bound and graph parts of `in` (not q, w, order).
void BuildInstance(const Problem& problem, Bounds bounds, Instance* in);

// Fills q and w. Integer weights: exact when every weight is an integer and
// their sum is at most 2^30, else scaled by a power of two to a sum of about
// 2^30 and rounded (a positive weight never rounds to 0).
void ScaleWeights(absl::Span<const int> candidate,
                  absl::Span<const double> weights, Instance* in);

// Fills order: weighted nodes first, then by resident memory, largest first.
void ChooseOrder(Instance* in);

// The scaled distance of `p` from the candidate.
int64_t ScaledCost(const Instance& in, const std::vector<int>& p);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_INSTANCE_H_
