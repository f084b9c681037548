#include "policy/features.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace mcmpart::policy {
namespace {

// Division that yields 0 instead of inf/NaN for a zero or non-finite
// denominator: degenerate graphs (all-zero figures) must still give finite
// inputs.
double SafeDiv(double a, double b) {
  if (!(b > 0) || !std::isfinite(b) || !std::isfinite(a)) return 0;
  return a / b;
}

float Finite(double x, double cap = 1e6) {
  if (!std::isfinite(x)) return 0.0f;
  return static_cast<float>(std::clamp(x, -cap, cap));
}

// Per-node time and the graph's totals, which the node features are
// shares of.
struct Totals {
  // Time averaged over the chips: on identical chips it is the spec's
  // time(v); on mixed chips a placement-independent estimate.
  std::vector<double> time;
  double total_time = 0, total_resident = 0, total_output = 0;
};

Totals SumTotals(const Problem& problem) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int c = problem.num_chips();
  Totals t;
  t.time.assign(n, 0.0);
  for (int v = 0; v < n; ++v) {
    double sum = 0;
    const int stride = problem.hardware().identical_chips() ? 1 : c;
    for (int k = 0; k < stride; ++k) sum += problem.time(v, k);
    t.time[v] = sum / stride;
    t.total_time += t.time[v];
    t.total_resident += problem.resident_bytes(v);
    t.total_output += g.output_bytes(v);
  }
  return t;
}

// The yardsticks magnitudes are taken relative to: one chip's fair share of
// the time, chip 0's SRAM and link 0 (0 without links), so that a graph
// the policy never saw still gets inputs on the scale it was trained on.
struct Scales {
  double ideal_chip_time = 0;  // total time / C
  double sram0 = 0;
  double link_bw = 0;
  double link_latency = 0;
};

Scales ScalesOf(const Problem& problem, const Totals& totals) {
  const Hardware& hw = problem.hardware();
  Scales s;
  s.ideal_chip_time = totals.total_time / problem.num_chips();
  s.sram0 = hw.chip(0).sram_bytes;
  s.link_bw = hw.num_links() > 0 ? hw.link(0).bandwidth : 0;
  s.link_latency = hw.num_links() > 0 ? hw.link(0).latency_s : 0;
  return s;
}

// Bytes (and tensor count) crossing a cut between topological positions i
// and i + 1: tensor u is live across cuts u .. last(u) - 1. Difference
// arrays, summed up as the node loop goes, keep this O(V + E).
struct TensorSpans {
  std::vector<double> cut_bytes_diff, cut_count_diff;
  std::vector<int> last;  // u's last reader, or u itself
};

TensorSpans SpansOf(const Graph& g) {
  const int n = g.num_nodes();
  TensorSpans t;
  t.cut_bytes_diff.assign(n + 1, 0.0);
  t.cut_count_diff.assign(n + 1, 0.0);
  t.last.resize(n);
  for (int u = 0; u < n; ++u) {
    auto succ = g.successors(u);
    t.last[u] = succ.empty() ? u : succ.back();  // ascending
    if (t.last[u] > u) {
      t.cut_bytes_diff[u] += g.output_bytes(u);
      t.cut_bytes_diff[t.last[u]] -= g.output_bytes(u);
      t.cut_count_diff[u] += 1;
      t.cut_count_diff[t.last[u]] -= 1;
    }
  }
  return t;
}

