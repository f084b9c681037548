#include "solver/constructive.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "solver/evaluator.h"
#include "solver/format.h"
#include "solver/quote.h"
#include "solver/repair/bounds.h"
#include "solver/repair/checks.h"
#include "solver/splitter.h"

namespace mcmpart {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Random topological orders tried: about kRandomOrderBudget / n of them,
// within [kMinRandomOrders, kMaxRandomOrders].
constexpr int kRandomOrderBudget = 4000;
constexpr int kMinRandomOrders = 2;
constexpr int kMaxRandomOrders = 32;

uint64_t Bits(double x) {
  uint64_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}
double FromBits(uint64_t b) {
  double x;
  std::memcpy(&x, &b, sizeof x);
  return x;
}

// Topological orders to split. The graph's own order comes first (it is
// what a user reads, and what the infeasibility message refers to); the
// others place independent branches differently, which a contiguous split
// of the first order cannot express and which tight memory often needs:
// depth-first (a branch is finished before the next starts, so few tensors
// are live at a cut), breadth-first by level, and a few seeded random ones.
std::vector<std::vector<int>> CandidateOrders(const Graph& g) {
  const int n = g.num_nodes();
  std::vector<std::vector<int>> orders;
  auto add = [&orders](std::vector<int> order) {
    if (std::find(orders.begin(), orders.end(), order) == orders.end()) {
      orders.push_back(std::move(order));
    }
  };
  std::vector<int> identity(n);
  for (int v = 0; v < n; ++v) identity[v] = v;
  add(std::move(identity));

  // Kahn's algorithm; `pick` chooses the index of the next ready node among
  // ready[head..]. With `reverse`, it runs from the sinks on the reversed
  // graph and the result is reversed: the same policies then place nodes
  // as late as they can go instead of as early.
  auto kahn = [&g, n](bool reverse, auto pick) {
    std::vector<int> indegree(n), ready, order;
    order.reserve(n);
    ready.reserve(n);
    for (int v = 0; v < n; ++v) {
      indegree[v] = static_cast<int>(
          (reverse ? g.successors(v) : g.predecessors(v)).size());
      if (indegree[v] == 0) ready.push_back(v);
    }
    if (reverse) std::reverse(ready.begin(), ready.end());
    size_t head = 0;
    while (head < ready.size()) {
      const size_t i = pick(ready, head);
      const int v = ready[i];
      ready[i] = ready[head];
      ready[head++] = v;
      order.push_back(v);
      for (int w : reverse ? g.predecessors(v) : g.successors(v)) {
        if (--indegree[w] == 0) ready.push_back(w);
      }
    }
    if (reverse) std::reverse(order.begin(), order.end());
    return order;
  };
  // Depth-first: the most recently readied node next. Breadth-first: the
  // earliest readied node next.
  auto depth_first = [](const std::vector<int>& ready, size_t) {
    return ready.size() - 1;
  };
  auto breadth_first = [](const std::vector<int>&, size_t head) {
    return head;
  };
  for (bool reverse : {false, true}) {
    add(kahn(reverse, depth_first));
    add(kahn(reverse, breadth_first));
  }
  // Random orders cost one split search each; small graphs get more of
  // them, since there they are cheap and each covers more of the space.
  const int random_orders = std::clamp(kRandomOrderBudget / std::max(n, 1),
                                       kMinRandomOrders, kMaxRandomOrders);
  for (int seed = 1; seed <= random_orders; ++seed) {
    std::mt19937_64 rng(seed);
    add(kahn(seed % 2 == 0, [&rng](const std::vector<int>& ready, size_t head) {
      return head + rng() % (ready.size() - head);
    }));
  }
  return orders;
}

// The smallest t for which splitter.Feasible(t) holds, given that it holds
// for `hi` and not for 0: the exact optimum of the bottleneck over the
// contiguous splits of the splitter's order. The optimum is one of finitely
// many values (a run's compute or a link's time), so instead of bisecting
// all 64 bits of a double it bisects the values down to a relative 1e-4
// from a proved floor, then steps down through the bottlenecks of the
// splits it reconstructs (in the splitter's own arithmetic) until the next
// value below is infeasible: about 20 rounds instead of 64, which is what
// makes decoding policy samples cheap (docs/policy.md, "Decoding"). When
// the steps do not settle, it bisects the remaining bit patterns, which
// order like the values. With `tolerance` > 0 it stops at the first
// feasible t within that relative distance of an infeasible one, so within
// it of the optimum, without the steps.
absl::StatusOr<double> SmallestBottleneck(Splitter& splitter,
                                          const StopToken* stop, double hi,
                                          double tolerance) {
  auto cancelled = [stop] { return stop != nullptr && stop->stop_requested(); };
  const absl::Status kCancelled =
      absl::CancelledError("constructive placement cancelled");
  // The floor is proved for the model, the margin covers the rounding of
  // prefix sums; 0 when even that is feasible (never expected).
  double lo = splitter.ComputeFloor() * (1 - 1e-9);
  if (lo > 0 && splitter.Feasible(lo, false)) lo = 0;
  while (lo > 0 && hi > lo * (1 + std::max(1e-4, tolerance))) {
    if (cancelled()) return kCancelled;
    const double mid = lo + (hi - lo) / 2;
    if (!splitter.Feasible(mid, false)) {
      lo = mid;
      continue;
    }
    hi = mid;
    // The balanced split kept at `mid` often has a bottleneck well below
    // it; where the layers are exact that value is feasible too.
    if (splitter.exact()) {
      const double reached = splitter.SplitBottleneck(
          splitter.Reconstruct(splitter.feasible_k().back(), mid));
      if (reached <= hi && reached > lo) hi = reached;
    }
  }
  // Within the tolerance of the smallest: `hi` is feasible.
  if (lo > 0 && tolerance > 0) return hi;
  constexpr int kMaxSteps = 8;
  for (int step = 0; lo > 0 && step < kMaxSteps; ++step) {
    if (cancelled()) return kCancelled;
    // One chip count (the most) is enough to step down by.
    splitter.Feasible(hi, /*all_counts=*/true);
    const double reached = splitter.SplitBottleneck(
        splitter.Reconstruct(splitter.feasible_k().back(), hi));
    if (!(reached <= hi)) break;
    // Under 2 < max_hops < C - 1 the split kept at `hi` may be one that
    // the search at `reached` does not keep.
    if (!splitter.exact() && !splitter.Feasible(reached, false)) {
      lo = std::max(lo, reached);
      break;
    }
    const double below = std::nextafter(reached, 0.0);
    if (below <= lo || !splitter.Feasible(below, false)) return reached;
    hi = below;
  }
  uint64_t lo_bits = Bits(lo);
  uint64_t hi_bits = Bits(hi);
  while (hi_bits - lo_bits > 1) {
    if (cancelled()) return kCancelled;
    const uint64_t mid = lo_bits + (hi_bits - lo_bits) / 2;
    (splitter.Feasible(FromBits(mid), false) ? hi_bits : lo_bits) = mid;
  }
  return FromBits(hi_bits);
}

// The smallest bottleneck of any split of `splitter`'s order that is below
// `best_target`, and the best valid split reaching it (by the evaluator's
// throughput, ties to fewer chips). Leaves `*best` alone and returns false
// when no split beats `best_target`. CANCELLED when `stop` is set.
absl::StatusOr<bool> BestSplit(Splitter& splitter, Evaluator& evaluator,
                               const StopToken* stop, bool already_feasible,
                               double tolerance, double* best_target,
                               double* best_throughput, Assignment* best) {
  // Only a split that beats the best so far matters.
  if (!already_feasible && !splitter.Feasible(*best_target, false)) {
    return false;
  }
  double target = 0;
  if (!splitter.Feasible(0, false)) {
    absl::StatusOr<double> t = SmallestBottleneck(
        splitter, stop, std::min(*best_target, splitter.MaxLoad()), tolerance);
    if (!t.ok()) return t.status();
    target = *t;
  }
  splitter.Feasible(target, /*all_counts=*/true);
  // Every feasible chip count reaches the same bottleneck up to rounding;
  // the evaluator decides, ties to fewer chips (shorter latency).
  bool improved = false;
  for (int k : splitter.feasible_k()) {
    Assignment p = splitter.Reconstruct(k, target);
    if (!evaluator.IsValid(p)) continue;
    const double throughput = evaluator.Score(p).throughput_per_s;
    if (throughput > *best_throughput) {
      *best_throughput = throughput;
      *best_target = target;
      *best = std::move(p);
      improved = true;
    }
  }
  return improved;
}

}  // namespace

