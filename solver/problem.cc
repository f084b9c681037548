#include "solver/problem.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "solver/quote.h"

namespace mcmpart {

namespace {

// The chip each node is pinned to, or -1: constraints.pins by node id.
absl::StatusOr<std::vector<int>> ResolvePins(const Graph& g,
                                             const v1::Constraints& constraints,
                                             int chips) {
  std::vector<int> pin(g.num_nodes(), -1);
  for (const auto& [name, chip] : constraints.pins()) {
    std::optional<int> v = g.FindNode(name);
    if (!v) {
      return absl::InvalidArgumentError(
          absl::StrCat("constraints.pins: unknown node ", QuoteInput(name)));
    }
    if (chip < 0 || chip >= chips) {
      return absl::InvalidArgumentError(absl::StrCat(
          "constraints.pins: node ", QuoteInput(name), " is pinned to chip ",
          chip, " but the hardware has chips 0..", chips - 1));
    }
    pin[*v] = chip;
  }
  return pin;
}

// constraints.colocation_groups as sorted node ids without repeats. A group
// left with fewer than two distinct nodes constrains nothing and is dropped,
// so that every consumer may assume two or more.
absl::StatusOr<std::vector<std::vector<int>>> ResolveColocation(
    const Graph& g, const v1::Constraints& constraints) {
  std::vector<std::vector<int>> groups;
  for (int i = 0; i < constraints.colocation_groups_size(); ++i) {
    std::vector<int> group;
    for (const std::string& name : constraints.colocation_groups(i).nodes()) {
      std::optional<int> v = g.FindNode(name);
      if (!v) {
        return absl::InvalidArgumentError(
            absl::StrCat("constraints.colocation_groups[", i,
                         "]: unknown node ", QuoteInput(name)));
      }
      group.push_back(*v);
    }
    std::sort(group.begin(), group.end());
    group.erase(std::unique(group.begin(), group.end()), group.end());
    if (group.size() >= 2) groups.push_back(std::move(group));
  }
  return groups;
}

}  // namespace

double Problem::touched_bytes(int v) const {
  return graph_->param_bytes(v) + graph_->output_bytes(v) +
         graph_->input_bytes(v);
}

absl::StatusOr<Problem> Problem::Create(std::shared_ptr<const Graph> graph,
                                        const v1::Hardware& hardware,
                                        const v1::Constraints& constraints) {
  if (graph == nullptr) return absl::InvalidArgumentError("no graph");
  absl::StatusOr<Hardware> hw = Hardware::FromProto(hardware);
  if (!hw.ok()) return hw.status();

  Problem p;
  p.graph_ = std::move(graph);
  p.hardware_ = *std::move(hw);
  const Graph& g = *p.graph_;
  const int n = g.num_nodes();
  const int c = p.hardware_.num_chips();

  if (constraints.has_max_hops()) {
    if (constraints.max_hops() < 1) {
      return absl::InvalidArgumentError(absl::StrCat("constraints.max_hops is ",
                                                     constraints.max_hops(),
                                                     "; must be >= 1"));
    }
    p.max_hops_ = constraints.max_hops();
  }
  p.use_all_chips_ = constraints.use_all_chips();
  if (p.use_all_chips_ && n < c) {
    // A well-formed request for an instance without any valid placement,
    // like the solver's own infeasibility findings.
    return absl::FailedPreconditionError(absl::StrCat(
        "constraints.use_all_chips needs a node on each of the ", c,
        " chips, but the graph has only ", n, n == 1 ? " node" : " nodes"));
  }

  absl::StatusOr<std::vector<int>> pins = ResolvePins(g, constraints, c);
  if (!pins.ok()) return pins.status();
  p.pin_ = *std::move(pins);
  absl::StatusOr<std::vector<std::vector<int>>> groups =
      ResolveColocation(g, constraints);
  if (!groups.ok()) return groups.status();
  p.colocation_ = *std::move(groups);

  // Per-node times, once per chip (once in all when the chips are the
  // same), and the upper bound from each node's fastest time.
  p.time_stride_ = p.hardware_.identical_chips() ? 1 : c;
  p.time_.resize(static_cast<size_t>(n) * p.time_stride_);
  double sum_fastest = 0;
  double max_fastest = 0;
  for (int v = 0; v < n; ++v) {
    double fastest = std::numeric_limits<double>::infinity();
    for (int chip = 0; chip < p.time_stride_; ++chip) {
      const ChipSpec& spec = p.hardware_.chip(chip);
      double t = g.time_s(v) > 0
                     ? g.time_s(v)
                     : std::max(g.flops(v) / spec.peak_flops,
                                p.touched_bytes(v) / spec.mem_bandwidth);
      p.time_[static_cast<size_t>(v) * p.time_stride_ + chip] = t;
      fastest = std::min(fastest, t);
    }
    sum_fastest += fastest;
    max_fastest = std::max(max_fastest, fastest);
  }
  const double bound_s = std::max(sum_fastest / c, max_fastest);
  p.upper_bound_per_s_ =
      bound_s > 0 ? 1.0 / bound_s : std::numeric_limits<double>::infinity();
  return p;
}

}  // namespace mcmpart
