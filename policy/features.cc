#include "policy/features.h"

#include <algorithm>
#include <cmath>

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
  const Hardware& hw = problem.hardware();
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

  // Time averaged over the chips: on identical chips it is the spec's
  // time(v); on mixed chips a placement-independent estimate.
  std::vector<double> time(n, 0.0);
  double total_time = 0, total_resident = 0, total_output = 0;
  for (int v = 0; v < n; ++v) {
    double t = 0;
    const int stride = hw.identical_chips() ? 1 : c;
    for (int k = 0; k < stride; ++k) t += problem.time(v, k);
    time[v] = t / stride;
    total_time += time[v];
    total_resident += problem.resident_bytes(v);
    total_output += g.output_bytes(v);
  }
  const double ideal_chip_time = total_time / c;
  const double sram0 = hw.chip(0).sram_bytes;
  const double link_bw = hw.num_links() > 0 ? hw.link(0).bandwidth : 0;
  const double link_latency = hw.num_links() > 0 ? hw.link(0).latency_s : 0;

  // Bytes (and tensor count) crossing a cut between topological positions i
  // and i + 1: tensor u is live across cuts u .. last(u) - 1. A difference
  // array keeps this O(V + E).
  std::vector<double> cut_bytes_diff(n + 1, 0.0), cut_count_diff(n + 1, 0.0);
  std::vector<int> last(n);
  for (int u = 0; u < n; ++u) {
    auto succ = g.successors(u);
    last[u] = succ.empty() ? u : succ.back();  // ascending
    if (last[u] > u) {
      cut_bytes_diff[u] += g.output_bytes(u);
      cut_bytes_diff[last[u]] -= g.output_bytes(u);
      cut_count_diff[u] += 1;
      cut_count_diff[last[u]] -= 1;
    }
  }

  double cum_time = 0, cum_mem = 0, cut_bytes = 0, cut_count = 0;
  for (int v = 0; v < n; ++v) {
    float* row = &f.node[static_cast<size_t>(v) * kNumNodeFeatures];
    const double resident = problem.resident_bytes(v);
    row[kLogFlops] = Finite(std::log1p(g.flops(v)) / 30);
    row[kLogParamBytes] = Finite(std::log1p(g.param_bytes(v)) / 30);
    row[kLogOutputBytes] = Finite(std::log1p(g.output_bytes(v)) / 30);
    row[kLogInputBytes] = Finite(std::log1p(g.input_bytes(v)) / 30);
    row[kTimeShare] = Finite(std::log1p(SafeDiv(time[v], ideal_chip_time)));
    row[kMemShareOfChip] = Finite(std::log1p(SafeDiv(resident, sram0)));
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
    cut_bytes += cut_bytes_diff[v];
    cut_count += cut_count_diff[v];
    const double cut_time =
        SafeDiv(cut_bytes, link_bw) + cut_count * link_latency;
    row[kCutCost] = Finite(std::log1p(SafeDiv(cut_time, ideal_chip_time)));
    const double out_time =
        last[v] > v ? SafeDiv(g.output_bytes(v), link_bw) + link_latency : 0;
    row[kOutCommCost] = Finite(std::log1p(SafeDiv(out_time, ideal_chip_time)));
    const int pin = problem.pin(v);
    row[kPinned] = pin >= 0 ? 1.0f : 0.0f;
    row[kPinChip] = pin >= 0 ? Finite(double(pin) / c) : 0.0f;
    cum_time += time[v];
    cum_mem += resident;

    f.op_id[v] = HashOp(g.op(v), op_vocabulary);
    for (int s : g.successors(v)) {
      f.edge_src.push_back(v);
      f.edge_dst.push_back(s);
    }
  }

  f.hardware[kChipCount] = Finite(c / 32.0);
  f.hardware[kLogChipCount] = Finite(std::log2(double(c)) / 5);
  f.hardware[kSramOverGraph] =
      Finite(std::log1p(SafeDiv(c * sram0, total_resident)), 20);
  f.hardware[kMemoryPressure] =
      Finite(std::min(4.0, SafeDiv(total_resident, c * sram0)));
  f.hardware[kLinkSpeed] = Finite(
      std::log1p(SafeDiv(SafeDiv(total_output, link_bw), total_time)), 20);
  f.hardware[kMaxHops] = Finite(std::min(problem.max_hops(), 8) / 8.0);
  f.hardware[kUseAllChips] = problem.use_all_chips() ? 1.0f : 0.0f;
  f.hardware[kLogNodes] = Finite(std::log1p(double(n)) / 10);
  return f;
}

}  // namespace mcmpart::policy
