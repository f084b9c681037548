#include "solver/repair/instance.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "solver/repair/checks.h"

namespace mcmpart::repair {

double PowerOfTwoUnit(double total, double limit) {
  if (!(total > 0)) return 1.0;
  int e = 0;
  std::frexp(total / limit, &e);  // total / limit = m * 2^e, m in [0.5, 1)
  double unit = std::ldexp(1.0, e);
  while (total / (unit / 2) <= limit) unit /= 2;
  while (total / unit > limit) unit *= 2;
  return unit;
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

int64_t ScaledCost(const Instance& in, const std::vector<int>& p) {
  int64_t cost = 0;
  for (int v = 0; v < in.n; ++v) {
    if (in.w[v] > 0 && p[v] != in.q[v]) cost += in.w[v];
  }
  return cost;
}

}  // namespace mcmpart::repair
