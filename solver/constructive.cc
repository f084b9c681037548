#include "solver/constructive.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "solver/evaluator.h"
#include "solver/format.h"
#include "solver/quote.h"
#include "solver/repair/checks.h"
#include "solver/split_cuts.h"

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

// Contiguous splits of the topological order. A split is cut positions
// 0 = s_0 < s_1 < ... < s_k = n; chip c runs nodes [s_c, s_{c+1}). Every
// figure of the cost model is then a function of one or two cuts:
//   compute(c) = sum of time(v, c) over [s_c, s_{c+1})
//   memory(c)  = live_bytes(s_c) + resident bytes of [s_c, s_{c+1})
//   comm(c)    = live_bytes(s_{c+1}) / bw(c) + live_count(s_{c+1}) * lat(c)
// where live(s) are the tensors produced before s and read at or after s.
// One hop per edge holds when s_{c+1} > max_reach(s_c), the last reader of
// anything before s_c. Pins bound s_c and s_{c+1}; colocation groups forbid
// cuts inside them. So the reachable cuts after c chips depend only on the
// reachable cuts after c - 1 chips: a layered reachability, one layer per
// chip.
class Splitter {
 public:
  // `order` is a topological order of the nodes; runs are contiguous in
  // it. Everything below is indexed by position in `order`.
  Splitter(const Problem& problem, std::vector<int> order)
      : problem_(problem),
        graph_(problem.graph()),
        n_(problem.num_nodes()),
        chips_(problem.num_chips()),
        order_(std::move(order)),
        cuts_(problem, order_, Pins(problem)) {
    const int n = n_;
    live_count_ = cuts_.InTransit<int>([](int) { return 1; });
    live_bytes_ = cuts_.InTransit<double>(
        [this](int i) { return graph_.output_bytes(order_[i]); });
    // Sums of doubles, exact for whole byte counts (what the importer
    // produces); a cut with nothing in transit holds exactly 0.
    for (int s = 0; s <= n; ++s) {
      if (live_count_[s] == 0) live_bytes_[s] = 0.0;
    }
    prefix_resident_.assign(n + 1, 0.0);
    for (int i = 0; i < n; ++i) {
      prefix_resident_[i + 1] =
          prefix_resident_[i] + problem.resident_bytes(order_[i]);
    }
    PrepareChipKinds();
  }

  // Whether some chip count admits a split with bottleneck <= t. With
  // `keep_layers` every layer is kept for Reconstruct and all chip counts
  // are explored; without, two layers are kept and it stops at the first.
  bool Feasible(double t, bool keep_layers) {
    const int n = n_;
    const size_t width = static_cast<size_t>(n) + 1;
    layers_.assign(keep_layers ? (chips_ + 1) * width : 2 * width, 0);
    diff_.assign(n + 2, 0);
    feasible_k_.clear();
    auto layer = [&](int c) -> uint8_t* {
      return layers_.data() + (keep_layers ? c : c % 2) * width;
    };
    layer(0)[0] = 1;
    for (int c = 0; c < chips_; ++c) {
      const uint8_t* cur = layer(c);
      uint8_t* next = layer(c + 1);
      std::fill(next, next + width, 0);
      std::fill(diff_.begin(), diff_.end(), 0);
      const std::vector<double>& pt = prefix_time_[kind_of_chip_[c]];
      const std::vector<int>& hi_mem = hi_mem_[kind_of_chip_[c]];
      bool any = false;
      int j = 0;  // largest end with compute <= t; grows with s
      for (int s = 0; s < n; ++s) {
        if (!cur[s]) continue;
        const int lo = Lo(c, s);
        if (lo > n) continue;
        j = std::max(j, s);
        while (j < n && pt[j + 1] - pt[s] <= t) ++j;
        const int hi = std::min({j, hi_mem[s], cuts_.pinned_after(c)});
        if (lo > hi) continue;
        ++diff_[lo];
        --diff_[hi + 1];
        any = true;
      }
      if (!any) break;
      int run = 0;
      bool reached = false;
      // After the last chip only the end of the graph is of use (and there
      // is no link to cross).
      const bool last_chip = c + 1 == chips_;
      for (int e = 1; e <= n; ++e) {
        run += diff_[e];
        if (run > 0 && cuts_.cut_free(e) &&
            (e == n || (!last_chip && CommTime(c, e) <= t))) {
          next[e] = 1;
          reached = true;
        }
      }
      if (!reached) break;
      if (next[n] && (!problem_.use_all_chips() || c + 1 == chips_)) {
        feasible_k_.push_back(c + 1);
        if (!keep_layers) return true;
      }
    }
    return !feasible_k_.empty();
  }