absl::StatusOr<Assignment> ConstructPlacement(const Problem& problem,
                                              const StopToken* stop) {
  if (problem.num_nodes() == 0) return Assignment{};
  const std::vector<std::vector<int>> orders = CandidateOrders(problem.graph());
  // Proofs that no placement at all exists, worded as the repair words them.
  if (absl::Status s = repair::CheckPinsAndMemory(problem); !s.ok()) return s;
  Splitter first(problem, orders[0]);
  const bool first_feasible = first.Feasible(kInf, /*all_counts=*/true);
  // Explain() reads the layers of the failed Feasible call above.
  const std::string why_not = first_feasible ? "" : first.Explain();

  Evaluator evaluator(problem);
  Assignment best;
  double best_throughput = -1;
  double best_target = kInf;
  for (size_t i = 0; i < orders.size(); ++i) {
    if (i == 0 && !first_feasible) continue;
    std::optional<Splitter> other;
    if (i > 0) other.emplace(problem, orders[i]);
    Splitter& splitter = i == 0 ? first : *other;
    // Ties go to earlier orders: a later one must be strictly better.
    absl::StatusOr<bool> improved =
        BestSplit(splitter, evaluator, stop, /*already_feasible=*/i == 0,
                  /*tolerance=*/0, &best_target, &best_throughput, &best);
    if (!improved.ok()) return improved.status();
  }
  if (!best.empty()) return best;
  // The heuristic is not complete: when the repair's cheap checks prove
  // that no placement exists at all, that proof is the better answer.
  if (absl::Status proof = repair::CheckAndBound(problem).status();
      absl::IsFailedPrecondition(proof)) {
    return proof;
  }
  if (!first_feasible) return absl::FailedPreconditionError(why_not);
  return absl::InternalError(
      "constructive placement: the split the search found is not valid "
      "(a bug; please report the graph and hardware)");
}

