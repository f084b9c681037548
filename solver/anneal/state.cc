#include "solver/anneal/state.h"

#include <algorithm>
#include <vector>

namespace mcmpart::anneal {

State::State(const Problem& problem)
    : problem_(problem),
      graph_(problem.graph()),
      n_(problem.num_nodes()),
      chips_(problem.num_chips()),
      hops_(problem.max_hops()) {
  const Hardware& hw = problem.hardware();
  sram_limit_.resize(chips_);
  for (int c = 0; c < chips_; ++c) {
    sram_limit_[c] = MemoryLimit(hw.chip(c).sram_bytes);
  }
  for (int k = 0; k + 1 < chips_; ++k) {
    inv_bw_.push_back(1.0 / hw.link(k).bandwidth);
    latency_.push_back(hw.link(k).latency_s);
  }
  compute_.assign(chips_, 0);
  comm_.assign(std::max(chips_ - 1, 0), 0);
  mem_.assign(chips_, 0);
  count_.assign(chips_, 0);
  on_chip_.resize(chips_);
  pos_.assign(n_, 0);

  // Merge overlapping colocation groups into units (union-find).
  std::vector<int> parent(n_);
  for (int v = 0; v < n_; ++v) parent[v] = v;
  auto find = [&parent](int v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  };
  for (const std::vector<int>& group : problem.colocation_groups()) {
    for (int v : group) parent[find(v)] = find(group[0]);
  }
  unit_.assign(n_, -1);
  std::vector<int> unit_of_root(n_, -1);
  for (const std::vector<int>& group : problem.colocation_groups()) {
    for (int v : group) {
      const int root = find(v);
      if (unit_of_root[root] < 0) {
        unit_of_root[root] = static_cast<int>(units_.size());
        units_.emplace_back();
      }
      if (unit_[v] < 0) {
        unit_[v] = unit_of_root[root];
        units_[unit_[v]].push_back(v);
      }
    }
  }
}

// Recomputes everything for placement `p` (assumed valid).
void State::Load(absl::Span<const int> p) {
  p_.assign(p.begin(), p.end());
  std::fill(compute_.begin(), compute_.end(), 0.0);
  std::fill(comm_.begin(), comm_.end(), 0.0);
  std::fill(mem_.begin(), mem_.end(), 0.0);
  std::fill(count_.begin(), count_.end(), 0);
  for (std::vector<int>& list : on_chip_) list.clear();
  for (int v = 0; v < n_; ++v) {
    const int c = p_[v];
    compute_[c] += problem_.time(v, c);
    mem_[c] += problem_.resident_bytes(v);
    AddTensor(v, c, Last(v), +1);
    ++count_[c];
    pos_[v] = static_cast<int>(on_chip_[c].size());
    on_chip_[c].push_back(v);
  }
  used_ = 0;
  for (int c = 0; c < chips_; ++c) used_ += count_[c] > 0;
  undo_.clear();
  ResetTouched();
}

}  // namespace mcmpart::anneal
