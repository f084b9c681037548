#include "solver/repair/bounds.h"

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "solver/evaluator.h"
#include "solver/format.h"

namespace mcmpart::repair {
namespace {

bool Over(double need, double have) { return need > MemoryLimit(have); }

// Pins as bounds. A unique source precedes every node, so it holds the
// lowest chip, which must be chip 0; with use_all_chips a unique sink holds
// chip C-1.
absl::Status InitialBounds(const Problem& problem, const EffectivePins& pins,
                           Bounds* b) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int chips = problem.num_chips();
  const std::vector<int>& pin = pins.chip;
  b->lo.assign(n, 0);
  b->hi.assign(n, chips - 1);
  for (int v = 0; v < n; ++v) {
    if (pin[v] >= 0) b->lo[v] = b->hi[v] = pin[v];
  }
  int sources = 0, source = -1, sinks = 0, sink = -1;
  for (int v = 0; v < n; ++v) {
    if (g.predecessors(v).empty()) ++sources, source = v;
    if (g.successors(v).empty()) ++sinks, sink = v;
  }
  if (sources == 1) {
    if (pin[source] > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", Quote(g, source), " ", pins.Phrase(g, source),
          ", but every other node depends on it, so chip 0 would stay empty "
          "(no skipping chips)"));
    }
    b->hi[source] = 0;
  }
  if (sinks == 1 && problem.use_all_chips()) {
    if (pin[sink] >= 0 && pin[sink] < chips - 1) {
      return absl::FailedPreconditionError(
          absl::StrCat("node ", Quote(g, sink), " ", pins.Phrase(g, sink),
                       ", but every other node feeds it, so chip ", chips - 1,
                       " would stay empty, and use_all_chips requires all ",
                       chips, " chips"));
    }
    b->lo[sink] = chips - 1;
  }
  return absl::OkStatus();
}

// A few sweeps in both directions over the edges (x(u) <= x(v) <= x(u) +
// max_hops) and the colocation sets; each sweep only tightens, so stopping
// early is sound.
void TightenBounds(const Problem& problem, const ColocationSets& sets,
                   std::vector<int>& lo, std::vector<int>& hi) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int chips = problem.num_chips();
  const int hops = problem.max_hops();
  const bool grouped = !problem.colocation_groups().empty();
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
    if (grouped) {
      std::fill(glo.begin(), glo.end(), 0);
      std::fill(ghi.begin(), ghi.end(), chips - 1);
      for (int v = 0; v < n; ++v) {
        const int r = sets.root[v];
        glo[r] = std::max(glo[r], lo[v]);
        ghi[r] = std::min(ghi[r], hi[v]);
      }
      for (int v = 0; v < n; ++v)
        tighten(v, glo[sets.root[v]], ghi[sets.root[v]]);
    }
    bool empty = false;
    for (int v = 0; v < n; ++v) empty = empty || lo[v] > hi[v];
    if (empty) break;
    if (!changed) break;
  }
}

// Every node has a chip within its bounds, and one large enough.
absl::Status CheckNodeBounds(const Problem& problem, const Bounds& b) {
  const Graph& g = problem.graph();
  const Hardware& hw = problem.hardware();
  const int hops = problem.max_hops();
  for (int v = 0; v < g.num_nodes(); ++v) {
    if (b.lo[v] > b.hi[v]) {
      return absl::FailedPreconditionError(absl::StrCat(
          "pins, colocation groups and max_hops ", hops,
          " leave no chip for node ", Quote(g, v),
          ": its producers need it on chip ", b.lo[v],
          " or later and its consumers on chip ", b.hi[v], " or earlier"));
    }
    double best = 0;
    for (int c = b.lo[v]; c <= b.hi[v]; ++c)
      best = std::max(best, hw.chip(c).sram_bytes);
    if (Over(problem.resident_bytes(v), best)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "node ", Quote(g, v), " needs ",
          FormatBytes(problem.resident_bytes(v)),
          " of SRAM for its parameters and output, but pins and max_hops ",
          hops, " keep it on chips ", b.lo[v], "..", b.hi[v],
          ", the largest of which has ", FormatBytes(best)));
    }
  }
  return absl::OkStatus();
}

// Memory of the nodes held on a prefix or a suffix of the chips.
absl::Status CheckForcedMemory(const Problem& problem, const Bounds& b) {
  const Hardware& hw = problem.hardware();
  const int n = problem.num_nodes();
  const int chips = problem.num_chips();
  std::vector<double> by_hi(chips, 0.0), by_lo(chips, 0.0);
  for (int v = 0; v < n; ++v) {
    by_hi[b.hi[v]] += problem.resident_bytes(v);
    by_lo[b.lo[v]] += problem.resident_bytes(v);
  }
  double need = 0, have = 0;
  for (int c = 0; c + 1 < chips; ++c) {
    need += by_hi[c];
    have += hw.chip(c).sram_bytes;
    if (Over(need, have)) {
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
    if (Over(need, have)) {
      return absl::FailedPreconditionError(
          absl::StrCat("the nodes that must run on chips ", c, "..", chips - 1,
                       " (pinned there or downstream of such a pin) need ",
                       FormatBytes(need), " of SRAM, but chips ", c, "..",
                       chips - 1, " have ", FormatBytes(have), " together"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Bounds> ComputeBounds(const Problem& problem,
                                     const ColocationSets& sets,
                                     const EffectivePins& pins) {
  Bounds b;
  if (absl::Status s = InitialBounds(problem, pins, &b); !s.ok()) return s;
  TightenBounds(problem, sets, b.lo, b.hi);
  if (absl::Status s = CheckNodeBounds(problem, b); !s.ok()) return s;
  if (absl::Status s = CheckForcedMemory(problem, b); !s.ok()) return s;
  b.pin = pins.chip;
  return b;
}

absl::StatusOr<Bounds> CheckAndBound(const Problem& problem) {
  absl::StatusOr<NodesAndColocation> checked = CheckNodesAndColocation(problem);
  if (!checked.ok()) return checked.status();
  const ColocationSets& sets = checked->sets;
  const EffectivePins& pins = checked->pins;
  // Wide fan-in and long skips under a hop limit: a node's producers sit at
  // most max_hops chips before it.
  if (absl::Status s = CheckFanIn(problem); !s.ok()) return s;
  if (absl::Status s = CheckSkips(problem); !s.ok()) return s;
  if (absl::Status s = CheckReachWindows(problem); !s.ok()) return s;
  if (absl::Status s = CheckPinnedPaths(problem, pins); !s.ok()) return s;
  if (absl::Status s = CheckChipsInUse(problem, sets, pins); !s.ok()) return s;
  return ComputeBounds(problem, sets, pins);
}

}  // namespace mcmpart::repair
