#include "solver/repair/checks.h"

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/evaluator.h"
#include "solver/format.h"
#include "solver/quote.h"

namespace mcmpart::repair {
namespace {

// "'a' -> 'b' -> 'c'", long paths shortened in the middle.
std::string PathString(const Graph& g, const std::vector<int>& path) {
  std::vector<std::string> parts;
  if (path.size() <= 6) {
    for (int v : path) parts.push_back(Quote(g, v));
  } else {
    for (size_t i = 0; i < 3; ++i) parts.push_back(Quote(g, path[i]));
    parts.push_back("...");
    for (size_t i = path.size() - 2; i < path.size(); ++i) {
      parts.push_back(Quote(g, path[i]));
    }
  }
  return absl::StrJoin(parts, " -> ");
}

struct UnionFind {
  explicit UnionFind(int n) : parent(n) {
    std::iota(parent.begin(), parent.end(), 0);
  }
  int Find(int v) {
    while (parent[v] != v) v = parent[v] = parent[parent[v]];
    return v;
  }
  void Union(int a, int b) {
    a = Find(a);
    b = Find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
  std::vector<int> parent;
};

}  // namespace

double BestWindow(const Hardware& hw, int span, int* first) {
  double best = 0;
  for (int c = 0; c + span <= hw.num_chips(); ++c) {
    double sum = 0;
    for (int k = c; k < c + span; ++k) sum += hw.chip(k).sram_bytes;
    if (sum > best) {
      best = sum;
      if (first != nullptr) *first = c;
    }
  }
  return best;
}

namespace {

bool Over(double need, double have) { return need > MemoryLimit(have); }

double LargestChip(const Hardware& hw) {
  double max_sram = 0;
  for (int c = 0; c < hw.num_chips(); ++c) {
    max_sram = std::max(max_sram, hw.chip(c).sram_bytes);
  }
  return max_sram;
}

// The message for pinned nodes a and b (b downstream of a along `path`,
// `dist` edges) that acyclic dataflow or max_hops cannot both honour.
absl::Status PinnedPathError(const Problem& problem, const EffectivePins& pins,
                             const std::vector<int>& path, int dist) {
  const Graph& g = problem.graph();
  const int hops = problem.max_hops();
  const int a = path.front();
  const int b = path.back();
  const bool backwards = pins.chip[b] < pins.chip[a];
  std::string head =
      pins.source[b] == b
          ? absl::StrCat("pin puts ", Quote(g, b), " on chip ", pins.chip[b])
          : absl::StrCat("pin puts ", Quote(g, b), " on chip ", pins.chip[b],
                         " (colocated with ", Quote(g, pins.source[b]), ")");
  std::string who =
      dist == 1 ? absl::StrCat("its producer ", Quote(g, a))
                : absl::StrCat(Quote(g, a), ", ", dist, " edges upstream (",
                               PathString(g, path), "),");
  std::string why =
      backwards ? std::string("data never flows backwards")
      : dist == 1
          ? absl::StrCat("max_hops is ", hops, ", so an edge spans at most ",
                         hops, hops == 1 ? " chip" : " chips")
          : absl::StrCat("with max_hops ", hops, " that path spans at most ",
                         static_cast<int64_t>(hops) * dist, " chips");
  return absl::FailedPreconditionError(
      absl::StrCat(head, " but ", who, " ", pins.Phrase(g, a), "; ", why));
}

}  // namespace

std::string Quote(const Graph& g, int v) { return QuoteInput(g.node_name(v)); }

std::string EffectivePins::Phrase(const Graph& g, int v) const {
  if (source[v] == v) return absl::StrCat("is pinned to chip ", chip[v]);
  return absl::StrCat("must be on chip ", chip[v], " (colocated with ",
                      Quote(g, source[v]), ", which is pinned there)");
}

absl::Status CheckEachNodeFits(const Problem& problem) {
  const Graph& g = problem.graph();
  const double max_sram = LargestChip(problem.hardware());
  for (int v = 0; v < g.num_nodes(); ++v) {
    const double need = problem.resident_bytes(v);
    if (Over(need, max_sram)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", Quote(g, v), " needs ", FormatBytes(need),
          " of SRAM for its parameters and output, but the largest chip has ",
          FormatBytes(max_sram)));
    }
  }
  return absl::OkStatus();
}

