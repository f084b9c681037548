// The annealer's incremental state: a valid placement whose figures
// (compute per chip, comm per link, memory per chip, chips used) follow it
// move by move, so that a proposal costs O(degree * hops) per node moved
// instead of a full Evaluator::Score. Internal to solver/anneal*; the hot
// methods stay inline here, so that the search loop in anneal.cc compiles
// to what it did as one file.
#ifndef MCMPART_SOLVER_ANNEAL_STATE_H_
#define MCMPART_SOLVER_ANNEAL_STATE_H_

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/types/span.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"

namespace mcmpart::anneal {

// Weight of the tie-breaking term of the objective (see anneal.h).
inline constexpr double kSmoothWeight = 0.1;

// A valid placement with its figures kept up to date move by move.
//
// Colocation groups (merged when they share nodes) move as one unit. Moves
// are logged so that a rejected proposal is undone exactly in reverse.
class State {
 public:
  // Figures all zero; Load gives it a placement. Merges overlapping
  // colocation groups into the units that move as one.
  explicit State(const Problem& problem);

  // Recomputes everything for placement `p` (assumed valid).
  void Load(absl::Span<const int> p);

  const Assignment& placement() const { return p_; }
  int chip(int v) const { return p_[v]; }
  int used_chips() const { return used_; }
  const std::vector<int>& nodes_on(int c) const { return on_chip_[c]; }
  bool moved_any() const { return !undo_.empty(); }

  bool SameUnit(int a, int b) const {
    return unit_[a] >= 0 && unit_[a] == unit_[b];
  }

  // The chips v's unit may move to without breaking an edge constraint or a
  // pin: [*lo, *hi], and only up to the first unused chip. False when the
  // unit is pinned.
  bool Range(int v, int* lo, int* hi) const {
    int l = 0;
    int h = std::min(chips_ - 1, used_);
    auto visit = [&](int x) {
      if (problem_.pin(x) >= 0) return false;
      for (int u : graph_.predecessors(x)) {
        if (SameUnit(u, x)) continue;
        l = std::max(l, p_[u]);
        h = std::min(h, p_[u] + hops_);
      }
      for (int w : graph_.successors(x)) {
        if (SameUnit(w, x)) continue;
        h = std::min(h, p_[w]);
        l = std::max(l, p_[w] - hops_);
      }
      return true;
    };
    if (unit_[v] < 0) {
      if (!visit(v)) return false;
    } else {
      for (int x : units_[unit_[v]]) {
        if (!visit(x)) return false;
      }
    }
    *lo = l;
    *hi = h;
    return l <= h;
  }

  // Moves v's unit to chip b, logging the move.
  void MoveUnit(int v, int b) {
    if (unit_[v] < 0) {
      MoveNode(v, b);
    } else {
      for (int x : units_[unit_[v]]) MoveNode(x, b);
    }
  }

  // Memory on the chips the logged moves touched, and no-skipping.
  bool LoggedMovesValid() const {
    for (int c = touched_lo_; c <= touched_hi_; ++c) {
      if (mem_[c] > sram_limit_[c]) return false;
    }
    if (emptiness_changed_) {
      if (problem_.use_all_chips() && used_ != chips_) return false;
      for (int c = 0; c < chips_; ++c) {
        if ((count_[c] > 0) != (c < used_)) return false;
      }
    }
    return true;
  }