  // Chip counts that were feasible at the last Feasible call.
  const std::vector<int>& feasible_k() const { return feasible_k_; }

  // A split into k runs with bottleneck <= t; needs Feasible(t, true) first
  // and k in feasible_k(). Walks the layers back from the end; among the
  // admissible starts of each run it takes the one whose compute is closest
  // to an even share of what remains, so that the chips off the bottleneck
  // are balanced too (a better start for annealing).
  Assignment Reconstruct(int k, double t) const {
    const size_t width = static_cast<size_t>(n_) + 1;
    Assignment p(n_, 0);
    int end = n_;
    for (int c = k - 1; c >= 0; --c) {
      const uint8_t* cur = layers_.data() + c * width;
      const std::vector<double>& pt = prefix_time_[kind_of_chip_[c]];
      const std::vector<int>& hi_mem = hi_mem_[kind_of_chip_[c]];
      const double share = pt[end] / (c + 1);
      int best = -1;
      double best_gap = kInf;
      for (int s = c == 0 ? 0 : end - 1; s >= 0; --s) {
        if (!cur[s] || Lo(c, s) > end || hi_mem[s] < end ||
            cuts_.pinned_after(c) < end || pt[end] - pt[s] > t) {
          continue;
        }
        const double gap = std::abs(pt[end] - pt[s] - share);
        if (gap < best_gap) {
          best_gap = gap;
          best = s;
        }
      }
      // The layers guarantee an admissible start; keep a safe fallback.
      if (best < 0) best = 0;
      for (int i = best; i < end; ++i) p[order_[i]] = c;
      end = best;
    }
    return p;
  }

  // An upper bound on every compute and link time of any split: a bottleneck
  // target this large is as good as no target.
  double MaxLoad() const {
    double m = 0;
    for (const std::vector<double>& pt : prefix_time_) m = std::max(m, pt[n_]);
    for (int c = 0; c + 1 < chips_; ++c) {
      for (int s = 1; s < n_; ++s) m = std::max(m, CommTime(c, s));
    }
    return m;
  }

  // Why Feasible(inf, true) failed: the first node no run of any split
  // gets past, why the run before it cannot take it, and why no new chip
  // can start at it.
  std::string Explain() const {
    const size_t width = static_cast<size_t>(n_) + 1;
    std::string out = absl::StrCat(
        "the constructive heuristic found no valid placement of ", n_,
        " nodes on ", chips_,
        " chips (it cuts topological orders into contiguous runs, one per "
        "chip): ");
    if (problem_.use_all_chips()) {
      for (int c = 1; c < chips_; ++c) {
        if (layers_[c * width + n_]) {
          return absl::StrCat(
              out, "all nodes fit on ", c,
              " chips but no split spreads them over all ", chips_,
              " chips as use_all_chips requires (colocation groups, pins or "
              "max_hops leave too few places to cut)");
        }
      }
    }
    // The furthest end of any admissible run, and the fewest chips before
    // it.
    int end = -1, run_chip = -1, run_start = -1;
    for (int c = 0; c < chips_; ++c) {
      const uint8_t* layer = layers_.data() + c * width;
      for (int s = 0; s < n_; ++s) {
        if (!layer[s] || Lo(c, s) > n_) continue;
        const int hi =
            std::min(hi_mem_[kind_of_chip_[c]][s], cuts_.pinned_after(c));
        if (Lo(c, s) <= hi && hi > end) {
          end = hi;
          run_chip = c;
          run_start = s;
        }
      }
    }
    if (end < 0) {
      // Not even chip 0 can start.
      return absl::StrCat(out, WhyNotStart(0, 0));
    }
    if (end >= n_) {
      return absl::StrCat(out,
                          "no split satisfies pins, colocation groups and "
                          "max_hops together");
    }
    const int far = end;
    const std::string x = Name(far);
    absl::StrAppend(&out, "no split gets past node ", x, " (node ", far + 1,
                    " of ", n_, " in the graph's topological order): ");
    const int c = run_chip;
    if (hi_mem_[kind_of_chip_[c]][run_start] == end) {
      const double need = live_bytes_[run_start] + prefix_resident_[end + 1] -
                          prefix_resident_[run_start];
      absl::StrAppend(
          &out, "chip ", c, ", running ", Name(run_start), " to ",
          Name(end - 1), ", cannot also take it: that needs ",
          FormatBytes(need), " (", FormatBytes(live_bytes_[run_start]),
          " of it tensors in transit from earlier chips) and the "
          "chip has ",
          FormatBytes(problem_.hardware().chip(c).sram_bytes), " of SRAM");
    } else {
      absl::StrAppend(&out, "chip ", c, ", running ", Name(run_start), " to ",
                      Name(end - 1),
                      ", cannot also take it because of the pins on later "
                      "chips");
    }
    if (c + 1 >= chips_) {
      absl::StrAppend(&out, "; chip ", c, " is the last chip, so the ", chips_,
                      " chips are full (parameters, outputs and tensors in "
                      "transit)");
    } else {
      absl::StrAppend(&out, "; ", WhyNotStart(c + 1, end));
    }
    return out;
  }