// The NodeFeature rows, the op ids and the edge list, in node order (the
// cumulative features and the cut figures are running sums).
void FillNodeFeatures(const Problem& problem, const Totals& totals,
                      const Scales& scales, const TensorSpans& spans,
                      int op_vocabulary, GraphFeatures& f) {
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int c = problem.num_chips();
  const std::vector<double>& time = totals.time;
  const double total_time = totals.total_time;
  const double total_resident = totals.total_resident;
  const double ideal_chip_time = scales.ideal_chip_time;
  const double link_bw = scales.link_bw;
  const double link_latency = scales.link_latency;
  const std::vector<int>& last = spans.last;
  // Time before each node, for the balanced chip of a tensor's last reader.
  std::vector<double> before(n + 1, 0.0);
  for (int v = 0; v < n; ++v) before[v + 1] = before[v] + time[v];
  const int hops = std::max(1, problem.max_hops());
  const double window_sram =
      std::min(c, hops + 1) * static_cast<double>(scales.sram0);
  auto balanced = [&](int v) {
    return c * SafeDiv(before[v] + 0.5 * time[v], total_time);
  };
  double cum_time = 0, cum_mem = 0, cut_bytes = 0, cut_count = 0;
  for (int v = 0; v < n; ++v) {
    float* row = &f.node[static_cast<size_t>(v) * kNumNodeFeatures];
    const double resident = problem.resident_bytes(v);
    row[kLogFlops] = Finite(std::log1p(g.flops(v)) / 30);
    row[kLogParamBytes] = Finite(std::log1p(g.param_bytes(v)) / 30);
    row[kLogOutputBytes] = Finite(std::log1p(g.output_bytes(v)) / 30);
    row[kLogInputBytes] = Finite(std::log1p(g.input_bytes(v)) / 30);
    row[kTimeShare] = Finite(std::log1p(SafeDiv(time[v], ideal_chip_time)));
    row[kMemShareOfChip] = Finite(std::log1p(SafeDiv(resident, scales.sram0)));
    row[kMemShareOfTotal] =
        Finite(std::log1p(SafeDiv(resident * c, total_resident)));
    row[kCumTimeBefore] = Finite(SafeDiv(cum_time, total_time));
    row[kCumTimeAfter] = Finite(SafeDiv(cum_time + time[v], total_time));
    row[kCumMemBefore] = Finite(SafeDiv(cum_mem, total_resident));
    row[kTopoPosition] = n > 1 ? Finite(double(v) / (n - 1)) : 0.0f;
    row[kLogInDegree] = Finite(std::log1p(g.predecessors(v).size()) / 3);
    row[kLogOutDegree] = Finite(std::log1p(g.successors(v).size()) / 3);
    row[kBalancedChip] =
        Finite(c * SafeDiv(cum_time + 0.5 * time[v], total_time) / 16);
    row[kSpan] = Finite(double(last[v] - v) / n);
    cut_bytes += spans.cut_bytes_diff[v];
    cut_count += spans.cut_count_diff[v];
    const double cut_time =
        SafeDiv(cut_bytes, link_bw) + cut_count * link_latency;
    row[kCutCost] = Finite(std::log1p(SafeDiv(cut_time, ideal_chip_time)));
    const double out_time =
        last[v] > v ? SafeDiv(g.output_bytes(v), link_bw) + link_latency : 0;
    row[kOutCommCost] = Finite(std::log1p(SafeDiv(out_time, ideal_chip_time)));
    const int pin = problem.pin(v);
    row[kPinned] = pin >= 0 ? 1.0f : 0.0f;
    row[kPinChip] = pin >= 0 ? Finite(double(pin) / c) : 0.0f;
    row[kHopSpan] =
        Finite(std::min(4.0, (balanced(last[v]) - balanced(v)) / hops) / 4);
    double fan_in = resident;
    for (int u : g.predecessors(v)) fan_in += problem.resident_bytes(u);
    row[kFanInWindow] = Finite(std::log1p(SafeDiv(fan_in, window_sram)));
    cum_time += time[v];
    cum_mem += resident;

    f.op_id[v] = HashOp(g.op(v), op_vocabulary);
    for (int s : g.successors(v)) {
      f.edge_src.push_back(v);
      f.edge_dst.push_back(s);
    }
  }
}

// The HardwareFeature values, broadcast to every node by the model.
void FillHardwareFeatures(const Problem& problem, const Totals& totals,
                          const Scales& scales, GraphFeatures& f) {
  const int c = problem.num_chips();
  const double sram0 = scales.sram0;
  const double total_resident = totals.total_resident;
  f.hardware[kChipCount] = Finite(c / 32.0);
  f.hardware[kLogChipCount] = Finite(std::log2(double(c)) / 5);
  f.hardware[kSramOverGraph] =
      Finite(std::log1p(SafeDiv(c * sram0, total_resident)), 20);
  f.hardware[kMemoryPressure] =
      Finite(std::min(4.0, SafeDiv(total_resident, c * sram0)));
  f.hardware[kLinkSpeed] =
      Finite(std::log1p(SafeDiv(SafeDiv(totals.total_output, scales.link_bw),
                                totals.total_time)),
             20);
  f.hardware[kMaxHops] = Finite(std::min(problem.max_hops(), 8) / 8.0);
  f.hardware[kUseAllChips] = problem.use_all_chips() ? 1.0f : 0.0f;
  f.hardware[kLogNodes] = Finite(std::log1p(double(problem.num_nodes())) / 10);
  f.hardware[kHopsOfChips] =
      c > 1 ? Finite(double(std::min(problem.max_hops(), c - 1)) / (c - 1))
            : 1.0f;
}

}  // namespace

int64_t HashOp(absl::string_view op, int vocabulary) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : op) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h % static_cast<uint64_t>(vocabulary));
}

absl::StatusOr<GraphFeatures> ExtractFeatures(const Problem& problem,
                                              int op_vocabulary) {
  if (op_vocabulary <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("op_vocabulary is ", op_vocabulary, "; must be > 0"));
  }
  const Graph& g = problem.graph();
  const int n = g.num_nodes();
  const int c = problem.num_chips();

  GraphFeatures f;
  f.num_nodes = n;
  f.num_chips = c;
  f.node.assign(static_cast<size_t>(n) * kNumNodeFeatures, 0.0f);
  f.hardware.assign(kNumHardwareFeatures, 0.0f);
  f.op_id.resize(n);
  f.edge_src.reserve(g.num_edges());
  f.edge_dst.reserve(g.num_edges());

  const Totals totals = SumTotals(problem);
  const Scales scales = ScalesOf(problem, totals);
  const TensorSpans spans = SpansOf(g);
  FillNodeFeatures(problem, totals, scales, spans, op_vocabulary, f);
  FillHardwareFeatures(problem, totals, scales, f);
  return f;
}

}  // namespace mcmpart::policy
