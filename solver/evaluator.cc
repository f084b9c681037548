#include "solver/evaluator.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "solver/bound.h"
#include "solver/format.h"
#include "solver/quote.h"

namespace mcmpart {
namespace {

bool OverMemory(double used, double sram) { return used > MemoryLimit(sram); }

// Appends one Violation naming `nodes` (by name) and `chip_ids`.
void AddViolation(std::vector<v1::Violation>& out, absl::string_view constraint,
                  std::string message, std::initializer_list<int> nodes,
                  std::initializer_list<int> chip_ids, const Graph& graph) {
  v1::Violation& v = out.emplace_back();
  v.set_constraint(std::string(constraint));
  v.set_message(std::move(message));
  for (int node : nodes) v.add_nodes(graph.node_name(node));
  for (int c : chip_ids) v.add_chips(c);
}

// Each check below reports one constraint of docs/problem.md ("Hard
// constraints"), one Violation per offending edge, chip, pin or group;
// Violations calls them in the documented order.

// "acyclic": an edge whose consumer sits on an earlier chip.
void AcyclicViolations(const Problem& problem, absl::Span<const int> p,
                       std::vector<v1::Violation>& out) {
  const Graph& g = problem.graph();
  for (int u = 0; u < g.num_nodes(); ++u) {
    for (int v : g.successors(u)) {
      if (p[v] < p[u]) {
        AddViolation(out, "acyclic",
                     absl::StrCat("edge ", QuoteInput(g.node_name(u)), " -> ",
                                  QuoteInput(g.node_name(v)),
                                  " flows backwards from chip ", p[u],
                                  " to chip ", p[v]),
                     {u, v}, {p[u], p[v]}, g);
      }
    }
  }
}

// "max_hops": an edge that spans more links than the problem allows.
void HopViolations(const Problem& problem, absl::Span<const int> p,
                   std::vector<v1::Violation>& out) {
  const Graph& g = problem.graph();
  for (int u = 0; u < g.num_nodes(); ++u) {
    for (int v : g.successors(u)) {
      if (p[v] - p[u] > problem.max_hops()) {
        AddViolation(
            out, "max_hops",
            absl::StrCat("edge ", QuoteInput(g.node_name(u)), " -> ",
                         QuoteInput(g.node_name(v)), " spans ", p[v] - p[u],
                         " hops (chip ", p[u], " to chip ", p[v],
                         "); max_hops is ", problem.max_hops()),
            {u, v}, {p[u], p[v]}, g);
      }
    }
  }
}

// "no_skipping": an empty chip below the last one in use (or, with
// use_all_chips, any empty chip). `used[c]` says whether chip c holds a node.
void SkipViolations(const Problem& problem, absl::Span<const char> used,
                    std::vector<v1::Violation>& out) {
  const Graph& g = problem.graph();
  const int chips = problem.num_chips();
  int last_used = -1;
  for (int c = 0; c < chips; ++c) {
    if (used[c]) last_used = c;
  }
  const int must_use = problem.use_all_chips() ? chips - 1 : last_used;
  for (int c = 0; c < must_use; ++c) {
    if (used[c]) continue;
    AddViolation(
        out, "no_skipping",
        problem.use_all_chips() && c > last_used
            ? absl::StrCat("chip ", c,
                           " is empty but use_all_chips requires all ", chips,
                           " chips")
            : absl::StrCat("chip ", c, " is empty but chip ", last_used,
                           " is used; the chips in use must be 0..k-1"),
        {}, {c}, g);
  }
  if (problem.use_all_chips() && !used[chips - 1]) {
    AddViolation(out, "no_skipping",
                 absl::StrCat("chip ", chips - 1,
                              " is empty but use_all_chips requires all ",
                              chips, " chips"),
                 {}, {chips - 1}, g);
  }
}

// "memory": a chip whose bytes (with transit buffers) exceed its SRAM.
void MemoryViolations(const Problem& problem,
                      absl::Span<const double> memory_bytes,
                      std::vector<v1::Violation>& out) {
  for (int c = 0; c < problem.num_chips(); ++c) {
    const double sram = problem.hardware().chip(c).sram_bytes;
    if (OverMemory(memory_bytes[c], sram)) {
      AddViolation(
          out, "memory",
          absl::StrCat("chip ", c, " needs ", FormatBytes(memory_bytes[c]),
                       " but has ", FormatBytes(sram), " of SRAM"),
          {}, {c}, problem.graph());
    }
  }
}

// "pin": a pinned node placed elsewhere.
void PinViolations(const Problem& problem, absl::Span<const int> p,
                   std::vector<v1::Violation>& out) {
  const Graph& g = problem.graph();
  for (int v = 0; v < g.num_nodes(); ++v) {
    const int pin = problem.pin(v);
    if (pin >= 0 && p[v] != pin) {
      AddViolation(out, "pin",
                   absl::StrCat("node ", QuoteInput(g.node_name(v)),
                                " is pinned to chip ", pin,
                                " but placed on chip ", p[v]),
                   {v}, {pin, p[v]}, g);
    }
  }
}

// "colocation": a group split over chips; the Violation names every member
// with its chip, so the user sees where the group went.
void ColocationViolations(const Problem& problem, absl::Span<const int> p,
                          std::vector<v1::Violation>& out) {
  const Graph& g = problem.graph();
  const auto& groups = problem.colocation_groups();
  for (size_t i = 0; i < groups.size(); ++i) {
    const std::vector<int>& group = groups[i];
    bool split = false;
    for (int v : group) split = split || p[v] != p[group[0]];
    if (!split) continue;
    v1::Violation& viol = out.emplace_back();
    viol.set_constraint("colocation");
    std::string members;
    for (int v : group) {
      absl::StrAppend(&members, members.empty() ? "" : ", ",
                      QuoteInput(g.node_name(v)), " (chip ", p[v], ")");
      viol.add_nodes(g.node_name(v));
      viol.add_chips(p[v]);
    }
    viol.set_message(absl::StrCat("colocation group ", i,
                                  " spans several chips: ", members));
  }
}

}  // namespace

Evaluator::Evaluator(const Problem& problem) : problem_(problem) {
  const int c = problem.num_chips();
  figures_.compute_s.resize(c);
  figures_.comm_s.resize(std::max(c - 1, 0));
  figures_.memory_bytes.resize(c);
  figures_.link_bytes.resize(std::max(c - 1, 0));
  figures_.link_tensors.resize(std::max(c - 1, 0));
  used_.resize(c);
}

void Evaluator::ComputeMemory(absl::Span<const int> p) {
  const Graph& g = problem_.graph();
  const int n = g.num_nodes();
  std::fill(figures_.memory_bytes.begin(), figures_.memory_bytes.end(), 0.0);
  std::fill(used_.begin(), used_.end(), 0);
  double* mem = figures_.memory_bytes.data();
  for (int u = 0; u < n; ++u) {
    const int c = p[u];
    assert(c >= 0 && c < problem_.num_chips());
    used_[c] = 1;
    mem[c] += problem_.resident_bytes(u);
    int last = c;
    for (int v : g.successors(u)) last = std::max(last, p[v]);
    // u's output waits in every chip after its own up to its last reader.
    const double out = g.output_bytes(u);
    for (int k = c + 1; k <= last; ++k) mem[k] += out;
  }
  figures_.chips_used = 0;
  for (char u : used_) figures_.chips_used += u;
}

const Figures& Evaluator::Score(absl::Span<const int> p) {
  const Graph& g = problem_.graph();
  const Hardware& hw = problem_.hardware();
  const int n = g.num_nodes();
  const int chips = problem_.num_chips();
  assert(static_cast<int>(p.size()) == n);

  ComputeMemory(p);
  std::fill(figures_.compute_s.begin(), figures_.compute_s.end(), 0.0);
  std::fill(figures_.comm_s.begin(), figures_.comm_s.end(), 0.0);
  std::fill(figures_.link_bytes.begin(), figures_.link_bytes.end(), 0.0);
  std::fill(figures_.link_tensors.begin(), figures_.link_tensors.end(), 0);
  double* compute = figures_.compute_s.data();
  double* comm = figures_.comm_s.data();
  double* link_bytes = figures_.link_bytes.data();
  int* link_tensors = figures_.link_tensors.data();
  for (int u = 0; u < n; ++u) {
    const int c = p[u];
    compute[c] += problem_.time(u, c);
    int last = c;
    for (int v : g.successors(u)) last = std::max(last, p[v]);
    // Sent once over each link from its chip to its last reader's.
    const double out = g.output_bytes(u);
    for (int k = c; k < last; ++k) {
      comm[k] += out / hw.link(k).bandwidth + hw.link(k).latency_s;
      link_bytes[k] += out;
      ++link_tensors[k];
    }
  }

  Figures& f = figures_;
  f.bottleneck_s = 0;
  f.latency_s = 0;
  f.bottleneck_chip = 0;
  f.bottleneck_link = -1;
  for (int c = 0; c < chips; ++c) {
    f.latency_s += compute[c];
    if (compute[c] > f.bottleneck_s) {
      f.bottleneck_s = compute[c];
      f.bottleneck_chip = c;
    }
  }
  for (int k = 0; k + 1 < chips; ++k) {
    f.latency_s += comm[k];
    if (comm[k] > f.bottleneck_s) {
      f.bottleneck_s = comm[k];
      f.bottleneck_chip = -1;
      f.bottleneck_link = k;
    }
  }
  // A graph of zero-cost nodes has no bottleneck: it runs at any rate.
  f.throughput_per_s = f.bottleneck_s > 0
                           ? 1.0 / f.bottleneck_s
                           : std::numeric_limits<double>::infinity();
  const double bound = problem_.upper_bound_per_s();
  f.quality = std::isinf(bound) ? 1.0 : f.throughput_per_s / bound;
  return f;
}

bool Evaluator::IsValid(absl::Span<const int> p) {
  const Graph& g = problem_.graph();
  const int n = g.num_nodes();
  const int hops = problem_.max_hops();
  for (int u = 0; u < n; ++u) {
    const int pu = p[u];
    const int pin = problem_.pin(u);
    if (pin >= 0 && pin != pu) return false;
    for (int v : g.successors(u)) {
      const int d = p[v] - pu;
      if (d < 0 || d > hops) return false;
    }
  }
  for (const std::vector<int>& group : problem_.colocation_groups()) {
    for (int v : group) {
      if (p[v] != p[group[0]]) return false;
    }
  }
  ComputeMemory(p);
  const int chips = problem_.num_chips();
  const int k = figures_.chips_used;
  if (problem_.use_all_chips() && k != chips) return false;
  for (int c = 0; c < chips; ++c) {
    // Chips in use must be exactly 0..k-1.
    if (used_[c] != (c < k)) return false;
    if (OverMemory(figures_.memory_bytes[c],
                   problem_.hardware().chip(c).sram_bytes)) {
      return false;
    }
  }
  return true;
}

std::vector<v1::Violation> Evaluator::Violations(absl::Span<const int> p) {
  std::vector<v1::Violation> out;
  AcyclicViolations(problem_, p, out);
  HopViolations(problem_, p, out);
  // The chip checks read which chips are used and what each holds.
  ComputeMemory(p);
  SkipViolations(problem_, used_, out);
  MemoryViolations(problem_, figures_.memory_bytes, out);
  PinViolations(problem_, p, out);
  ColocationViolations(problem_, p, out);
  return out;
}

v1::Evaluation Evaluator::Evaluate(absl::Span<const int> p) {
  v1::Evaluation e;
  for (v1::Violation& v : Violations(p)) *e.add_violations() = std::move(v);
  e.set_valid(e.violations_size() == 0);
  const Figures& f = Score(p);
  e.set_throughput_per_s(f.throughput_per_s);
  e.set_bottleneck_s(f.bottleneck_s);
  e.set_latency_s(f.latency_s);
  e.set_upper_bound_per_s(problem_.upper_bound_per_s());
  e.set_quality(f.quality);
  for (double x : f.compute_s) e.add_compute_s(x);
  for (double x : f.comm_s) e.add_comm_s(x);
  for (double x : f.memory_bytes) e.add_memory_bytes(x);
  for (double x : f.link_bytes) e.add_link_bytes(x);
  for (int x : f.link_tensors) e.add_link_tensors(x);
  e.set_chips_used(f.chips_used);
  e.set_bottleneck(f.bottleneck_link >= 0
                       ? absl::StrCat("link ", f.bottleneck_link)
                       : absl::StrCat("chip ", f.bottleneck_chip));
  e.set_bound_per_s(problem_.upper_bound_per_s());
  e.set_bound_source("compute");
  TightenBound(/*bound_s=*/0, &e);
  return e;
}

}  // namespace mcmpart