absl::StatusOr<Assignment> SplitOrder(const Problem& problem,
                                      absl::Span<const int> order,
                                      const StopToken* stop, double tolerance) {
  const int n = problem.num_nodes();
  if (!(tolerance >= 0 && tolerance < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split tolerance ", tolerance, " is not in [0, 1)"));
  }
  if (static_cast<int>(order.size()) != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("order has ", order.size(), " nodes; the graph has ", n));
  }
  std::vector<int> position(n, -1);
  for (int i = 0; i < n; ++i) {
    const int v = order[i];
    if (v < 0 || v >= n || position[v] >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("order position ", i, " holds ", v,
                       ", which is out of range or repeated"));
    }
    position[v] = i;
  }
  const Graph& g = problem.graph();
  for (int u = 0; u < n; ++u) {
    for (int v : g.successors(u)) {
      if (position[v] < position[u]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "order is not topological: ", QuoteInput(g.node_name(v)),
            " comes before ", QuoteInput(g.node_name(u)), ", which it reads"));
      }
    }
  }
  if (n == 0) return Assignment{};
  Splitter splitter(problem, std::vector<int>(order.begin(), order.end()));
  if (!splitter.Feasible(kInf, /*all_counts=*/false)) {
    return absl::NotFoundError("no valid contiguous split of the order exists");
  }
  Evaluator evaluator(problem);
  Assignment best;
  double best_throughput = -1;
  double best_target = kInf;
  absl::StatusOr<bool> improved =
      BestSplit(splitter, evaluator, stop, /*already_feasible=*/true, tolerance,
                &best_target, &best_throughput, &best);
  if (!improved.ok()) return improved.status();
  if (best.empty()) {
    return absl::InternalError(
        "split of an order: the split the search found is not valid (a bug; "
        "please report the graph and hardware)");
  }
  return best;
}

