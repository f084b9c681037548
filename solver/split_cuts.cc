#include "solver/split_cuts.h"

#include <algorithm>
#include <vector>

namespace mcmpart {

SplitCuts::SplitCuts(const Problem& problem, absl::Span<const int> order,
                     absl::Span<const int> pins) {
  const int n = static_cast<int>(order.size());
  std::vector<int> position(n);
  for (int i = 0; i < n; ++i) position[order[i]] = i;
  FindReaders(problem.graph(), order, position);
  FindColocationCuts(problem, position);
  FindPins(problem.num_chips(), order, pins);
}

void SplitCuts::FindReaders(const Graph& g, absl::Span<const int> order,
                            const std::vector<int>& position) {
  const int n = static_cast<int>(order.size());
  last_.assign(n, -1);
  max_reach_.assign(n + 1, -1);
  for (int i = 0; i < n; ++i) {
    int last = -1;
    for (int v : g.successors(order[i])) last = std::max(last, position[v]);
    last_[i] = last;
    max_reach_[i + 1] = std::max(max_reach_[i], last);
  }
}

void SplitCuts::FindColocationCuts(const Problem& problem,
                                   const std::vector<int>& position) {
  const int n = static_cast<int>(position.size());
  cut_free_.assign(n + 1, 1);
  for (const std::vector<int>& group : problem.colocation_groups()) {
    int lo = n, hi = -1;
    for (int v : group) {
      lo = std::min(lo, position[v]);
      hi = std::max(hi, position[v]);
    }
    for (int s = lo + 1; s <= hi; ++s) cut_free_[s] = 0;
  }
}

void SplitCuts::FindPins(int chips, absl::Span<const int> order,
                         absl::Span<const int> pins) {
  const int n = static_cast<int>(order.size());
  pin_.resize(n);
  for (int i = 0; i < n; ++i) pin_[i] = pins[order[i]];
  next_pin_.assign(n + 1, n);
  next_other_.assign(n + 1, n);
  for (int i = n - 1; i >= 0; --i) {
    if (pin_[i] < 0) {
      next_pin_[i] = next_pin_[i + 1];
      next_other_[i] = next_other_[i + 1];
    } else {
      next_pin_[i] = i;
      const int after = next_pin_[i + 1];
      next_other_[i] =
          after < n && pin_[after] == pin_[i] ? next_other_[i + 1] : after;
    }
  }
  first_pinned_.assign(chips, n);
  last_pinned_.assign(chips, -1);
  for (int i = 0; i < n; ++i) {
    const int c = pin_[i];
    if (c < 0) continue;
    first_pinned_[c] = std::min(first_pinned_[c], i);
    last_pinned_[c] = std::max(last_pinned_[c], i);
  }
  pinned_before_.assign(chips, -1);
  pinned_after_.assign(chips, n);
  for (int c = 1; c < chips; ++c) {
    pinned_before_[c] = std::max(pinned_before_[c - 1], last_pinned_[c - 1]);
  }
  for (int c = chips - 2; c >= 0; --c) {
    pinned_after_[c] = std::min(pinned_after_[c + 1], first_pinned_[c + 1]);
  }
}

int SplitCuts::FirstPinnedElsewhere(int s, int c) const {
  const int n = static_cast<int>(pin_.size());
  const int np = next_pin_[s];
  if (np == n) return n;
  return pin_[np] != c ? np : next_other_[s];
}

}  // namespace mcmpart
