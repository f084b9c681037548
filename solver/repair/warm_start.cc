#include "solver/repair/warm_start.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <numeric>
#include <queue>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "solver/split_cuts.h"

namespace mcmpart::repair {
namespace {

std::vector<int> Identity(int n) {
  std::vector<int> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  return ids;
}

// The dynamic program, one layer per chip: cur_[a] is the least distance of
// runs for the chips so far that end at cut a.
class SplitTable {
 public:
  explicit SplitTable(const Instance& in)
      : in_(in),
        n_(in.n),
        // Node ids are a topological order: runs are ranges of ids.
        cuts_(*in.problem, Identity(in.n), in.pin),
        // T(a), the outputs of earlier nodes read at or after a.
        transit_(cuts_.InTransit<int64_t>([&in](int u) { return in.out[u]; })),
        res_pre_(n_ + 1, 0),
        from_(static_cast<size_t>(in.chips) * (n_ + 1), -1),
        cur_(n_ + 1, kInf),
        next_(n_ + 1, kInf),
        wcost_(n_ + 1),
        starts_(n_ + 2) {
    for (int v = 0; v < n_; ++v) res_pre_[v + 1] = res_pre_[v] + in.res[v];
    cur_[0] = 0;
  }

  // Fills the next layer with chip c's runs; returns the least distance of
  // a split whose chip c ends the graph (kInf when none).
  int64_t Layer(int c) {
    wcost_[0] = 0;
    for (int v = 0; v < n_; ++v) {
      wcost_[v + 1] =
          wcost_[v] + (in_.q[v] >= 0 && in_.q[v] != c ? in_.w[v] : 0);
    }
    CollectStarts(c);
    using Entry = std::pair<int64_t, int>;  // key, run start
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    std::fill(next_.begin(), next_.end(), kInf);
    int* arg = from_.data() + static_cast<size_t>(c) * (n_ + 1);
    for (int b = 1; b <= n_; ++b) {
      for (int a : starts_[b]) heap.push({cur_[a] - wcost_[a], a});
      while (!heap.empty() && expiry_[heap.top().second] < b) heap.pop();
      if (heap.empty() || !(cuts_.cut_free(b) || b == n_)) continue;
      next_[b] = wcost_[b] + heap.top().first;
      arg[b] = heap.top().second;
    }
    return next_[n_];
  }

  // The next layer becomes the current one.
  void Advance() { std::swap(cur_, next_); }

  // The split whose last run, of chip k-1, ends the graph.
  void Trace(int k, std::vector<int>* placement) const {
    placement->assign(n_, -1);
    int b = n_;
    for (int c = k - 1; c >= 0; --c) {
      const int a = from_[static_cast<size_t>(c) * (n_ + 1) + b];
      for (int v = a; v < b; ++v) (*placement)[v] = c;
      b = a;
    }
  }

 private:
  // For every cut a that the current layer reaches, the ends chip c's run
  // from a may have: starts_[begin] lists a, expiry_[a] is the last end.
  void CollectStarts(int c) {
    for (auto& s : starts_) s.clear();
    expiry_.assign(n_ + 1, -1);
    for (int a = 0; a < n_; ++a) {
      if (cur_[a] >= kInf || !cuts_.cut_free(a)) continue;
      const int64_t room = in_.cap[c] - transit_[a];
      if (room < 0) continue;
      // Largest b with res_pre[b] - res_pre[a] <= room.
      int end = static_cast<int>(std::upper_bound(res_pre_.begin() + a,
                                                  res_pre_.end(),
                                                  res_pre_[a] + room) -
                                 res_pre_.begin()) -
                1;
      // The first node pinned to another chip at or after a: the run must
      // end before it.
      end = std::min(end, cuts_.FirstPinnedElsewhere(a, c));
      const int begin = std::max(a + 1, cuts_.max_reach(a) + 1);
      if (begin > end) continue;
      expiry_[a] = end;
      starts_[begin].push_back(a);
    }
  }

  const Instance& in_;
  const int n_;
  const SplitCuts cuts_;
  const std::vector<int64_t> transit_;
  std::vector<int64_t> res_pre_;
  std::vector<int> from_;  // per chip and run end: the run's start
  std::vector<int64_t> cur_, next_;
  std::vector<int64_t> wcost_;  // prefix sums of chip c's distance terms
  std::vector<std::vector<int>> starts_;
  std::vector<int> expiry_;
};

}  // namespace

bool ContiguousSplit(const Instance& in, absl::Time deadline,
                     const StopToken* stop, std::vector<int>* placement,
                     int64_t* cost) {
  const int n = in.n;
  const int chips = in.chips;
  if (n == 0) return false;
  // Memory for the argmin table is C * (n + 1) ints; skip absurd sizes.
  if (static_cast<int64_t>(chips) * (n + 1) > 10'000'000) return false;
  SplitTable table(in);
  int64_t best = kInf;
  int best_k = -1;
  for (int c = 0; c < chips; ++c) {
    // One chip's sweep is O(n log n), microseconds on real graphs: the warm
    // start then always runs, even with no time left, and only sweeps over
    // very large graphs give way to the deadline.
    if (n > 100'000 && absl::Now() >= deadline) return false;
    if (stop != nullptr && stop->stop_requested()) return false;
    const int64_t done = table.Layer(c);
    if (done < kInf && (!in.use_all || c == chips - 1) && done < best) {
      best = done;
      best_k = c + 1;
    }
    table.Advance();
  }
  if (best_k < 0) return false;
  table.Trace(best_k, placement);
  *cost = best;
  return true;
}

}  // namespace mcmpart::repair