std::vector<int> OrderOfPlacement(const Graph& graph, absl::Span<const int> p) {
  // Node ids are a topological order of the graph (graph.h), so a stable
  // sort by chip keeps every chip's nodes in it; with p(u) <= p(v) on every
  // edge the result is topological too.
  std::vector<int> order(graph.num_nodes());
  for (int v = 0; v < graph.num_nodes(); ++v) order[v] = v;
  std::stable_sort(order.begin(), order.end(),
                   [&p](int a, int b) { return p[a] < p[b]; });
  return order;
}

namespace {

// Kahn's algorithm taking, among the ready nodes, the one with the smallest
// (keys[v], v).
template <typename Key>
std::vector<int> OrderByReadyKey(const Graph& graph,
                                 absl::Span<const Key> keys) {
  const int n = graph.num_nodes();
  std::vector<int> indegree(n), order;
  order.reserve(n);
  using Ready = std::pair<Key, int>;
  std::priority_queue<Ready, std::vector<Ready>, std::greater<Ready>> ready;
  for (int v = 0; v < n; ++v) {
    indegree[v] = static_cast<int>(graph.predecessors(v).size());
    if (indegree[v] == 0) ready.emplace(keys[v], v);
  }
  while (!ready.empty()) {
    const int v = ready.top().second;
    ready.pop();
    order.push_back(v);
    for (int w : graph.successors(v)) {
      if (--indegree[w] == 0) ready.emplace(keys[w], w);
    }
  }
  return order;
}

}  // namespace

std::vector<int> OrderByChips(const Graph& graph, absl::Span<const int> chips) {
  return OrderByReadyKey(graph, chips);
}

std::vector<int> OrderByKeys(const Graph& graph,
                             absl::Span<const double> keys) {
  return OrderByReadyKey(graph, keys);
}

absl::StatusOr<Assignment> Rebalance(const Problem& problem,
                                     absl::Span<const int> placement,
                                     const StopToken* stop) {
  Evaluator evaluator(problem);
  Assignment current(placement.begin(), placement.end());
  // The evaluator's checks assume chips in range.
  const bool in_range = std::all_of(
      current.begin(), current.end(),
      [&problem](int chip) { return chip >= 0 && chip < problem.num_chips(); });
  if (static_cast<int>(current.size()) != problem.num_nodes() || !in_range ||
      !evaluator.IsValid(current)) {
    return absl::InvalidArgumentError(
        "rebalance needs a valid placement of every node");
  }
  absl::StatusOr<Assignment> split =
      SplitOrder(problem, OrderOfPlacement(problem.graph(), current), stop);
  // The placement itself is a split of its own order when every edge stays
  // within one hop; with longer hops the split can be worse or impossible.
  if (absl::IsCancelled(split.status())) return split.status();
  if (!split.ok()) return current;
  // Score returns a reference to the evaluator's own figures: read one
  // before computing the other.
  const double split_throughput = evaluator.Score(*split).throughput_per_s;
  if (split_throughput > evaluator.Score(current).throughput_per_s) {
    return *std::move(split);
  }
  return current;
}

absl::StatusOr<StrategyResult> Constructive::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  const absl::Time start = absl::Now();
  StrategyResult result;
  absl::StatusOr<Assignment> placement = ConstructPlacement(problem, &stop);
  if (absl::IsCancelled(placement.status())) {
    result.reason = EndReason::kCancelled;
    result.elapsed = absl::Now() - start;
    return result;
  }
  if (!placement.ok()) return placement.status();
  Evaluator evaluator(problem);
  const Figures& figures = evaluator.Score(*placement);
  result.best = *std::move(placement);
  result.throughput_per_s = figures.throughput_per_s;
  result.quality = figures.quality;
  result.samples = 1;
  result.reason = EndReason::kConverged;
  result.elapsed = absl::Now() - start;
  if (on_improvement) {
    on_improvement(
        Improvement{result.best, figures, result.samples, result.elapsed});
  }
  return result;
}

}  // namespace mcmpart
