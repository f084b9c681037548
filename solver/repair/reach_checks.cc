// CheckReachWindows (checks.h): the nodes within d edges of a node share
// d * max_hops + 1 consecutive chips, and must pack into them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/evaluator.h"
#include "solver/format.h"
#include "solver/repair/checks.h"

namespace mcmpart::repair {
namespace {

// It runs before every repair: a few milliseconds at most; past this many
// edge visits the check stops (the search still proves what it misses).
constexpr int64_t kMaxWork = 4'000'000;

// The nodes bigger than half a chip, which no two share: at most this many
// are named in a message.
constexpr int kNamed = 3;

struct Window {
  int chips = 0;         // d * max_hops + 1
  double sram = 0;       // the most any `chips` consecutive chips hold
  int first = 0;         // the first chip of that best window
  double half = -1;      // half a chip's usable SRAM; -1 with unequal chips
  double chip_sram = 0;  // one chip's SRAM (identical chips)
};

// What one breadth-first search from `v` has collected so far.
struct Ball {
  std::vector<int> nodes;  // within the radius, v excluded
  double bytes = 0;        // resident bytes of v and `nodes`
  std::vector<int> big;    // of v and `nodes`: those over half a chip
};

std::string Names(const Graph& g, std::vector<int> big, const Problem& p) {
  std::sort(big.begin(), big.end(), [&p](int a, int b) {
    const double ra = p.resident_bytes(a), rb = p.resident_bytes(b);
    return ra != rb ? ra > rb : a < b;
  });
  std::vector<std::string> names;
  for (size_t i = 0; i < big.size() && i < kNamed; ++i) {
    names.push_back(absl::StrCat(Quote(g, big[i]), " ",
                                 FormatBytes(p.resident_bytes(big[i]))));
  }
  std::string out = absl::StrJoin(names, ", ");
  if (big.size() > kNamed) {
    absl::StrAppend(&out, " and ", big.size() - kNamed, " more");
  }
  return out;
}

// The proof when `ball` (the nodes within `d` edges of `v`, `before` it or
// after it) cannot pack into `w`; OK when it can, as far as these bounds
// see.
absl::Status Packs(const Problem& problem, int v, int d, bool before,
                   const Ball& ball, const Window& w) {
  const Graph& g = problem.graph();
  const int hops = problem.max_hops();
  const std::string who = absl::StrCat(
      "the ", ball.nodes.size(), " node", ball.nodes.size() == 1 ? "" : "s",
      before ? absl::StrCat(" that ", Quote(g, v), " reads through at most ")
             : absl::StrCat(" that read ", Quote(g, v),
                            "'s output through at most "),
      d, " edge", d == 1 ? "" : "s", " and ", Quote(g, v),
      " itself must share ", w.chips,
      " consecutive chips (an edge spans at "
      "most max_hops = ",
      hops, " chip", hops == 1 ? "" : "s", ")");
  if (ball.bytes > MemoryLimit(w.sram)) {
    return absl::FailedPreconditionError(
        absl::StrCat(who, ", but they need ", FormatBytes(ball.bytes),
                     " for parameters and outputs and ", w.chips,
                     " consecutive chips hold at most ", FormatBytes(w.sram),
                     " (chips ", w.first, "..", w.first + w.chips - 1, ")"));
  }
  if (w.half >= 0 && static_cast<int>(ball.big.size()) > w.chips) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, ", but ", ball.big.size(),
        " of them need more than half of a chip's ", FormatBytes(w.chip_sram),
        " of SRAM each (", Names(g, ball.big, problem),
        "), so no two of them share a chip and they need ", ball.big.size(),
        " chips"));
  }
  return absl::OkStatus();
}

// With identical chips: the nodes over half a chip are no more than the
// chips.
absl::Status PacksOnAllChips(const Problem& problem) {
  const Hardware& hw = problem.hardware();
  if (!hw.identical_chips()) return absl::OkStatus();
  const double half = MemoryLimit(hw.chip(0).sram_bytes) / 2;
  std::vector<int> big;
  for (int v = 0; v < problem.num_nodes(); ++v) {
    if (problem.resident_bytes(v) > half) big.push_back(v);
  }
  if (static_cast<int>(big.size()) <= problem.num_chips()) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(
      absl::StrCat(big.size(), " nodes need more than half of a chip's ",
                   FormatBytes(hw.chip(0).sram_bytes), " of SRAM each (",
                   Names(problem.graph(), big, problem),
                   "), so no two of them share a chip, and there are ",
                   problem.num_chips(), " chips"));
}

}  // namespace

absl::Status CheckReachWindows(const Problem& problem) {
  const Graph& g = problem.graph();
  const Hardware& hw = problem.hardware();
  const int n = g.num_nodes();
  const int chips = problem.num_chips();
  const int hops = problem.max_hops();
  // The whole module first: the total-memory check sums the bytes, this
  // counts the nodes no two of which share a chip.
  if (absl::Status s = PacksOnAllChips(problem); !s.ok()) return s;
  // The largest radius whose window leaves a chip out: wider windows are
  // the whole module's.
  const int max_d = (chips - 2) / hops;
  if (max_d < 1) return absl::OkStatus();
  std::vector<Window> windows(max_d + 1);
  for (int d = 1; d <= max_d; ++d) {
    Window& w = windows[d];
    w.chips = d * hops + 1;
    w.sram = BestWindow(hw, w.chips, &w.first);
    if (hw.identical_chips()) {
      w.chip_sram = hw.chip(0).sram_bytes;
      w.half = MemoryLimit(w.chip_sram) / 2;
    }
  }
  const double half = windows[1].half;
  int64_t work = 0;
  std::vector<int> seen(n, -1);  // the search (2 v + direction) that saw it
  std::vector<int> frontier, next;
  for (int v = 0; v < n; ++v) {
    for (const bool before : {true, false}) {
      const int stamp = 2 * v + (before ? 0 : 1);
      const auto neighbours = [&](int u) {
        return before ? g.predecessors(u) : g.successors(u);
      };
      // Searched only from where branches meet (two or more neighbours
      // that way): that is where wide fan-in is, and it keeps the work
      // near linear on chains.
      if (neighbours(v).size() < 2) continue;
      Ball ball;
      ball.bytes = problem.resident_bytes(v);
      if (half >= 0 && problem.resident_bytes(v) > half) ball.big.push_back(v);
      seen[v] = stamp;
      frontier.assign(1, v);
      for (int d = 1; d <= max_d && !frontier.empty(); ++d) {
        next.clear();
        for (int u : frontier) {
          for (int x : neighbours(u)) {
            if (++work > kMaxWork) return absl::OkStatus();
            if (seen[x] == stamp) continue;
            seen[x] = stamp;
            next.push_back(x);
            ball.nodes.push_back(x);
            const double bytes = problem.resident_bytes(x);
            ball.bytes += bytes;
            if (half >= 0 && bytes > half) ball.big.push_back(x);
          }
        }
        if (absl::Status s = Packs(problem, v, d, before, ball, windows[d]);
            !s.ok()) {
          return s;
        }
        frontier.swap(next);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace mcmpart::repair