absl::Status MergeColocationGroups(const Problem& problem,
                                   ColocationSets* sets) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const auto& groups = problem.colocation_groups();
  UnionFind uf(n);
  for (const std::vector<int>& group : groups) {
    for (int v : group) uf.Union(group[0], v);
  }
  sets->root.resize(n);
  sets->count = 0;
  for (int v = 0; v < n; ++v) {
    sets->root[v] = uf.Find(v);
    sets->count += sets->root[v] == v;
  }
  sets->pin.assign(n, -1);
  sets->pinned_by.assign(n, -1);
  sets->bytes.assign(n, 0.0);
  for (int v = 0; v < n; ++v) {
    sets->bytes[sets->root[v]] += problem.resident_bytes(v);
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    for (int v : groups[i]) {
      const int pin = problem.pin(v);
      if (pin < 0) continue;
      const int r = sets->root[v];
      if (sets->pin[r] >= 0 && sets->pin[r] != pin) {
        const int other = sets->pinned_by[r];
        return absl::FailedPreconditionError(
            absl::StrCat("colocation group ", i, " puts ", Quote(g, other),
                         " and ", Quote(g, v), " on one chip, but ",
                         Quote(g, other), " is pinned to chip ", sets->pin[r],
                         " and ", Quote(g, v), " to chip ", pin));
      }
      sets->pin[r] = pin;
      sets->pinned_by[r] = v;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckColocationMemory(const Problem& problem,
                                   const ColocationSets& sets) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const double max_sram = LargestChip(problem.hardware());
  const auto& groups = problem.colocation_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    const int r = sets.root[groups[i][0]];
    if (!Over(sets.bytes[r], max_sram)) continue;
    std::vector<std::string> names;
    for (int v = 0; v < n && names.size() < 6; ++v) {
      if (sets.root[v] == r) names.push_back(Quote(g, v));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "colocation group ", i, " (", absl::StrJoin(names, ", "),
        names.size() == 6 ? ", ..." : "", ") needs ",
        FormatBytes(sets.bytes[r]),
        " of SRAM for its members' parameters and outputs on one chip, but "
        "the largest chip has ",
        FormatBytes(max_sram)));
  }
  return absl::OkStatus();
}

EffectivePins SpreadPins(const Problem& problem, const ColocationSets& sets) {
  const int n = problem.num_nodes();
  EffectivePins pins;
  pins.chip.assign(n, -1);
  pins.source.assign(n, -1);
  for (int v = 0; v < n; ++v) {
    if (problem.pin(v) >= 0) {
      pins.chip[v] = problem.pin(v);
      pins.source[v] = v;
    } else if (sets.pin[sets.root[v]] >= 0) {
      pins.chip[v] = sets.pin[sets.root[v]];
      pins.source[v] = sets.pinned_by[sets.root[v]];
    }
  }
  return pins;
}