 private:
  static std::vector<int> Pins(const Problem& problem) {
    std::vector<int> pins(problem.num_nodes());
    for (int v = 0; v < problem.num_nodes(); ++v) pins[v] = problem.pin(v);
    return pins;
  }

  // Per chip kind (one when all chips are alike): prefix sums of compute
  // time and, per start, the furthest end whose memory fits.
  void PrepareChipKinds() {
    const int n = n_;
    const bool identical = problem_.hardware().identical_chips();
    const int kinds = identical ? 1 : chips_;
    prefix_time_.assign(kinds, std::vector<double>(n + 1, 0.0));
    hi_mem_.assign(kinds, std::vector<int>(n + 1, 0));
    for (int kind = 0; kind < kinds; ++kind) {
      std::vector<double>& pt = prefix_time_[kind];
      for (int i = 0; i < n; ++i) {
        pt[i + 1] = pt[i] + problem_.time(order_[i], kind);
      }
      const double sram =
          MemoryLimit(problem_.hardware().chip(kind).sram_bytes);
      for (int s = 0; s <= n; ++s) {
        // Largest end e with live(s) + resident[s, e) <= sram.
        const double room = sram - live_bytes_[s] + prefix_resident_[s];
        int e =
            static_cast<int>(std::upper_bound(prefix_resident_.begin() + s,
                                              prefix_resident_.end(), room) -
                             prefix_resident_.begin()) -
            1;
        hi_mem_[kind][s] = std::max(e, s);
      }
    }
    kind_of_chip_.assign(chips_, 0);
    if (!identical) {
      for (int c = 0; c < chips_; ++c) kind_of_chip_[c] = c;
    }
  }

  std::string Name(int position) const {
    return QuoteInput(graph_.node_name(order_[position]));
  }

  // Why chip c cannot start a run at position s.
  std::string WhyNotStart(int c, int s) const {
    const std::string x = Name(s);
    if (!cuts_.cut_free(s)) {
      return absl::StrCat("chip ", c, " cannot start at ", x,
                          " because a colocation group spans the cut before "
                          "it");
    }
    const int lo = Lo(c, s);
    if (lo > n_) {
      return absl::StrCat("chip ", c, " cannot start at ", x,
                          " because of the pins on other chips");
    }
    const double need =
        live_bytes_[s] + prefix_resident_[lo] - prefix_resident_[s];
    std::string why = absl::StrCat(
        "starting chip ", c, " at ", x, " needs ", FormatBytes(need), ": ",
        FormatBytes(live_bytes_[s]),
        " of tensors in transit from earlier chips, ",
        FormatBytes(problem_.resident_bytes(order_[s])), " for ", x, " itself");
    if (lo > s + 1) {
      absl::StrAppend(&why, " and the rest for the nodes up to ", Name(lo - 1),
                      " that must share its chip (readers of earlier chips' "
                      "tensors under max_hops, or pins)");
    }
    return absl::StrCat(why, "; chip ", c, " has ",
                        FormatBytes(problem_.hardware().chip(c).sram_bytes),
                        " of SRAM");
  }

