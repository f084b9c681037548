// Constraint repair with Gecode: the nearest valid placement to a candidate.
//
// The model, the branching and the limits are described in docs/repair.md.
// In short: one IntVar x[v] in 0..C-1 per node; edges and max_hops as binary
// relations; pins and colocation as domains and equalities; memory with
// transit buffers and "no skipping chips" in one custom propagator
// (MemoryProp) that reasons on chip loads, prefix/suffix sums of memory and
// chip support; the distance as a linear sum of reified disagreements.
// Before any search: the candidate itself when valid; a warm start (the best
// contiguous split of the topological order, by dynamic programming); and a
// lower bound from a minimum cut that solves the repair without memory and
// no-skipping exactly (and is the answer when its placement happens to fit).
// Branch and bound, large-neighbourhood search and branch and bound again
// then improve the warm start and prove it optimal within the limits.
#include "solver/repair.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gecode/int.hh"
#include "gecode/minimodel.hh"
#include "gecode/search.hh"
#include "solver/evaluator.h"
#include "solver/quote.h"
#include "solver/split_cuts.h"

namespace mcmpart {
namespace {

using Gecode::BoolVar;
using Gecode::BoolVarArgs;
using Gecode::ExecStatus;
using Gecode::Home;
using Gecode::IntArgs;
using Gecode::IntVar;
using Gecode::IntVarArgs;
using Gecode::IntVarArray;
using Gecode::ModEventDelta;
using Gecode::Propagator;
using Gecode::PropCost;
using Gecode::Space;
using Gecode::ViewArray;

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
double PowerOfTwoUnit(double total, double limit) {
  if (!(total > 0)) return 1.0;
  int e = 0;
  std::frexp(total / limit, &e);  // total / limit = m * 2^e, m in [0.5, 1)
  double unit = std::ldexp(1.0, e);
  while (total / (unit / 2) <= limit) unit /= 2;
  while (total / unit > limit) unit *= 2;
  return unit;
}

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

// Which constraint families a model includes. Relaxed copies explain
// infeasibility proved by search.
struct Families {
  bool memory = true;
  bool hops = true;
  bool pins = true;
  bool colocation = true;
  bool use_all = true;
};

// One search: which families, which bounds on the distance, which nodes are
// fixed (large-neighbourhood search fixes all but a window).
struct SearchSpec {
  Families families;
  int64_t bound = 0;  // distance < bound; 0 = no bound
  int64_t lower = 0;  // distance >= lower (a proved lower bound)
  bool first_only = false;
  const std::vector<int>* fixed = nullptr;  // -1 = free
};

// ---------------------------------------------------------------------------
// Cheap necessary conditions.

std::string Quote(const Graph& g, int v) { return QuoteInput(g.node_name(v)); }

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

// The results of the cheap checks that the solver reuses.
struct Bounds {
  std::vector<int> pin;  // effective pin per node, -1 if none
  std::vector<int> lo, hi;
};

// The most SRAM any `span` consecutive chips hold (span <= C), and the
// first of them (may be null).
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

// Runs the cheap checks; on success fills `bounds`.
absl::Status RunCheapChecks(const Problem& problem, Bounds* bounds) {
  const Graph& g = problem.graph();
  const Hardware& hw = problem.hardware();
  const int n = g.num_nodes();
  const int chips = problem.num_chips();
  const int hops = problem.max_hops();

  double max_sram = 0;
  double total_sram = 0;
  for (int c = 0; c < chips; ++c) {
    max_sram = std::max(max_sram, hw.chip(c).sram_bytes);
    total_sram += hw.chip(c).sram_bytes;
  }
  auto over = [](double need, double have) { return need > MemoryLimit(have); };

  // One node alone.
  for (int v = 0; v < n; ++v) {
    const double need = problem.resident_bytes(v);
    if (over(need, max_sram)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", Quote(g, v), " needs ", FormatBytes(need),
          " of SRAM for its parameters and output, but the largest chip has ",
          FormatBytes(max_sram)));
    }
  }