  void Undo() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      Apply(it->first, it->second);
    }
    undo_.clear();
    ResetTouched();
  }
  void Commit() {
    undo_.clear();
    ResetTouched();
  }

  // The objective (see anneal.h); also the bottleneck and where it is:
  // *hot is chip c, or -(k + 1) for link k.
  double Energy(double* bottleneck, int* hot) const {
    double b = 0, s1 = 0, s2 = 0;
    int where = 0;
    for (int c = 0; c < chips_; ++c) {
      const double x = compute_[c];
      s1 += x;
      s2 += x * x;
      if (x > b) {
        b = x;
        where = c;
      }
    }
    for (int k = 0; k + 1 < chips_; ++k) {
      const double x = comm_[k];
      s1 += x;
      s2 += x * x;
      if (x > b) {
        b = x;
        where = -(k + 1);
      }
    }
    *bottleneck = b;
    *hot = where;
    return b + (s1 > 0 ? kSmoothWeight * s2 / s1 : 0.0);
  }

 private:
  // last(u) per the spec: the chip of u's last reader, or u's own.
  int Last(int u) const {
    int last = p_[u];
    for (int w : graph_.successors(u)) last = std::max(last, p_[w]);
    return last;
  }

  // Adds (sign +1) or removes (-1) u's output as produced on chip `from`
  // and read up to chip `last`: links from..last-1, buffers from+1..last.
  void AddTensor(int u, int from, int last, double sign) {
    if (last <= from) return;
    const double out = graph_.output_bytes(u);
    for (int k = from; k < last; ++k) {
      comm_[k] += sign * (out * inv_bw_[k] + latency_[k]);
      mem_[k + 1] += sign * out;
    }
    touched_lo_ = std::min(touched_lo_, from + 1);
    touched_hi_ = std::max(touched_hi_, last);
  }

  void MoveNode(int v, int b) {
    const int a = p_[v];
    if (a == b) return;
    undo_.emplace_back(v, a);
    Apply(v, b);
  }

  // Moves one node and updates every figure it changes: its own compute and
  // memory, its tensor's span, and the spans of its inputs' tensors (whose
  // last reader may be v).
  void Apply(int v, int b) {
    const int a = p_[v];
    for (int u : graph_.predecessors(v)) {
      int others = p_[u];
      for (int w : graph_.successors(u)) {
        if (w != v) others = std::max(others, p_[w]);
      }
      const int before = std::max(others, a);
      const int after = std::max(others, b);
      if (before != after) {
        AddTensor(u, p_[u], before, -1);
        AddTensor(u, p_[u], after, +1);
      }
    }
    int readers = -1;
    for (int w : graph_.successors(v)) readers = std::max(readers, p_[w]);
    AddTensor(v, a, std::max(a, readers), -1);
    AddTensor(v, b, std::max(b, readers), +1);

    compute_[a] -= problem_.time(v, a);
    compute_[b] += problem_.time(v, b);
    const double resident = problem_.resident_bytes(v);
    mem_[a] -= resident;
    mem_[b] += resident;
    touched_lo_ = std::min({touched_lo_, a, b});
    touched_hi_ = std::max({touched_hi_, a, b});

    if (--count_[a] == 0) {
      --used_;
      emptiness_changed_ = true;
    }
    if (count_[b]++ == 0) {
      ++used_;
      emptiness_changed_ = true;
    }
    std::vector<int>& from = on_chip_[a];
    const int i = pos_[v];
    from[i] = from.back();
    pos_[from[i]] = i;
    from.pop_back();
    pos_[v] = static_cast<int>(on_chip_[b].size());
    on_chip_[b].push_back(v);
    p_[v] = b;
  }

  void ResetTouched() {
    touched_lo_ = chips_;
    touched_hi_ = -1;
    emptiness_changed_ = false;
  }

  const Problem& problem_;
  const Graph& graph_;
  const int n_;
  const int chips_;
  const int hops_;
  std::vector<double> sram_limit_, inv_bw_, latency_;

  Assignment p_;
  std::vector<double> compute_, comm_, mem_;
  std::vector<int> count_;
  int used_ = 0;
  std::vector<std::vector<int>> on_chip_;
  std::vector<int> pos_;   // index of v in on_chip_[p_[v]]
  std::vector<int> unit_;  // index into units_, or -1 for a lone node
  std::vector<std::vector<int>> units_;

  std::vector<std::pair<int, int>> undo_;  // (node, chip before)
  int touched_lo_ = 0, touched_hi_ = -1;
  bool emptiness_changed_ = false;
};

}  // namespace mcmpart::anneal

#endif  // MCMPART_SOLVER_ANNEAL_STATE_H_
