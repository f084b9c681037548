// Where the contiguous splits of one topological order may cut: the
// bookkeeping shared by the constructive split (solver/constructive.cc) and
// the repair's warm start (solver/repair/warm_start.cc).
//
// A split cuts the order at positions 0 = s_0 < s_1 < ... < s_k = n, and
// chip c runs positions [s_c, s_{c+1}). A tensor is in transit over cut s
// when its producer is before s and its last reader at or after s. Every
// edge spans at most h chips when each cut s_{i+h} lies past the last reader
// of anything before s_i (h = 1: each run reaches past the last reader of
// anything before its start); a colocation group forbids the cuts inside
// it; a pin keeps its node in the run of its chip. Everything here is
// indexed by position in the order, cuts by 0..n.
#ifndef MCMPART_SOLVER_SPLIT_CUTS_H_
#define MCMPART_SOLVER_SPLIT_CUTS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "solver/problem.h"

namespace mcmpart {

class SplitCuts {
 public:
  // `order` is a topological order of the nodes; `pins` has one chip (or -1)
  // per node id.
  SplitCuts(const Problem& problem, absl::Span<const int> order,
            absl::Span<const int> pins);

  // The last position that reads anything produced before cut s, -1 when
  // none: a run starting at s must end after it.
  int max_reach(int s) const { return max_reach_[s]; }
  // Whether a cut at s leaves every colocation group on one side.
  bool cut_free(int s) const { return cut_free_[s] != 0; }

  // For each cut s in 0..n, the sum of value(i) over the positions i < s
  // whose output is read at or after s (the tensors in transit over s).
  template <typename T, typename ValueAt>
  std::vector<T> InTransit(ValueAt value) const {
    const int n = static_cast<int>(last_.size());
    std::vector<T> diff(n + 2, T{0});
    for (int i = 0; i < n; ++i) {
      if (last_[i] > i) {
        diff[i + 1] += value(i);
        diff[last_[i] + 1] -= value(i);
      }
    }
    std::vector<T> sum(n + 1);
    T run{0};
    for (int s = 0; s <= n; ++s) {
      run += diff[s];
      sum[s] = run;
    }
    return sum;
  }

  // Per chip: the first and last positions pinned to it (n and -1 when
  // none), the last position pinned to an earlier chip (-1) and the first
  // pinned to a later one (n).
  int first_pinned(int c) const { return first_pinned_[c]; }
  int last_pinned(int c) const { return last_pinned_[c]; }
  int pinned_before(int c) const { return pinned_before_[c]; }
  int pinned_after(int c) const { return pinned_after_[c]; }
  // The first position at or after s pinned to a chip other than c, n when
  // none: a run of chip c starting at s must end at or before it.
  int FirstPinnedElsewhere(int s, int c) const;

 private:
  void FindReaders(const Graph& g, absl::Span<const int> order,
                   const std::vector<int>& position);
  void FindColocationCuts(const Problem& problem,
                          const std::vector<int>& position);
  void FindPins(int chips, absl::Span<const int> order,
                absl::Span<const int> pins);

  std::vector<int> last_;       // per position: last reader, -1 if none
  std::vector<int> max_reach_;  // per cut
  std::vector<uint8_t> cut_free_;
  std::vector<int> pin_;  // per position
  // Per position: the nearest pinned position at or after it, and the
  // nearest at or after it with another chip than that one (n when none).
  std::vector<int> next_pin_, next_other_;
  std::vector<int> first_pinned_, last_pinned_;    // per chip
  std::vector<int> pinned_before_, pinned_after_;  // per chip
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_SPLIT_CUTS_H_