  // Colocation: merged groups, conflicting pins, group memory.
  const auto& groups = problem.colocation_groups();
  UnionFind uf(n);
  for (const std::vector<int>& group : groups) {
    for (int v : group) uf.Union(group[0], v);
  }
  std::vector<int> root_pin(n, -1);
  std::vector<int> root_pinned_by(n, -1);
  std::vector<double> root_bytes(n, 0.0);
  for (int v = 0; v < n; ++v)
    root_bytes[uf.Find(v)] += problem.resident_bytes(v);
  for (size_t i = 0; i < groups.size(); ++i) {
    for (int v : groups[i]) {
      const int pin = problem.pin(v);
      if (pin < 0) continue;
      const int r = uf.Find(v);
      if (root_pin[r] >= 0 && root_pin[r] != pin) {
        const int other = root_pinned_by[r];
        return absl::FailedPreconditionError(
            absl::StrCat("colocation group ", i, " puts ", Quote(g, other),
                         " and ", Quote(g, v), " on one chip, but ",
                         Quote(g, other), " is pinned to chip ", root_pin[r],
                         " and ", Quote(g, v), " to chip ", pin));
      }
      root_pin[r] = pin;
      root_pinned_by[r] = v;
    }
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    const int r = uf.Find(groups[i][0]);
    if (!over(root_bytes[r], max_sram)) continue;
    std::vector<std::string> names;
    for (int v = 0; v < n && names.size() < 6; ++v) {
      if (uf.Find(v) == r) names.push_back(Quote(g, v));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "colocation group ", i, " (", absl::StrJoin(names, ", "),
        names.size() == 6 ? ", ..." : "", ") needs ",
        FormatBytes(root_bytes[r]),
        " of SRAM for its members' parameters and outputs on one chip, but "
        "the largest chip has ",
        FormatBytes(max_sram)));
  }

  // Effective pins: a pin holds for its whole colocation set.
  std::vector<int> pin(n, -1);
  std::vector<int> pin_source(n, -1);  // the node whose pin it is
  for (int v = 0; v < n; ++v) {
    if (problem.pin(v) >= 0) {
      pin[v] = problem.pin(v);
      pin_source[v] = v;
    } else if (root_pin[uf.Find(v)] >= 0) {
      pin[v] = root_pin[uf.Find(v)];
      pin_source[v] = root_pinned_by[uf.Find(v)];
    }
  }
  auto pin_phrase = [&](int v) {
    if (pin_source[v] == v) return absl::StrCat("is pinned to chip ", pin[v]);
    return absl::StrCat("must be on chip ", pin[v], " (colocated with ",
                        Quote(g, pin_source[v]), ", which is pinned there)");
  };
  for (int v = 0; v < n; ++v) {
    if (pin[v] < 0) continue;
    const double sram = hw.chip(pin[v]).sram_bytes;
    const double need = root_bytes[uf.Find(v)];
    if (over(need, sram)) {
      const bool alone = need == problem.resident_bytes(v);
      return absl::FailedPreconditionError(
          absl::StrCat("node ", Quote(g, v), " ", pin_phrase(v), ", which has ",
                       FormatBytes(sram), " of SRAM, but ",
                       alone ? "needs " : "its colocation group needs ",
                       FormatBytes(need), " for parameters and outputs"));
    }
  }

  // All nodes together.
  double total = 0;
  for (int v = 0; v < n; ++v) total += problem.resident_bytes(v);
  if (over(total, total_sram)) {
    return absl::FailedPreconditionError(
        hw.identical_chips()
            ? absl::StrCat("total memory of all nodes' parameters and outputs "
                           "is ",
                           FormatBytes(total), ", which exceeds ", chips,
                           " chips x ", FormatBytes(hw.chip(0).sram_bytes),
                           " = ", FormatBytes(total_sram))
            : absl::StrCat("total memory of all nodes' parameters and outputs "
                           "is ",
                           FormatBytes(total), ", which exceeds the ", chips,
                           " chips' total SRAM of ", FormatBytes(total_sram)));
  }

  // Wide fan-in under a hop limit: a node's producers sit at most max_hops
  // chips before it, so it and they share max_hops + 1 consecutive chips.
  if (absl::Status s = CheckFanIn(problem); !s.ok()) return s;
  if (absl::Status s = CheckSkips(problem); !s.ok()) return s;

  // Pins against paths: acyclic and max_hops along the shortest path between
  // two pinned nodes. One BFS per pinned node; pins are few in practice.
  std::vector<int> dist(n, -1);
  std::vector<int> parent(n, -1);
  std::vector<int> queue;
  int64_t pinned = 0;
  for (int v = 0; v < n; ++v) pinned += pin[v] >= 0;
  // On huge inputs with many pins the bound sweeps below still catch the
  // conflict, with a plainer message.
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
      std::string head =
          pin_source[b] == b
              ? absl::StrCat("pin puts ", Quote(g, b), " on chip ", pin[b])
              : absl::StrCat("pin puts ", Quote(g, b), " on chip ", pin[b],
                             " (colocated with ", Quote(g, pin_source[b]), ")");
      std::string who =
          dist[b] == 1
              ? absl::StrCat("its producer ", Quote(g, a))
              : absl::StrCat(Quote(g, a), ", ", dist[b], " edges upstream (",
                             PathString(g, path), "),");
      std::string why =
          backwards ? std::string("data never flows backwards")
          : dist[b] == 1
              ? absl::StrCat("max_hops is ", hops,
                             ", so an edge spans at most ", hops,
                             hops == 1 ? " chip" : " chips")
              : absl::StrCat("with max_hops ", hops,
                             " that path spans at most ",
                             static_cast<int64_t>(hops) * dist[b], " chips");
      return absl::FailedPreconditionError(
          absl::StrCat(head, " but ", who, " ", pin_phrase(a), "; ", why));
    }
  }

  // Enough independent nodes for the chips that must be in use.
  int units = 0;
  for (int v = 0; v < n; ++v) units += uf.Find(v) == v;
  int highest_pin = -1;
  int highest_pinned = -1;
  for (int v = 0; v < n; ++v) {
    if (pin[v] > highest_pin) {
      highest_pin = pin[v];
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
        "node ", Quote(g, highest_pinned), " ", pin_phrase(highest_pinned),
        ", so chips 0..", highest_pin,
        " must all be in use (no skipping chips), but colocation groups "
        "leave only ",
        units, " sets of nodes that can go to different chips"));
  }

  // Chip bounds per node from pins, edges, max_hops and colocation; a few
  // sweeps in both directions (each sweep only tightens, so stopping early
  // is sound).
  std::vector<int> lo(n, 0), hi(n, chips - 1);
  for (int v = 0; v < n; ++v) {
    if (pin[v] >= 0) lo[v] = hi[v] = pin[v];
  }
  // A unique source precedes every node, so it holds the lowest chip, which
  // must be chip 0; with use_all_chips a unique sink holds chip C-1.
  int sources = 0, source = -1, sinks = 0, sink = -1;
  for (int v = 0; v < n; ++v) {
    if (g.predecessors(v).empty()) ++sources, source = v;
    if (g.successors(v).empty()) ++sinks, sink = v;
  }
  if (sources == 1) {
    if (pin[source] > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", Quote(g, source), " ", pin_phrase(source),
          ", but every other node depends on it, so chip 0 would stay empty "
          "(no skipping chips)"));
    }
    hi[source] = 0;
  }
  if (sinks == 1 && problem.use_all_chips()) {
    if (pin[sink] >= 0 && pin[sink] < chips - 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", Quote(g, sink), " ", pin_phrase(sink),
                       ", but every other node feeds it, so chip ", chips - 1,
                       " would stay empty, and use_all_chips requires all ",
                       chips, " chips"));
    }
    lo[sink] = chips - 1;
  }
  std::vector<int> glo(n), ghi(n);
  const int64_t sweep_cost = static_cast<int64_t>(n) + g.num_edges() + 1;
  const int sweeps = static_cast<int>(
      std::min<int64_t>(2 * chips + 4, 1 + 200'000'000 / sweep_cost));
  for (int sweep = 0; sweep < sweeps; ++sweep) {
    bool changed = false;
    auto tighten = [&](int v, int l, int h) {
      if (l > lo[v]) lo[v] = l, changed = true;
      if (h < hi[v]) hi[v] = h, changed = true;
    };
    for (int v = 0; v < n; ++v) {
      for (int u : g.predecessors(v)) {
        tighten(v, lo[u],
                static_cast<int>(std::min<int64_t>(
                    chips - 1, static_cast<int64_t>(hi[u]) + hops)));
      }
    }
    for (int u = n - 1; u >= 0; --u) {
      for (int v : g.successors(u)) {
        tighten(u,
                static_cast<int>(
                    std::max<int64_t>(0, static_cast<int64_t>(lo[v]) - hops)),
                hi[v]);
      }
    }
    if (!groups.empty()) {
      std::fill(glo.begin(), glo.end(), 0);
      std::fill(ghi.begin(), ghi.end(), chips - 1);
      for (int v = 0; v < n; ++v) {
        const int r = uf.Find(v);
        glo[r] = std::max(glo[r], lo[v]);
        ghi[r] = std::min(ghi[r], hi[v]);
      }
      for (int v = 0; v < n; ++v) tighten(v, glo[uf.Find(v)], ghi[uf.Find(v)]);
    }
    bool empty = false;
    for (int v = 0; v < n; ++v) empty = empty || lo[v] > hi[v];
    if (empty) break;
    if (!changed) break;
  }
  for (int v = 0; v < n; ++v) {
    if (lo[v] > hi[v]) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pins, colocation groups and max_hops ", hops,
          " leave no chip for node ", Quote(g, v),
          ": its producers need it on chip ", lo[v],
          " or later and its consumers on chip ", hi[v], " or earlier"));
    }
    double best = 0;
    for (int c = lo[v]; c <= hi[v]; ++c)
      best = std::max(best, hw.chip(c).sram_bytes);
    if (over(problem.resident_bytes(v), best)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", Quote(g, v), " needs ",
          FormatBytes(problem.resident_bytes(v)),
          " of SRAM for its parameters and output, but pins and max_hops ",
          hops, " keep it on chips ", lo[v], "..", hi[v],
          ", the largest of which has ", FormatBytes(best)));
    }
  }

  // Memory of the nodes held on a prefix or a suffix of the chips.
  std::vector<double> by_hi(chips, 0.0), by_lo(chips, 0.0);
  for (int v = 0; v < n; ++v) {
    by_hi[hi[v]] += problem.resident_bytes(v);
    by_lo[lo[v]] += problem.resident_bytes(v);
  }
  double need = 0, have = 0;
  for (int c = 0; c + 1 < chips; ++c) {
    need += by_hi[c];
    have += hw.chip(c).sram_bytes;
    if (over(need, have)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the nodes that must run on chips 0..", c,
                       " (pinned there or upstream of such a pin) need ",
                       FormatBytes(need), " of SRAM, but chips 0..", c,
                       " have ", FormatBytes(have), " together"));
    }
  }
  need = have = 0;
  for (int c = chips - 1; c > 0; --c) {
    need += by_lo[c];
    have += hw.chip(c).sram_bytes;
    if (over(need, have)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the nodes that must run on chips ", c, "..", chips - 1,
                       " (pinned there or downstream of such a pin) need ",
                       FormatBytes(need), " of SRAM, but chips ", c, "..",
                       chips - 1, " have ", FormatBytes(have), " together"));
    }
  }

  if (bounds != nullptr) {
    bounds->pin = std::move(pin);
    bounds->lo = std::move(lo);
    bounds->hi = std::move(hi);
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// The memory and no-skipping propagator.
//
// Reasons on the domain bounds lo(v), hi(v) of every x[v]:
//  * mandatory load M(c): residents fixed on c, plus the output of every u
//    that certainly waits on c (hi(u) < c <= max over successors of lo);
//    M(c) > cap(c) fails;
//  * value pruning: c leaves dom(x[v]) when placing v there would add more
//    than the chip's slack (v's resident, the outputs of predecessors that
//    would then have to wait on c, v's own output on later chips);
//  * energy on prefixes and suffixes of the chips: the nodes that must be on
//    chips 0..c (hi(v) <= c) plus the mandatory loads there must fit the
//    chips' total, and a node that would break that total if put on 0..c
//    must go later (symmetrically for suffixes);
//  * no skipping: every chip below max lo(v) (all chips with use_all_chips)
//    needs a node that can still go there; a chip that no node can take
//    bounds every node below it.
class MemoryProp : public Propagator {
 public:
  static ExecStatus Post(Home home, ViewArray<Gecode::Int::IntView>& x,
                         const Instance* inst, bool memory, bool use_all) {
    (void)new (home) MemoryProp(home, x, inst, memory, use_all);
    return Gecode::ES_OK;
  }

  MemoryProp(Space& home, MemoryProp& p)
      : Propagator(home, p),
        inst_(p.inst_),
        memory_(p.memory_),
        use_all_(p.use_all_) {
    x_.update(home, p.x_);
  }

  Propagator* copy(Space& home) override {
    return new (home) MemoryProp(home, *this);
  }

  PropCost cost(const Space&, const ModEventDelta&) const override {
    return PropCost::linear(PropCost::HI, x_.size());
  }

  void reschedule(Space& home) override {
    x_.reschedule(home, *this, Gecode::Int::PC_INT_DOM);
  }

  size_t dispose(Space& home) override {
    x_.cancel(home, *this, Gecode::Int::PC_INT_DOM);
    (void)Propagator::dispose(home);
    return sizeof(*this);
  }

  ExecStatus propagate(Space& home, const ModEventDelta&) override;

 private:
  MemoryProp(Home home, ViewArray<Gecode::Int::IntView>& x,
             const Instance* inst, bool memory, bool use_all)
      : Propagator(home),
        x_(x),
        inst_(inst),
        memory_(memory),
        use_all_(use_all) {
    x_.subscribe(home, *this, Gecode::Int::PC_INT_DOM);
  }

  ExecStatus PropagateMemory(Space& home, bool* modified);
  ExecStatus PropagateNoSkip(Space& home, bool* modified);

  ViewArray<Gecode::Int::IntView> x_;
  const Instance* inst_;
  bool memory_;
  bool use_all_;
};

ExecStatus MemoryProp::PropagateMemory(Space& home, bool* modified) {
  const Instance& in = *inst_;
  const Graph& g = *in.graph;
  const int n = in.n;
  const int chips = in.chips;
  Gecode::Region region;
  int* lo = region.alloc<int>(n);
  int* hi = region.alloc<int>(n);
  int* maxlo = region.alloc<int>(n);  // max lo over successors, -1 if none
  for (int v = 0; v < n; ++v) {
    lo[v] = x_[v].min();
    hi[v] = x_[v].max();
  }
  int64_t* mand = region.alloc<int64_t>(chips + 1);
  std::fill(mand, mand + chips + 1, 0);
  int64_t* diff = region.alloc<int64_t>(chips + 2);
  std::fill(diff, diff + chips + 2, 0);
  int64_t* hi_res = region.alloc<int64_t>(chips);  // unfixed res by hi
  int64_t* lo_res = region.alloc<int64_t>(chips);  // unfixed res by lo
  std::fill(hi_res, hi_res + chips, 0);
  std::fill(lo_res, lo_res + chips, 0);
  for (int u = 0; u < n; ++u) {
    int m = -1;
    for (int s : g.successors(u)) m = std::max(m, lo[s]);
    maxlo[u] = m;
    if (lo[u] == hi[u]) {
      mand[lo[u]] += in.res[u];
    } else {
      hi_res[hi[u]] += in.res[u];
      lo_res[lo[u]] += in.res[u];
    }
    if (m > hi[u] && in.out[u] > 0) {
      diff[hi[u] + 1] += in.out[u];
      diff[m + 1] -= in.out[u];
    }
  }
  int64_t* slack = region.alloc<int64_t>(chips);
  int64_t run = 0;
  int64_t min_slack = kInf;
  for (int c = 0; c < chips; ++c) {
    run += diff[c];
    mand[c] += run;
    slack[c] = in.cap[c] - mand[c];
    if (slack[c] < 0) return Gecode::ES_FAILED;
    min_slack = std::min(min_slack, slack[c]);
  }
  // Energy on prefixes (chips 0..c) and suffixes (chips c..C-1).
  int64_t* slack_pre = region.alloc<int64_t>(chips);
  int64_t* slack_suf = region.alloc<int64_t>(chips);
  int64_t acc = 0;
  for (int c = 0; c < chips; ++c) {
    acc += mand[c] + hi_res[c];
    slack_pre[c] = in.cap_prefix[c] - acc;
    if (slack_pre[c] < 0) return Gecode::ES_FAILED;
  }
  acc = 0;
  for (int c = chips - 1; c >= 0; --c) {
    acc += mand[c] + lo_res[c];
    slack_suf[c] = in.cap_suffix[c] - acc;
    if (slack_suf[c] < 0) return Gecode::ES_FAILED;
  }

  for (int v = 0; v < n; ++v) {
    if (lo[v] == hi[v]) continue;
    const int64_t r = in.res[v];
    // Prefix energy: v on a chip <= c (c < hi) adds r to prefix c.
    int new_lo = lo[v];
    for (int c = hi[v] - 1; c >= lo[v]; --c) {
      if (slack_pre[c] < r) {
        new_lo = c + 1;
        break;
      }
    }
    int new_hi = hi[v];
    for (int c = lo[v] + 1; c <= hi[v]; ++c) {
      if (slack_suf[c] < r) {
        new_hi = c - 1;
        break;
      }
    }
    if (new_lo > new_hi) return Gecode::ES_FAILED;
    if (new_lo > lo[v]) {
      GECODE_ME_CHECK(x_[v].gq(home, new_lo));
      *modified = true;
    }
    if (new_hi < hi[v]) {
      GECODE_ME_CHECK(x_[v].lq(home, new_hi));
      *modified = true;
    }
    if (in.max_extra[v] <= min_slack) continue;
    // Per-chip check of each remaining value.
    const int vlo = x_[v].min();
    const int vhi = x_[v].max();
    for (int c = vlo; c <= vhi; ++c) {
      if (!x_[v].in(c)) continue;
      bool drop = false;
      int64_t extra = r;
      for (int u : g.predecessors(v)) {
        if (hi[u] < c && maxlo[u] < c) extra += in.out[u];
      }
      drop = extra > slack[c];
      // v's output would wait on chips (c, min(hi, maxlo)].
      if (!drop && in.out[v] > 0) {
        const int end = std::min(hi[v], maxlo[v]);
        for (int k = c + 1; k <= end && !drop; ++k) {
          drop = in.out[v] > slack[k];
        }
      }
      // With max_hops > 1 a predecessor's output would also wait on the
      // chips between it and c; each such output alone must fit.
      if (!drop && in.hops > 1) {
        for (int u : g.predecessors(v)) {
          const int from = std::max(hi[u], maxlo[u]) + 1;
          for (int k = from; k < c && !drop; ++k) drop = in.out[u] > slack[k];
          if (drop) break;
        }
      }
      if (drop) {
        GECODE_ME_CHECK(x_[v].nq(home, c));
        *modified = true;
      }
    }
  }
  return Gecode::ES_OK;
}

ExecStatus MemoryProp::PropagateNoSkip(Space& home, bool* modified) {
  const int n = inst_->n;
  const int chips = inst_->chips;
  Gecode::Region region;
  int* support = region.alloc<int>(chips);
  int* who = region.alloc<int>(chips);
  std::fill(support, support + chips, 0);
  int must = 0;  // chips 0..must-1 must be used
  for (int v = 0; v < n; ++v) must = std::max(must, x_[v].min() + 1);
  if (use_all_) must = chips;
  for (int v = 0; v < n; ++v) {
    for (Gecode::Int::ViewValues<Gecode::Int::IntView> it(x_[v]); it(); ++it) {
      ++support[it.val()];
      who[it.val()] = v;
    }
  }
  for (int c = 0; c < chips; ++c) {
    if (support[c] == 0) {
      if (c < must) return Gecode::ES_FAILED;
      // No node can take chip c, so no chip after it may be used.
      for (int v = 0; v < n; ++v) {
        if (x_[v].max() >= c) {
          GECODE_ME_CHECK(x_[v].lq(home, c - 1));
          *modified = true;
        }
      }
      break;
    }
    if (support[c] == 1 && c < must && !x_[who[c]].assigned()) {
      GECODE_ME_CHECK(x_[who[c]].eq(home, c));
      *modified = true;
    }
  }
  return Gecode::ES_OK;
}

ExecStatus MemoryProp::propagate(Space& home, const ModEventDelta&) {
  bool modified = false;
  if (memory_) {
    ExecStatus s = PropagateMemory(home, &modified);
    if (s != Gecode::ES_OK) return s;
  }
  ExecStatus s = PropagateNoSkip(home, &modified);
  if (s != Gecode::ES_OK) return s;
  if (!modified && x_.assigned()) return home.ES_SUBSUMED(*this);
  return modified ? Gecode::ES_NOFIX : Gecode::ES_FIX;
}

// ---------------------------------------------------------------------------
// The model.

class RepairSpace : public Space {
 public:
  // Posts the model of `spec` (families, distance bounds, fixed nodes).
  RepairSpace(const Instance& in, const SearchSpec& spec)
      : inst_(&in), x_(*this, in.n) {
    const Graph& g = *in.graph;
    const Families& f = spec.families;
    const int n = in.n;
    for (int v = 0; v < n; ++v) {
      int l = 0, h = in.chips - 1;
      // The precomputed bounds assume every family (use_all_chips fixes a
      // unique sink to the last chip), so relaxed models start from pins.
      if (f.pins && f.colocation && f.hops && f.use_all) {
        l = in.lo[v];
        h = in.hi[v];
      } else if (f.pins && in.problem->pin(v) >= 0) {
        l = h = in.problem->pin(v);
      }
      if (spec.fixed != nullptr && (*spec.fixed)[v] >= 0) {
        const int c = (*spec.fixed)[v];
        if (c < l || c > h) {
          l = 1;
          h = 0;
        } else {
          l = h = c;
        }
      }
      if (l > h) {
        // An empty domain cannot be built; fail the space instead.
        x_[v] = IntVar(*this, 0, 0);
        fail();
        continue;
      }
      x_[v] = IntVar(*this, l, h);
    }
    if (failed()) {
      cost_ = IntVar(*this, 0, 0);
      return;
    }
    for (int u = 0; u < n; ++u) {
      for (int v : g.successors(u)) {
        Gecode::rel(*this, x_[u], Gecode::IRT_LQ, x_[v]);
        if (f.hops && in.hops < in.chips - 1) {
          Gecode::linear(*this, IntArgs({1, -1}), IntVarArgs({x_[v], x_[u]}),
                         Gecode::IRT_LQ, in.hops);
        }
      }
    }
    if (f.colocation) {
      for (const std::vector<int>& group : in.problem->colocation_groups()) {
        for (size_t i = 1; i < group.size(); ++i) {
          Gecode::rel(*this, x_[group[0]], Gecode::IRT_EQ, x_[group[i]]);
        }
      }
    }
    {
      ViewArray<Gecode::Int::IntView> views(*this, IntVarArgs(x_));
      if (MemoryProp::Post(*this, views, &in, f.memory,
                           f.use_all && in.use_all) != Gecode::ES_OK) {
        fail();
      }
    }
    // Distance: sum of w(v) * [x(v) != q(v)].
    IntArgs coeffs;
    BoolVarArgs differs;
    int64_t total = 0;
    for (int v = 0; v < n; ++v) {
      if (in.w[v] <= 0) continue;
      BoolVar d(*this, 0, 1);
      Gecode::rel(*this, x_[v], Gecode::IRT_NQ, in.q[v], d);
      coeffs << static_cast<int>(in.w[v]);
      differs << d;
      total += in.w[v];
    }
    cost_ = IntVar(*this, 0, static_cast<int>(total));
    if (differs.size() > 0) {
      Gecode::linear(*this, coeffs, differs, Gecode::IRT_EQ, cost_);
    }
    if (spec.bound > 0) {
      Gecode::rel(*this, cost_, Gecode::IRT_LE, static_cast<int>(spec.bound));
    }
    if (spec.lower > 0) {
      Gecode::rel(*this, cost_, Gecode::IRT_GQ, static_cast<int>(spec.lower));
    }

    // Branching: in.order (weighted nodes by resident memory, largest first,
    // then free ones); the candidate's chip first, else the warm start's,
    // else the chip nearest the candidate's.
    IntVarArgs ordered;
    for (int v : in.order) ordered << x_[v];
    const Instance* inst = &in;
    Gecode::branch(
        *this, ordered, Gecode::INT_VAR_NONE(),
        Gecode::INT_VAL(
            [inst](const Space&, IntVar x, int i) {
              const int v = inst->order[i];
              const int want = inst->q[v];
              const int guide = inst->guide.empty() ? -1 : inst->guide[v];
              if (want >= 0 && x.in(want)) return want;
              if (guide >= 0 && x.in(guide)) return guide;
              if (want < 0) return x.min();
              int best = x.min();
              for (Gecode::IntVarValues it(x); it(); ++it) {
                if (std::abs(it.val() - want) < std::abs(best - want)) {
                  best = it.val();
                }
              }
              return best;
            },
            [](Space& home, unsigned int a, IntVar x, int, int val) {
              if (a == 0) {
                Gecode::rel(home, x, Gecode::IRT_EQ, val);
              } else {
                Gecode::rel(home, x, Gecode::IRT_NQ, val);
              }
            }));
  }

  RepairSpace(RepairSpace& s) : Space(s), inst_(s.inst_) {
    x_.update(*this, s.x_);
    cost_.update(*this, s.cost_);
  }

  Space* copy() override { return new RepairSpace(*this); }

  void constrain(const Space& best) override {
    Gecode::rel(*this, cost_, Gecode::IRT_LE,
                static_cast<const RepairSpace&>(best).cost_.val());
  }

  std::vector<int> Placement() const {
    std::vector<int> p(inst_->n);
    for (int v = 0; v < inst_->n; ++v) p[v] = x_[v].val();
    return p;
  }
  int64_t Cost() const { return cost_.val(); }

 private:
  const Instance* inst_;
  IntVarArray x_;
  IntVar cost_;
};

// Stops a search on the wall-clock deadline, the failure budget or the
// caller's stop token, and remembers which.
class LimitStop : public Gecode::Search::Stop {
 public:
  LimitStop(absl::Time deadline, int64_t fail_budget, const StopToken* token)
      : deadline_(deadline), fail_budget_(fail_budget), token_(token) {}

  bool stop(const Gecode::Search::Statistics& s,
            const Gecode::Search::Options&) override {
    if (token_ != nullptr && token_->stop_requested()) {
      cancelled = true;
      return true;
    }
    if (fail_budget_ > 0 && static_cast<int64_t>(s.fail) >= fail_budget_) {
      fail_hit = true;
      return true;
    }
    // The clock is read every few nodes: one node takes microseconds.
    if ((calls_++ & 7) == 0 && absl::Now() >= deadline_) {
      time_hit = true;
      return true;
    }
    return false;
  }

  bool cancelled = false;
  bool fail_hit = false;
  bool time_hit = false;

 private:
  absl::Time deadline_;
  int64_t fail_budget_;
  const StopToken* token_;
  uint64_t calls_ = 0;
};

// ---------------------------------------------------------------------------
// Lower bound and guide: the repair without memory and no-skipping.
//
// Minimising sum of w(v) * [x(v) != q(v)] under x(u) <= x(v) <= x(u) + H
// per edge, pins, colocation and the chip bounds is a labelling problem with
// convex pairwise terms, solved exactly by one minimum cut (Ishikawa's
// construction): node v gets a chain s -> v_1 -> ... -> v_{C-1} -> t whose
// i-th arc costs w(v) * [q(v) != i], and x(v) = the number of chain nodes on
// the source side. Infinite arcs v_{i+1} -> v_i keep that side a prefix,
// u_i -> v_i enforces x(u) <= x(v) and v_{i+H} -> u_i enforces
// x(v) - x(u) <= H. Every valid placement is feasible here, so the cut is a
// lower bound on the distance; when its placement also fits memory and uses
// chips 0..k-1 it is optimal outright.
class MaxFlow {
 public:
  explicit MaxFlow(int nodes) : head_(nodes, -1), level_(nodes), it_(nodes) {}

  void AddArc(int from, int to, int64_t cap) {
    arcs_.push_back({to, head_[from], cap});
    head_[from] = static_cast<int>(arcs_.size()) - 1;
    arcs_.push_back({from, head_[to], 0});
    head_[to] = static_cast<int>(arcs_.size()) - 1;
  }

  // Dinic's algorithm; returns the flow value, or -1 when `deadline` passes.
  int64_t Run(int s, int t, absl::Time deadline, const StopToken* stop) {
    int64_t flow = 0;
    while (Levels(s, t)) {
      if (absl::Now() >= deadline) return -1;
      if (stop != nullptr && stop->stop_requested()) return -1;
      it_ = head_;
      flow += Blocking(s, t);
    }
    return flow;
  }

  // After Run: whether `v` is on the source side of a minimum cut.
  bool SourceSide(int v) const { return level_[v] >= 0; }

 private:
  struct Arc {
    int to;
    int next;
    int64_t cap;
  };

  bool Levels(int s, int t) {
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

  // A blocking flow along the level graph by iterative DFS (graphs of long
  // chains would overflow the stack recursively). After each augmentation
  // the walk resumes at the first saturated arc instead of at s.
  int64_t Blocking(int s, int t) {
    int64_t total = 0;
    path_.clear();
    int u = s;
    while (true) {
      if (u == t) {
        int64_t f = kInf;
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

  std::vector<Arc> arcs_;
  std::vector<int> head_;
  std::vector<int> level_;
  std::vector<int> it_;
  std::vector<int> queue_;
  std::vector<int> path_;
};

struct CutResult {
  bool done = false;        // false when the deadline passed
  bool infeasible = false;  // not even the relaxation has a placement
  int64_t bound = 0;        // minimum distance without memory / no-skipping
  std::vector<int> placement;
};

CutResult MinCutRelaxation(const Instance& in, absl::Time deadline,
                           const StopToken* stop) {
  CutResult r;
  const Graph& g = *in.graph;
  const int n = in.n;
  const int k = in.chips - 1;  // chain nodes per graph node
  if (k == 0) {
    r.done = true;
    r.placement.assign(n, 0);
    for (int v = 0; v < n; ++v) r.bound += in.q[v] > 0 ? in.w[v] : 0;
    return r;
  }
  // About 250 bytes per chain node; beyond this the bound is not worth it.
  if (static_cast<int64_t>(n) * k > 1'000'000) return r;
  int64_t total = 0;
  for (int v = 0; v < n; ++v) total += in.w[v];
  const int64_t inf = total + 1;
  const int s = n * k, t = n * k + 1;
  auto id = [k](int v, int i) { return v * k + (i - 1); };  // i in 1..k
  MaxFlow flow(n * k + 2);
  for (int v = 0; v < n; ++v) {
    auto cost = [&](int c) -> int64_t {
      if (c < in.lo[v] || c > in.hi[v]) return inf;
      return in.q[v] >= 0 && in.q[v] != c ? in.w[v] : 0;
    };
    flow.AddArc(s, id(v, 1), cost(0));
    for (int i = 1; i < k; ++i) {
      flow.AddArc(id(v, i), id(v, i + 1), cost(i));
      flow.AddArc(id(v, i + 1), id(v, i), inf);
    }
    flow.AddArc(id(v, k), t, cost(k));
    for (int u : g.predecessors(v)) {
      for (int i = 1; i <= k; ++i) flow.AddArc(id(u, i), id(v, i), inf);
      if (in.hops < k) {
        for (int i = in.hops + 1; i <= k; ++i) {
          flow.AddArc(id(v, i), id(u, i - in.hops), inf);
        }
      }
    }
  }
  for (const std::vector<int>& group : in.problem->colocation_groups()) {
    for (size_t j = 1; j < group.size(); ++j) {
      for (int i = 1; i <= k; ++i) {
        flow.AddArc(id(group[0], i), id(group[j], i), inf);
        flow.AddArc(id(group[j], i), id(group[0], i), inf);
      }
    }
  }
  const int64_t value = flow.Run(s, t, deadline, stop);
  if (value < 0) return r;
  r.done = true;
  if (value >= inf) {
    r.infeasible = true;
    return r;
  }
  r.bound = value;
  r.placement.assign(n, 0);
  for (int v = 0; v < n; ++v) {
    for (int i = 1; i <= k && flow.SourceSide(id(v, i)); ++i)
      r.placement[v] = i;
  }
  return r;
}

// ---------------------------------------------------------------------------
// Warm start: the best contiguous split of the topological order.
//
// Chips 0..k-1 take consecutive runs of node ids. Memory of chip c is then
// the run's residents plus T(a), the outputs of earlier nodes read at or
// after the run's start a. With every edge spanning at most one chip
// (stricter than or equal to max_hops), the run starting at a must extend
// past the last reader of any earlier node. Pins and colocation restrict
// where runs start and end. Dynamic programming over (chip, run end) with a
// heap over run starts: O(C n log n). Returns false when no split exists.
bool ContiguousSplit(const Instance& in, absl::Time deadline,
                     const StopToken* stop, std::vector<int>* placement,
                     int64_t* cost) {
  const Graph& g = *in.graph;
  const int n = in.n;
  const int chips = in.chips;
  if (n == 0) return false;
  // Memory for the argmin table is C * (n + 1) ints; skip absurd sizes.
  if (static_cast<int64_t>(chips) * (n + 1) > 10'000'000) return false;

  std::vector<int64_t> res_pre(n + 1, 0);
  for (int v = 0; v < n; ++v) res_pre[v + 1] = res_pre[v] + in.res[v];
  // Node ids are a topological order: runs are ranges of ids.
  std::vector<int> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  const SplitCuts cuts(*in.problem, ids, in.pin);
  // T(a), the outputs of earlier nodes read at or after a.
  const std::vector<int64_t> transit =
      cuts.InTransit<int64_t>([&in](int u) { return in.out[u]; });

  std::vector<int> from(static_cast<size_t>(chips) * (n + 1), -1);
  std::vector<int64_t> cur(n + 1, kInf), next(n + 1, kInf);
  cur[0] = 0;
  std::vector<int64_t> wcost(n + 1);
  std::vector<std::vector<int>> starts(n + 2);
  int64_t best = kInf;
  int best_k = -1;
  using Entry = std::pair<int64_t, int>;  // key, run start
  for (int c = 0; c < chips; ++c) {
    // One chip's sweep is O(n log n), microseconds on real graphs: the warm
    // start then always runs, even with no time left, and only sweeps over
    // very large graphs give way to the deadline.
    if (n > 100'000 && absl::Now() >= deadline) return false;
    if (stop != nullptr && stop->stop_requested()) return false;
    wcost[0] = 0;
    for (int v = 0; v < n; ++v) {
      wcost[v + 1] = wcost[v] + (in.q[v] >= 0 && in.q[v] != c ? in.w[v] : 0);
    }
    for (auto& s : starts) s.clear();
    std::vector<int> expiry(n + 1, -1);
    for (int a = 0; a < n; ++a) {
      if (cur[a] >= kInf || !cuts.cut_free(a)) continue;
      const int64_t room = in.cap[c] - transit[a];
      if (room < 0) continue;
      // Largest b with res_pre[b] - res_pre[a] <= room.
      int end =
          static_cast<int>(std::upper_bound(res_pre.begin() + a, res_pre.end(),
                                            res_pre[a] + room) -
                           res_pre.begin()) -
          1;
      // First node pinned to another chip at or after a: the run must end
      // before it.
      end = std::min(end, cuts.FirstPinnedElsewhere(a, c));
      const int begin = std::max(a + 1, cuts.max_reach(a) + 1);
      if (begin > end) continue;
      expiry[a] = end;
      starts[begin].push_back(a);
    }
    std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
    std::fill(next.begin(), next.end(), kInf);
    int* arg = from.data() + static_cast<size_t>(c) * (n + 1);
    for (int b = 1; b <= n; ++b) {
      for (int a : starts[b]) heap.push({cur[a] - wcost[a], a});
      while (!heap.empty() && expiry[heap.top().second] < b) heap.pop();
      if (heap.empty() || !(cuts.cut_free(b) || b == n)) continue;
      next[b] = wcost[b] + heap.top().first;
      arg[b] = heap.top().second;
    }
    if (next[n] < kInf && (!in.use_all || c == chips - 1) && next[n] < best) {
      best = next[n];
      best_k = c + 1;
    }
    std::swap(cur, next);
  }
  if (best_k < 0) return false;
  placement->assign(n, -1);
  int b = n;
  for (int c = best_k - 1; c >= 0; --c) {
    const int a = from[static_cast<size_t>(c) * (n + 1) + b];
    for (int v = a; v < b; ++v) (*placement)[v] = c;
    b = a;
  }
  *cost = best;
  return true;
}

// ---------------------------------------------------------------------------

int64_t ScaledCost(const Instance& in, const std::vector<int>& p) {
  int64_t cost = 0;
  for (int v = 0; v < in.n; ++v) {
    if (in.w[v] > 0 && p[v] != in.q[v]) cost += in.w[v];
  }
  return cost;
}

// Fills the memory, bound and graph parts of `in` (not q, w, order).
void BuildInstance(const Problem& problem, Bounds bounds, Instance* in) {
  const Graph& g = problem.graph();
  const Hardware& hw = problem.hardware();
  in->problem = &problem;
  in->graph = &g;
  in->n = g.num_nodes();
  in->chips = problem.num_chips();
  in->hops = problem.max_hops();
  in->use_all = problem.use_all_chips();
  double total = 0;
  for (int v = 0; v < in->n; ++v) {
    total += problem.resident_bytes(v) + g.output_bytes(v);
  }
  // Node figures round up and capacities down, so a placement that fits in
  // units fits in bytes.
  in->unit = PowerOfTwoUnit(total, kMaxMemoryUnits);
  const double limit = kMaxMemoryUnits * 2;
  in->res.resize(in->n);
  in->out.resize(in->n);
  for (int v = 0; v < in->n; ++v) {
    in->res[v] =
        static_cast<int64_t>(std::ceil(problem.resident_bytes(v) / in->unit));
    in->out[v] = static_cast<int64_t>(std::ceil(g.output_bytes(v) / in->unit));
  }
  in->cap.resize(in->chips);
  in->cap_prefix.resize(in->chips);
  in->cap_suffix.resize(in->chips);
  for (int c = 0; c < in->chips; ++c) {
    in->cap[c] = static_cast<int64_t>(
        std::floor(std::min(hw.chip(c).sram_bytes / in->unit, limit)));
  }
  for (int c = 0; c < in->chips; ++c) {
    in->cap_prefix[c] = in->cap[c] + (c > 0 ? in->cap_prefix[c - 1] : 0);
  }
  for (int c = in->chips - 1; c >= 0; --c) {
    in->cap_suffix[c] =
        in->cap[c] + (c + 1 < in->chips ? in->cap_suffix[c + 1] : 0);
  }
  in->max_extra.resize(in->n);
  for (int v = 0; v < in->n; ++v) {
    int64_t e = in->res[v];
    for (int u : g.predecessors(v)) e += in->out[u];
    in->max_extra[v] = e;
  }
  in->pin = std::move(bounds.pin);
  in->lo = std::move(bounds.lo);
  in->hi = std::move(bounds.hi);
}

absl::Status CheckInputs(const Problem& problem,
                         absl::Span<const int> candidate,
                         absl::Span<const double> weights) {
  const int n = problem.num_nodes();
  const Graph& g = problem.graph();
  if (static_cast<int>(candidate.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("repair: candidate has ", candidate.size(),
                     " entries for ", n, " nodes"));
  }
  for (int v = 0; v < n; ++v) {
    if (candidate[v] < -1 || candidate[v] >= problem.num_chips()) {
      return absl::InvalidArgumentError(
          absl::StrCat("repair: candidate puts node ", Quote(g, v), " on chip ",
                       candidate[v], "; chips are 0..", problem.num_chips() - 1,
                       " (-1 = free)"));
    }
  }
  if (!weights.empty() && static_cast<int>(weights.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("repair: ", weights.size(), " weights for ", n, " nodes"));
  }
  for (size_t v = 0; v < weights.size(); ++v) {
    if (!std::isfinite(weights[v]) || weights[v] < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("repair: weight of node ", Quote(g, static_cast<int>(v)),
                       " is ", weights[v], "; must be a finite number >= 0"));
    }
  }
  return absl::OkStatus();
}

// Integer weights: exact when every weight is an integer and their sum is at
// most 2^30, else scaled by a power of two to a sum of about 2^30 and
// rounded (a positive weight never rounds to 0).
void ScaleWeights(absl::Span<const int> candidate,
                  absl::Span<const double> weights, Instance* in) {
  const int n = in->n;
  in->q.assign(candidate.begin(), candidate.end());
  double sum = 0;
  bool integral = true;
  for (int v = 0; v < n; ++v) {
    if (in->q[v] < 0) continue;
    const double w = weights.empty() ? 1.0 : weights[v];
    sum += w;
    integral = integral && w == std::floor(w);
  }
  double scale = 1.0;
  if (!integral || sum > kMaxWeightUnits) {
    scale = 1.0 / PowerOfTwoUnit(sum, kMaxWeightUnits);
  }
  in->w.assign(n, 0);
  for (int v = 0; v < n; ++v) {
    if (in->q[v] < 0) continue;
    const double w = weights.empty() ? 1.0 : weights[v];
    if (w > 0) in->w[v] = std::max<int64_t>(1, std::llround(w * scale));
  }
  // Keep the sum inside Gecode's int range whatever the rounding did.
  int64_t total = 0;
  for (int64_t w : in->w) total += w;
  while (total > (int64_t{1} << 30)) {
    total = 0;
    for (int64_t& w : in->w) {
      if (w > 0) w = std::max<int64_t>(1, w / 2);
      total += w;
    }
  }
}

void ChooseOrder(Instance* in) {
  in->order.resize(in->n);
  std::iota(in->order.begin(), in->order.end(), 0);
  // Weighted nodes first (they decide the distance), then by resident
  // memory, largest first: big items packed first fail early, as in
  // first-fit-decreasing bin packing.
  std::stable_sort(in->order.begin(), in->order.end(), [in](int a, int b) {
    const bool wa = in->w[a] > 0, wb = in->w[b] > 0;
    if (wa != wb) return wa;
    if (in->res[a] != in->res[b]) return in->res[a] > in->res[b];
    return in->w[a] > in->w[b];
  });
}

struct SearchResult {
  bool found = false;
  std::vector<int> best;
  int64_t cost = 0;
  bool complete = false;  // the search space was exhausted
  bool cancelled = false;
  bool fail_hit = false;
  bool time_hit = false;
  int64_t fails = 0;
  absl::Time first_found;  // when the first solution arrived
};

// Branch and bound per `spec` (satisfaction when spec.first_only).
SearchResult RunSearch(const Instance& in, const SearchSpec& spec,
                       absl::Time deadline, int64_t fail_budget,
                       const StopToken* token, Evaluator* eval) {
  SearchResult r;
  const bool first_only = spec.first_only;
  auto root = std::make_unique<RepairSpace>(in, spec);
  if (root->status() == Gecode::SS_FAILED) {
    r.complete = true;
    return r;
  }
  LimitStop stop(deadline, fail_budget, token);
  Gecode::Search::Options opts;
  opts.threads = 1;
  opts.stop = &stop;
  opts.clone = false;  // the engine owns root from here
  Gecode::BAB<RepairSpace> engine(root.release(), opts);
  while (RepairSpace* s = engine.next()) {
    std::unique_ptr<RepairSpace> sol(s);
    std::vector<int> p = sol->Placement();
    // Memory was rounded conservatively, so this holds by construction;
    // checking costs O(V + E) per solution and guards every other family.
    if (eval != nullptr && !eval->IsValid(p)) continue;
    if (!r.found) r.first_found = absl::Now();
    r.found = true;
    r.best = std::move(p);
    r.cost = sol->Cost();
    if (first_only) break;
  }
  r.fails = static_cast<int64_t>(engine.statistics().fail);
  r.complete = !engine.stopped() && !(first_only && r.found);
  r.cancelled = stop.cancelled;
  r.fail_hit = stop.fail_hit;
  r.time_hit = stop.time_hit;
  return r;
}

// Search proved there is no placement; name the families that take part by
// dropping each in turn and seeing whether a placement appears.
std::string ExplainInfeasible(const Problem& problem, const Instance& in,
                              absl::Time deadline, const StopToken* stop) {
  std::vector<std::string> needed;
  std::vector<std::string> involved;
  auto check = [&](const std::string& name, Families f) {
    involved.push_back(name);
    const absl::Time d =
        std::min(deadline, absl::Now() + absl::Milliseconds(200));
    SearchSpec spec;
    spec.families = f;
    spec.first_only = true;
    SearchResult r = RunSearch(in, spec, d, 20000, stop, nullptr);
    if (r.found) needed.push_back(name);
  };
  Families f;
  f.memory = false;
  check("memory (with transit buffers)", f);
  if (problem.max_hops() < problem.num_chips() - 1) {
    f = Families();
    f.hops = false;
    check(absl::StrCat("max_hops ", problem.max_hops()), f);
  }
  bool any_pin = false;
  for (int v = 0; v < problem.num_nodes(); ++v) any_pin |= problem.pin(v) >= 0;
  if (any_pin) {
    f = Families();
    f.pins = false;
    check("pins", f);
  }
  if (!problem.colocation_groups().empty()) {
    f = Families();
    f.colocation = false;
    check("colocation groups", f);
  }
  if (problem.use_all_chips()) {
    f = Families();
    f.use_all = false;
    check("use_all_chips", f);
  }
  std::string msg = absl::StrCat(
      "no valid placement exists: the solver's search proved that acyclic "
      "dataflow, no skipping chips, ",
      absl::StrJoin(involved, ", "), " cannot all hold on ",
      problem.num_chips(), " chips");
  if (!needed.empty()) {
    absl::StrAppend(&msg, "; dropping any one of {",
                    absl::StrJoin(needed, "; "),
                    "} makes a placement possible");
  }
  double total = 0, sram = 0;
  for (int v = 0; v < problem.num_nodes(); ++v)
    total += problem.resident_bytes(v);
  for (int c = 0; c < problem.num_chips(); ++c) {
    sram += problem.hardware().chip(c).sram_bytes;
  }
  absl::StrAppend(&msg, " (parameters and outputs need ", FormatBytes(total),
                  " of ", FormatBytes(sram), " total SRAM, ",
                  absl::StrFormat("%.1f%%", 100.0 * total / sram), ")");
  return msg;
}

// Failures of the first complete search before large-neighbourhood search
// takes over, and per neighbourhood.
constexpr int64_t kFirstSlice = 10000;
constexpr int64_t kLnsSlice = 200;

// The caller's limits across the phases of one repair.
struct SearchStatus {
  const RepairOptions* options = nullptr;
  absl::Time deadline;
  int64_t used = 0;  // failures so far
  bool cancelled = false;
  bool time_hit = false;
  bool fail_hit = false;

  // Failure budget for a phase allowed `slice` failures (0 = no slice).
  int64_t Budget(int64_t slice) const {
    int64_t left = 0;
    if (options->fail_limit > 0)
      left = std::max<int64_t>(1, options->fail_limit - used);
    if (slice > 0 && (left == 0 || slice < left)) return slice;
    return left;
  }
  void Absorb(const SearchResult& r) {
    used += r.fails;
    cancelled = cancelled || r.cancelled;
    time_hit = time_hit || (r.time_hit && absl::Now() >= deadline);
    fail_hit =
        fail_hit || (options->fail_limit > 0 && used >= options->fail_limit);
  }
  bool Over() const { return cancelled || time_hit || fail_hit; }
};

absl::StatusOr<RepairResult> RepairImpl(const Problem& problem,
                                        absl::Span<const int> candidate,
                                        absl::Span<const double> weights,
                                        const RepairOptions& options) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + options.time_limit;
  if (absl::Status s = CheckInputs(problem, candidate, weights); !s.ok())
    return s;
  const int n = problem.num_nodes();

  Evaluator eval(problem);
  RepairResult result;
  auto finish = [&](std::vector<int> p) {
    result.placement = std::move(p);
    result.distance = 0;
    result.changed_nodes = 0;
    for (int v = 0; v < n; ++v) {
      if (candidate[v] >= 0 && result.placement[v] != candidate[v]) {
        result.distance += weights.empty() ? 1.0 : weights[v];
        ++result.changed_nodes;
      }
    }
    result.solve_time = absl::Now() - start;
    return result;
  };

  // A complete candidate that is already valid is its own repair.
  bool complete = true;
  for (int v = 0; v < n; ++v) complete = complete && candidate[v] >= 0;
  if (complete && eval.IsValid(candidate)) {
    result.optimal = true;
    result.first_solution_time = absl::Now() - start;
    return finish(std::vector<int>(candidate.begin(), candidate.end()));
  }

  Bounds bounds;
  if (absl::Status s = RunCheapChecks(problem, &bounds); !s.ok()) return s;
  if (n == 0) {
    result.optimal = true;
    result.first_solution_time = absl::Now() - start;
    return finish({});
  }
  if (options.stop != nullptr && options.stop->stop_requested()) {
    return absl::CancelledError("repair cancelled before it started");
  }

  Instance in;
  BuildInstance(problem, std::move(bounds), &in);
  ScaleWeights(candidate, weights, &in);
  ChooseOrder(&in);

  // Warm start: the best contiguous split, in well under a millisecond on
  // the shared graphs.
  std::vector<int> best;
  int64_t best_cost = 0;
  bool have = false;
  {
    std::vector<int> p;
    int64_t cost = 0;
    if (ContiguousSplit(in, deadline, options.stop, &p, &cost) &&
        eval.IsValid(p)) {
      best = std::move(p);
      best_cost = ScaledCost(in, best);
      have = true;
      in.guide = best;
      result.first_solution_time = absl::Now() - start;
    }
  }
  if (have && best_cost == 0) {
    result.optimal = true;
    return finish(std::move(best));
  }

  // Lower bound, and the optimum outright when memory does not bind.
  CutResult cut = MinCutRelaxation(in, deadline, options.stop);
  if (cut.infeasible) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no valid placement exists: pins, colocation groups, acyclic dataflow "
        "and max_hops ",
        problem.max_hops(), " cannot all hold, whatever the memory"));
  }
  if (cut.done && eval.IsValid(cut.placement)) {
    result.optimal = true;
    if (!have) result.first_solution_time = absl::Now() - start;
    return finish(std::move(cut.placement));
  }
  const int64_t lower = cut.done ? cut.bound : 0;
  if (have && best_cost <= lower) {
    result.optimal = true;
    return finish(std::move(best));
  }

  // Search in three phases sharing the caller's limits (failures count
  // across all of them):
  //  1. complete branch and bound below the incumbent, for a slice of
  //     failures: small and medium instances end here, proved;
  //  2. large-neighbourhood search: windows of consecutive node ids around
  //     the incumbent's chip boundaries are freed and re-optimised with the
  //     rest fixed, for up to half of what is left;
  //  3. complete branch and bound below the improved incumbent with the rest.
  SearchStatus st;
  st.options = &options;
  st.deadline = deadline;
  auto run = [&](SearchSpec spec, absl::Time phase_end, int64_t slice) {
    spec.lower = lower;
    spec.bound = have ? best_cost : 0;
    if (have) in.guide = best;
    SearchResult r = RunSearch(in, spec, std::min(phase_end, deadline),
                               st.Budget(slice), options.stop, &eval);
    st.Absorb(r);
    if (r.found && (!have || r.cost < best_cost)) {
      if (!have) result.first_solution_time = r.first_found - start;
      best = std::move(r.best);
      best_cost = r.cost;
      have = true;
    }
    return r;
  };

  const int64_t first_slice = !have ? 0
                              : options.fail_limit > 0
                                  ? std::max<int64_t>(1, options.fail_limit / 2)
                                  : kFirstSlice;
  SearchResult first = run(SearchSpec(), deadline, first_slice);
  bool proved = first.complete;
  if (!proved && have && !st.Over() && best_cost > lower) {
    // Phase 2.
    const absl::Time lns_end = absl::Now() + (deadline - absl::Now()) / 3;
    const int64_t lns_fails = options.fail_limit > 0
                                  ? st.used + (options.fail_limit - st.used) / 2
                                  : 0;
    std::mt19937 rng(0x5eed);
    int window = std::clamp(2 * n / std::max(1, in.chips), 16, n);
    std::vector<int> fixed(n);
    int idle = 0;
    while (!st.Over() && absl::Now() < lns_end && best_cost > lower &&
           (lns_fails == 0 || st.used < lns_fails) && idle < 2 * in.chips + 8) {
      std::vector<int> cuts;
      for (int v = 1; v < n; ++v) {
        if (best[v] != best[v - 1]) cuts.push_back(v);
      }
      const int center = cuts.empty() ? static_cast<int>(rng() % n)
                                      : cuts[rng() % cuts.size()];
      const int from = std::max(0, center - window / 2);
      const int to = std::min(n, from + window);
      fixed = best;
      for (int v = from; v < to; ++v) fixed[v] = -1;
      SearchSpec spec;
      spec.fixed = &fixed;
      const int64_t before = best_cost;
      SearchResult r =
          run(spec, lns_end,
              lns_fails > 0 ? std::min<int64_t>(kLnsSlice, lns_fails - st.used)
                            : kLnsSlice);
      if (best_cost < before) {
        idle = 0;
      } else {
        ++idle;
      }
      if (r.complete && from == 0 && to == n) {
        proved = true;  // the window was the whole graph
        break;
      }
      // Exhausted windows grow, windows cut short shrink.
      window = r.complete ? std::min(n, window + window / 2 + 1)
                          : std::max(8, window * 2 / 3);
    }
  }
  if (!proved && have && best_cost <= lower) proved = true;
  if (!proved && !st.Over()) {
    // Phase 3.
    SearchResult last = run(SearchSpec(), deadline, 0);
    proved = last.complete;
  }
  result.failures = st.used;
  if (!have) {
    if (proved) {
      return absl::FailedPreconditionError(
          ExplainInfeasible(problem, in, deadline, options.stop));
    }
    if (st.cancelled) {
      return absl::CancelledError(
          "repair cancelled before any valid placement was found");
    }
    return absl::DeadlineExceededError(absl::StrCat(
        "repair found no valid placement within its limits (",
        st.fail_hit ? absl::StrCat(options.fail_limit, " failures")
                    : absl::StrCat(absl::FormatDuration(options.time_limit),
                                   " wall time"),
        ")"));
  }
  result.optimal = proved;
  if (!proved) {
    result.cancelled = st.cancelled;
    result.fail_limit_hit = st.fail_hit;
    result.time_limit_hit = st.time_hit || (!st.cancelled && !st.fail_hit);
  }
  return finish(std::move(best));
}

}  // namespace