absl::Status CheckPinnedMemory(const Problem& problem,
                               const ColocationSets& sets,
                               const EffectivePins& pins) {
  const Graph& g = problem.graph();
  for (int v = 0; v < g.num_nodes(); ++v) {
    if (pins.chip[v] < 0) continue;
    const double sram = problem.hardware().chip(pins.chip[v]).sram_bytes;
    const double need = sets.bytes[sets.root[v]];
    if (Over(need, sram)) {
      const bool alone = need == problem.resident_bytes(v);
      return absl::FailedPreconditionError(
          absl::StrCat("node ", Quote(g, v), " ", pins.Phrase(g, v),
                       ", which has ", FormatBytes(sram), " of SRAM, but ",
                       alone ? "needs " : "its colocation group needs ",
                       FormatBytes(need), " for parameters and outputs"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckTotalMemory(const Problem& problem) {
  const Hardware& hw = problem.hardware();
  const int chips = problem.num_chips();
  double total_sram = 0;
  for (int c = 0; c < chips; ++c) total_sram += hw.chip(c).sram_bytes;
  double total = 0;
  for (int v = 0; v < problem.num_nodes(); ++v) {
    total += problem.resident_bytes(v);
  }
  if (!Over(total, total_sram)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      hw.identical_chips()
          ? absl::StrCat("total memory of all nodes' parameters and outputs "
                         "is ",
                         FormatBytes(total), ", which exceeds ", chips,
                         " chips x ", FormatBytes(hw.chip(0).sram_bytes), " = ",
                         FormatBytes(total_sram))
          : absl::StrCat("total memory of all nodes' parameters and outputs "
                         "is ",
                         FormatBytes(total), ", which exceeds the ", chips,
                         " chips' total SRAM of ", FormatBytes(total_sram)));
}

// The widest fan-in check: for every node v, v and the producers of what
// it reads must fit the SRAM of the best max_hops + 1 consecutive chips
// (edges span at most max_hops chips). Proves infeasibility in the terms a
// user sees in the model (DLRM's tables read by one interaction node).
absl::Status CheckFanIn(const Problem& problem) {
  const Graph& g = problem.graph();
  const Hardware& hw = problem.hardware();
  const int chips = problem.num_chips();
  const int span = problem.max_hops() + 1;
  if (span >= chips) return absl::OkStatus();
  int first = 0;
  const double window = BestWindow(hw, span, &first);
  for (int v = 0; v < g.num_nodes(); ++v) {
    const absl::Span<const int> preds = g.predecessors(v);
    if (preds.empty()) continue;
    double need = problem.resident_bytes(v);
    for (int u : preds) need += problem.resident_bytes(u);
    if (need <= MemoryLimit(window)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "node ", Quote(g, v), " reads the outputs of ", preds.size(),
        " nodes; with max_hops = ", problem.max_hops(),
        " they and it must share ", span, " consecutive chips, but they need ",
        FormatBytes(need), " for parameters and outputs and ", span,
        " consecutive chips hold at most ", FormatBytes(window), " (chips ",
        first, "..", first + span - 1, ")"));
  }
  return absl::OkStatus();
}

// Long skips under a hop limit: for an edge u -> v, every node on a path
// from u to v runs on a chip from p(u) to p(v), and p(v) - p(u) <= max_hops.
// So u, v and everything between them must fit the SRAM of the best
// max_hops + 1 consecutive chips (U-Net's skips, a residual around a layer
// of parallel experts). Work is capped; past the cap the check is skipped
// (the search still proves what it misses).
absl::Status CheckSkips(const Problem& problem) {
  const Graph& g = problem.graph();
  const Hardware& hw = problem.hardware();
  const int n = g.num_nodes();
  const int chips = problem.num_chips();
  const int span = problem.max_hops() + 1;
  if (span >= chips) return absl::OkStatus();
  const double window = BestWindow(hw, span, nullptr);
  // It runs before every repair: a few milliseconds at most.
  constexpr int64_t kMaxWork = 4'000'000;
  int64_t work = 0;
  // mark[w] == stamp: w is reachable from u (forward pass); == -stamp: w is
  // also an ancestor of v (backward pass).
  std::vector<int64_t> mark(n, 0);
  std::vector<int> stack;
  int64_t stamp = 0;
  for (int u = 0; u < n; ++u) {
    if (g.successors(u).size() < 2) continue;
    for (int v : g.successors(u)) {
      if (g.predecessors(v).size() < 2 || v - u < 2) continue;
      if (work > kMaxWork) return absl::OkStatus();
      ++stamp;
      // Forward from u over ids below v (ids are topological).
      stack.assign(1, u);
      mark[u] = stamp;
      while (!stack.empty()) {
        const int w = stack.back();
        stack.pop_back();
        for (int x : g.successors(w)) {
          ++work;
          if (x < v && mark[x] != stamp) {
            mark[x] = stamp;
            stack.push_back(x);
          }
        }
      }
      // Backward from v over the nodes reached.
      double need = problem.resident_bytes(v);
      int between = 0;
      stack.assign(1, v);
      while (!stack.empty()) {
        const int w = stack.back();
        stack.pop_back();
        for (int x : g.predecessors(w)) {
          ++work;
          if (mark[x] == stamp) {
            mark[x] = -stamp;
            need += problem.resident_bytes(x);
            between += x != u;
            stack.push_back(x);
          }
        }
      }
      if (need <= MemoryLimit(window)) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          "the output of ", Quote(g, u), " is read by ", Quote(g, v),
          " and with max_hops = ", problem.max_hops(), " may travel at most ",
          problem.max_hops(), " chip", problem.max_hops() == 1 ? "" : "s",
          ", so they and the ", between, " nodes between them must share ",
          span, " consecutive chips; together they need ", FormatBytes(need),
          " for parameters and outputs, but ", span,
          " consecutive chips hold at most ", FormatBytes(window)));
    }
  }
  return absl::OkStatus();
}

// Pins against paths: acyclic and max_hops along the shortest path between
// two pinned nodes. One BFS per pinned node; pins are few in practice.
absl::Status CheckPinnedPaths(const Problem& problem,
                              const EffectivePins& pins) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int hops = problem.max_hops();
  const std::vector<int>& pin = pins.chip;
  std::vector<int> dist(n, -1);
  std::vector<int> parent(n, -1);
  std::vector<int> queue;
  int64_t pinned = 0;
  for (int v = 0; v < n; ++v) pinned += pin[v] >= 0;
  // On huge inputs with many pins the bound sweeps (bounds.h) still catch
  // the conflict, with a plainer message.
  const bool trace_paths =
      pinned * (static_cast<int64_t>(n) + g.num_edges()) <= 50'000'000;
  for (int a = 0; a < n && trace_paths; ++a) {
    if (pin[a] < 0) continue;
    // Colocated members share a chip whatever the edges between them say.
    queue.assign(1, a);
    std::fill(dist.begin(), dist.end(), -1);
    dist[a] = 0;
    for (size_t head = 0; head < queue.size(); ++head) {
      const int u = queue[head];
      for (int v : g.successors(u)) {
        if (dist[v] >= 0) continue;
        dist[v] = dist[u] + 1;
        parent[v] = u;
        queue.push_back(v);
      }
    }
    for (int b : queue) {
      if (b == a || pin[b] < 0) continue;
      const bool backwards = pin[b] < pin[a];
      const bool too_far = static_cast<int64_t>(pin[b]) - pin[a] >
                           static_cast<int64_t>(hops) * dist[b];
      if (!backwards && !too_far) continue;
      std::vector<int> path;
      for (int v = b; v != a; v = parent[v]) path.push_back(v);
      path.push_back(a);
      std::reverse(path.begin(), path.end());
      return PinnedPathError(problem, pins, path, dist[b]);
    }
  }
  return absl::OkStatus();
}

absl::Status CheckChipsInUse(const Problem& problem, const ColocationSets& sets,
                             const EffectivePins& pins) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int chips = problem.num_chips();
  const int units = sets.count;
  int highest_pin = -1;
  int highest_pinned = -1;
  for (int v = 0; v < n; ++v) {
    if (pins.chip[v] > highest_pin) {
      highest_pin = pins.chip[v];
      highest_pinned = v;
    }
  }
  if (problem.use_all_chips() && units < chips) {
    return absl::FailedPreconditionError(
        absl::StrCat("use_all_chips needs a node on each of the ", chips,
                     " chips, but colocation groups leave only ", units,
                     " sets of nodes that can go to different chips"));
  }
  if (highest_pin + 1 > units) {
    return absl::FailedPreconditionError(absl::StrCat(
        "node ", Quote(g, highest_pinned), " ", pins.Phrase(g, highest_pinned),
        ", so chips 0..", highest_pin,
        " must all be in use (no skipping chips), but colocation groups "
        "leave only ",
        units, " sets of nodes that can go to different chips"));
  }
  return absl::OkStatus();
}

absl::StatusOr<NodesAndColocation> CheckNodesAndColocation(
    const Problem& problem) {
  NodesAndColocation r;
  if (absl::Status s = CheckEachNodeFits(problem); !s.ok()) return s;
  if (absl::Status s = MergeColocationGroups(problem, &r.sets); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckColocationMemory(problem, r.sets); !s.ok()) {
    return s;
  }
  r.pins = SpreadPins(problem, r.sets);
  if (absl::Status s = CheckPinnedMemory(problem, r.sets, r.pins); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckTotalMemory(problem); !s.ok()) return s;
  return r;
}

absl::Status CheckPinsAndMemory(const Problem& problem) {
  absl::StatusOr<NodesAndColocation> checked = CheckNodesAndColocation(problem);
  if (!checked.ok()) return checked.status();
  return CheckPinnedPaths(problem, checked->pins);
}

}  // namespace mcmpart::repair