  // The first admissible end of chip c's run when it starts at cut s, or
  // n + 1 when chip c cannot start at s.
  int Lo(int c, int s) const {
    if (s <= cuts_.pinned_before(c) || s > cuts_.first_pinned(c)) {
      return n_ + 1;
    }
    return std::max({s + 1, cuts_.max_reach(s) + 1, cuts_.last_pinned(c) + 1});
  }

  // Link c's time when the cut after chip c is at s.
  double CommTime(int c, int s) const {
    const LinkSpec& link = problem_.hardware().link(c);
    return live_bytes_[s] / link.bandwidth + live_count_[s] * link.latency_s;
  }

  const Problem& problem_;
  const Graph& graph_;
  const int n_;
  const int chips_;
  const std::vector<int> order_;
  const SplitCuts cuts_;
  std::vector<double> live_bytes_;
  std::vector<int> live_count_;
  std::vector<double> prefix_resident_;
  std::vector<std::vector<double>> prefix_time_;  // per chip kind
  std::vector<std::vector<int>> hi_mem_;          // per chip kind
  std::vector<int> kind_of_chip_;
  std::vector<uint8_t> layers_;
  std::vector<int> diff_;
  std::vector<int> feasible_k_;
};

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

// The smallest bottleneck of any split of `splitter`'s order that is below
// `best_target`, and the best valid split reaching it (by the evaluator's
// throughput, ties to fewer chips). Leaves `*best` alone and returns false
// when no split beats `best_target`. CANCELLED when `stop` is set.
absl::StatusOr<bool> BestSplit(Splitter& splitter, Evaluator& evaluator,
                               const StopToken* stop, bool already_feasible,
                               double* best_target, double* best_throughput,
                               Assignment* best) {
  // Only a split that beats the best so far matters.
  if (!already_feasible && !splitter.Feasible(*best_target, false)) {
    return false;
  }
  // Bisect the smallest feasible bottleneck over the bit patterns of
  // non-negative doubles, which order like the values: at most 64 rounds
  // and the exact optimum over contiguous splits of this order.
  double target = 0;
  if (!splitter.Feasible(0, false)) {
    uint64_t lo = Bits(0.0);
    uint64_t hi = Bits(std::min(*best_target, splitter.MaxLoad()));
    while (hi - lo > 1) {
      if (stop != nullptr && stop->stop_requested()) {
        return absl::CancelledError("constructive placement cancelled");
      }
      const uint64_t mid = lo + (hi - lo) / 2;
      (splitter.Feasible(FromBits(mid), false) ? hi : lo) = mid;
    }
    target = FromBits(hi);
  }
  splitter.Feasible(target, /*keep_layers=*/true);
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
  const bool first_feasible = first.Feasible(kInf, /*keep_layers=*/true);
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
                  &best_target, &best_throughput, &best);
    if (!improved.ok()) return improved.status();
  }
  if (!best.empty()) return best;
  if (!first_feasible) return absl::FailedPreconditionError(why_not);
  return absl::InternalError(
      "constructive placement: the split the search found is not valid "
      "(a bug; please report the graph and hardware)");
}

absl::StatusOr<Assignment> SplitOrder(const Problem& problem,
                                      absl::Span<const int> order,
                                      const StopToken* stop) {
  const int n = problem.num_nodes();
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
  if (!splitter.Feasible(kInf, /*keep_layers=*/false)) {
    return absl::NotFoundError("no valid contiguous split of the order exists");
  }
  Evaluator evaluator(problem);
  Assignment best;
  double best_throughput = -1;
  double best_target = kInf;
  absl::StatusOr<bool> improved =
      BestSplit(splitter, evaluator, stop, /*already_feasible=*/true,
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
