#include "solver/repair/max_flow.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "absl/time/clock.h"

namespace mcmpart::repair {
namespace {

constexpr int64_t kUnbounded = std::numeric_limits<int64_t>::max() / 4;

}  // namespace

int64_t MaxFlow::Run(int s, int t, absl::Time deadline, const StopToken* stop) {
  int64_t flow = 0;
  while (Levels(s, t)) {
    if (absl::Now() >= deadline) return -1;
    if (stop != nullptr && stop->stop_requested()) return -1;
    it_ = head_;
    flow += Blocking(s, t);
  }
  return flow;
}

bool MaxFlow::Levels(int s, int t) {
  std::fill(level_.begin(), level_.end(), -1);
  level_[s] = 0;
  queue_.assign(1, s);
  for (size_t i = 0; i < queue_.size(); ++i) {
    const int u = queue_[i];
    for (int a = head_[u]; a >= 0; a = arcs_[a].next) {
      if (arcs_[a].cap > 0 && level_[arcs_[a].to] < 0) {
        level_[arcs_[a].to] = level_[u] + 1;
        queue_.push_back(arcs_[a].to);
      }
    }
  }
  return level_[t] >= 0;
}

// Iterative DFS. After each augmentation the walk resumes at the first
// saturated arc instead of at s.
int64_t MaxFlow::Blocking(int s, int t) {
  int64_t total = 0;
  path_.clear();
  int u = s;
  while (true) {
    if (u == t) {
      int64_t f = kUnbounded;
      for (int a : path_) f = std::min(f, arcs_[a].cap);
      size_t cut = path_.size();
      for (size_t i = 0; i < path_.size(); ++i) {
        const int a = path_[i];
        arcs_[a].cap -= f;
        arcs_[a ^ 1].cap += f;
        if (arcs_[a].cap == 0 && cut == path_.size()) cut = i;
      }
      total += f;
      path_.resize(cut);
      u = cut == 0 ? s : arcs_[path_[cut - 1]].to;
      continue;
    }
    int& a = it_[u];
    while (a >= 0 &&
           !(arcs_[a].cap > 0 && level_[arcs_[a].to] == level_[u] + 1)) {
      a = arcs_[a].next;
    }
    if (a >= 0) {
      path_.push_back(a);
      u = arcs_[a].to;
      continue;
    }
    // Dead end: no more flow through u in this phase.
    level_[u] = -2;
    if (path_.empty()) return total;
    const int back = path_.back();
    path_.pop_back();
    u = arcs_[back ^ 1].to;
    it_[u] = arcs_[it_[u]].next;
  }
}

}  // namespace mcmpart::repair