absl::Status CheckFeasibility(const Problem& problem) {
  return RunCheapChecks(problem, nullptr);
}

absl::StatusOr<RepairResult> Repair(const Problem& problem,
                                    absl::Span<const int> candidate,
                                    absl::Span<const double> weights,
                                    const RepairOptions& options) {
  // Gecode reports bad values and exhausted memory with exceptions; none may
  // leave the module.
  try {
    return RepairImpl(problem, candidate, weights, options);
  } catch (const Gecode::Exception& e) {
    return absl::InternalError(absl::StrCat("repair: Gecode ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("repair: out of memory");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("repair: ", e.what()));
  }
}

v1::RepairReport MakeRepairReport(const Problem& problem,
                                  const RepairResult& result) {
  v1::RepairReport report;
  *report.mutable_assignment() =
      AssignmentToProto(problem.graph(), result.placement).assignment();
  report.set_distance(result.distance);
  report.set_changed_nodes(result.changed_nodes);
  report.set_optimal(result.optimal);
  report.set_solve_s(absl::ToDoubleSeconds(result.solve_time));
  report.set_limit(result.cancelled        ? "cancelled"
                   : result.time_limit_hit ? "time"
                   : result.fail_limit_hit ? "failures"
                                           : "");
  *report.mutable_evaluation() = Evaluator(problem).Evaluate(result.placement);
  return report;
}

}  // namespace mcmpart
