#include "solver/anneal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/repair.h"

namespace mcmpart {
namespace {

// Weight of the tie-breaking term of the objective (see anneal.h).
constexpr double kSmoothWeight = 0.1;
// Relative bottleneck gain below which the incremental figures are not
// trusted to show an improvement (their rounding drift is far smaller).
constexpr double kImprovementTolerance = 1e-9;
// Restart cycles per budget; each starts from the best placement so far.
constexpr int kCycles = 4;
// Temperatures relative to the starting bottleneck: the first cycle starts
// where a move that costs a few percent of the bottleneck is often accepted,
// every cycle ends where only tiny regressions are.
constexpr double kStartTemperature = 0.02;
constexpr double kEndTemperature = 2e-5;
// With no sample budget and no finite time budget, one cycle is this many
// samples per node (at least kMinCycleSamples).
constexpr int64_t kCycleSamplesPerNode = 200;
constexpr int64_t kMinCycleSamples = 100'000;
// Accepted moves between full recomputations of the incremental figures,
// which bounds floating-point drift.
constexpr int64_t kResyncEvery = 20'000;

// xoshiro256**, seeded by splitmix64: fast (walks draw a number per
// neighbour) and the same sequence for a seed on every platform, which the
// std distributions do not promise.
class Rng {
 public:
  explicit Rng(uint64_t seed) {
    for (uint64_t& word : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }
  // Uniform in [0, n), n > 0.
  int Uniform(int n) {
    return static_cast<int>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  // Uniform in [0, 1).
  double Unit() { return (Next() >> 11) * 0x1.0p-53; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// A valid placement with its figures kept up to date move by move.
//
// Colocation groups (merged when they share nodes) move as one unit. Moves
// are logged so that a rejected proposal is undone exactly in reverse.
class State {
 public:
  explicit State(const Problem& problem)
      : problem_(problem),
        graph_(problem.graph()),
        n_(problem.num_nodes()),
        chips_(problem.num_chips()),
        hops_(problem.max_hops()) {
    const Hardware& hw = problem.hardware();
    sram_limit_.resize(chips_);
    for (int c = 0; c < chips_; ++c) {
      sram_limit_[c] = MemoryLimit(hw.chip(c).sram_bytes);
    }
    for (int k = 0; k + 1 < chips_; ++k) {
      inv_bw_.push_back(1.0 / hw.link(k).bandwidth);
      latency_.push_back(hw.link(k).latency_s);
    }
    compute_.assign(chips_, 0);
    comm_.assign(std::max(chips_ - 1, 0), 0);
    mem_.assign(chips_, 0);
    count_.assign(chips_, 0);
    on_chip_.resize(chips_);
    pos_.assign(n_, 0);

    // Merge overlapping colocation groups into units (union-find).
    std::vector<int> parent(n_);
    for (int v = 0; v < n_; ++v) parent[v] = v;
    auto find = [&parent](int v) {
      while (parent[v] != v) v = parent[v] = parent[parent[v]];
      return v;
    };
    for (const std::vector<int>& group : problem.colocation_groups()) {
      for (int v : group) parent[find(v)] = find(group[0]);
    }
    unit_.assign(n_, -1);
    std::vector<int> unit_of_root(n_, -1);
    for (const std::vector<int>& group : problem.colocation_groups()) {
      for (int v : group) {
        const int root = find(v);
        if (unit_of_root[root] < 0) {
          unit_of_root[root] = static_cast<int>(units_.size());
          units_.emplace_back();
        }
        if (unit_[v] < 0) {
          unit_[v] = unit_of_root[root];
          units_[unit_[v]].push_back(v);
        }
      }
    }
  }

  // Recomputes everything for placement `p` (assumed valid).
  void Load(absl::Span<const int> p) {
    p_.assign(p.begin(), p.end());
    std::fill(compute_.begin(), compute_.end(), 0.0);
    std::fill(comm_.begin(), comm_.end(), 0.0);
    std::fill(mem_.begin(), mem_.end(), 0.0);
    std::fill(count_.begin(), count_.end(), 0);
    for (std::vector<int>& list : on_chip_) list.clear();
    for (int v = 0; v < n_; ++v) {
      const int c = p_[v];
      compute_[c] += problem_.time(v, c);
      mem_[c] += problem_.resident_bytes(v);
      AddTensor(v, c, Last(v), +1);
      ++count_[c];
      pos_[v] = static_cast<int>(on_chip_[c].size());
      on_chip_[c].push_back(v);
    }
    used_ = 0;
    for (int c = 0; c < chips_; ++c) used_ += count_[c] > 0;
    undo_.clear();
    ResetTouched();
  }

  const Assignment& placement() const { return p_; }
  int chip(int v) const { return p_[v]; }
  int used_chips() const { return used_; }
  const std::vector<int>& nodes_on(int c) const { return on_chip_[c]; }
  bool moved_any() const { return !undo_.empty(); }

  bool SameUnit(int a, int b) const {
    return unit_[a] >= 0 && unit_[a] == unit_[b];
  }

  // The chips v's unit may move to without breaking an edge constraint or a
  // pin: [*lo, *hi], and only up to the first unused chip. False when the
  // unit is pinned.
  bool Range(int v, int* lo, int* hi) const {
    int l = 0;
    int h = std::min(chips_ - 1, used_);
    auto visit = [&](int x) {
      if (problem_.pin(x) >= 0) return false;
      for (int u : graph_.predecessors(x)) {
        if (SameUnit(u, x)) continue;
        l = std::max(l, p_[u]);
        h = std::min(h, p_[u] + hops_);
      }
      for (int w : graph_.successors(x)) {
        if (SameUnit(w, x)) continue;
        h = std::min(h, p_[w]);
        l = std::max(l, p_[w] - hops_);
      }
      return true;
    };
    if (unit_[v] < 0) {
      if (!visit(v)) return false;
    } else {
      for (int x : units_[unit_[v]]) {
        if (!visit(x)) return false;
      }
    }
    *lo = l;
    *hi = h;
    return l <= h;
  }

  // Moves v's unit to chip b, logging the move.
  void MoveUnit(int v, int b) {
    if (unit_[v] < 0) {
      MoveNode(v, b);
    } else {
      for (int x : units_[unit_[v]]) MoveNode(x, b);
    }
  }

  // Memory on the chips the logged moves touched, and no-skipping.
  bool LoggedMovesValid() const {
    for (int c = touched_lo_; c <= touched_hi_; ++c) {
      if (mem_[c] > sram_limit_[c]) return false;
    }
    if (emptiness_changed_) {
      if (problem_.use_all_chips() && used_ != chips_) return false;
      for (int c = 0; c < chips_; ++c) {
        if ((count_[c] > 0) != (c < used_)) return false;
      }
    }
    return true;
  }

  void Undo() {
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      Apply(it->first, it->second);
    }
    undo_.clear();
    ResetTouched();
  }
  void Commit() {
    undo_.clear();
    ResetTouched();
  }

  // The objective (see anneal.h); also the bottleneck and where it is:
  // *hot is chip c, or -(k + 1) for link k.
  double Energy(double* bottleneck, int* hot) const {
    double b = 0, s1 = 0, s2 = 0;
    int where = 0;
    for (int c = 0; c < chips_; ++c) {
      const double x = compute_[c];
      s1 += x;
      s2 += x * x;
      if (x > b) {
        b = x;
        where = c;
      }
    }
    for (int k = 0; k + 1 < chips_; ++k) {
      const double x = comm_[k];
      s1 += x;
      s2 += x * x;
      if (x > b) {
        b = x;
        where = -(k + 1);
      }
    }
    *bottleneck = b;
    *hot = where;
    return b + (s1 > 0 ? kSmoothWeight * s2 / s1 : 0.0);
  }

 private:
  // last(u) per the spec: the chip of u's last reader, or u's own.
  int Last(int u) const {
    int last = p_[u];
    for (int w : graph_.successors(u)) last = std::max(last, p_[w]);
    return last;
  }

  // Adds (sign +1) or removes (-1) u's output as produced on chip `from`
  // and read up to chip `last`: links from..last-1, buffers from+1..last.
  void AddTensor(int u, int from, int last, double sign) {
    if (last <= from) return;
    const double out = graph_.output_bytes(u);
    for (int k = from; k < last; ++k) {
      comm_[k] += sign * (out * inv_bw_[k] + latency_[k]);
      mem_[k + 1] += sign * out;
    }
    touched_lo_ = std::min(touched_lo_, from + 1);
    touched_hi_ = std::max(touched_hi_, last);
  }

  void MoveNode(int v, int b) {
    const int a = p_[v];
    if (a == b) return;
    undo_.emplace_back(v, a);
    Apply(v, b);
  }

  // Moves one node and updates every figure it changes: its own compute and
  // memory, its tensor's span, and the spans of its inputs' tensors (whose
  // last reader may be v).
  void Apply(int v, int b) {
    const int a = p_[v];
    for (int u : graph_.predecessors(v)) {
      int others = p_[u];
      for (int w : graph_.successors(u)) {
        if (w != v) others = std::max(others, p_[w]);
      }
      const int before = std::max(others, a);
      const int after = std::max(others, b);
      if (before != after) {
        AddTensor(u, p_[u], before, -1);
        AddTensor(u, p_[u], after, +1);
      }
    }
    int readers = -1;
    for (int w : graph_.successors(v)) readers = std::max(readers, p_[w]);
    AddTensor(v, a, std::max(a, readers), -1);
    AddTensor(v, b, std::max(b, readers), +1);

    compute_[a] -= problem_.time(v, a);
    compute_[b] += problem_.time(v, b);
    const double resident = problem_.resident_bytes(v);
    mem_[a] -= resident;
    mem_[b] += resident;
    touched_lo_ = std::min({touched_lo_, a, b});
    touched_hi_ = std::max({touched_hi_, a, b});

    if (--count_[a] == 0) {
      --used_;
      emptiness_changed_ = true;
    }
    if (count_[b]++ == 0) {
      ++used_;
      emptiness_changed_ = true;
    }
    std::vector<int>& from = on_chip_[a];
    const int i = pos_[v];
    from[i] = from.back();
    pos_[from[i]] = i;
    from.pop_back();
    pos_[v] = static_cast<int>(on_chip_[b].size());
    on_chip_[b].push_back(v);
    p_[v] = b;
  }

  void ResetTouched() {
    touched_lo_ = chips_;
    touched_hi_ = -1;
    emptiness_changed_ = false;
  }

  const Problem& problem_;
  const Graph& graph_;
  const int n_;
  const int chips_;
  const int hops_;
  std::vector<double> sram_limit_, inv_bw_, latency_;

  Assignment p_;
  std::vector<double> compute_, comm_, mem_;
  std::vector<int> count_;
  int used_ = 0;
  std::vector<std::vector<int>> on_chip_;
  std::vector<int> pos_;   // index of v in on_chip_[p_[v]]
  std::vector<int> unit_;  // index into units_, or -1 for a lone node
  std::vector<std::vector<int>> units_;

  std::vector<std::pair<int, int>> undo_;  // (node, chip before)
  int touched_lo_ = 0, touched_hi_ = -1;
  bool emptiness_changed_ = false;
};

// One search run; Anneal::Run sets it up and reports.
class Search {
 public:
  Search(const Problem& problem, const Budget& budget, const StopToken& stop,
         const ImprovementCallback& on_improvement, uint64_t seed,
         absl::Time start)
      : problem_(problem),
        budget_(budget),
        stop_(stop),
        on_improvement_(on_improvement),
        start_(start),
        rng_(seed),
        state_(problem),
        evaluator_(problem) {
    queue_.reserve(problem.num_nodes());
    seen_.assign(problem.num_nodes(), 0);
  }

  // Reports `initial` (valid) as the first improvement and anneals from it.
  StrategyResult Run(Assignment initial) {
    samples_ = 1;  // the initial placement
    best_ = std::move(initial);
    const Figures& f = evaluator_.Score(best_);
    best_throughput_ = f.throughput_per_s;
    best_bottleneck_ = f.bottleneck_s;
    Report(f);
    StrategyResult result;
    result.reason = Anneal();
    result.best = best_;
    const Figures& final_figures = evaluator_.Score(best_);
    result.throughput_per_s = final_figures.throughput_per_s;
    result.quality = final_figures.quality;
    result.samples = samples_;
    result.elapsed = absl::Now() - start_;
    return result;
  }

 private:
  void Report(const Figures& figures) {
    if (on_improvement_) {
      on_improvement_(
          Improvement{best_, figures, samples_, absl::Now() - start_});
    }
  }

  bool AtUpperBound() const {
    return best_bottleneck_ <= 0 ||
           best_throughput_ >= problem_.upper_bound_per_s() * (1 - 1e-12);
  }

  // Fraction of the budget used, in [0, 1) while running. Deterministic
  // (samples only) when there is a sample budget.
  double Progress(absl::Duration elapsed) const {
    if (budget_.samples > 0) {
      return static_cast<double>(samples_) / budget_.samples;
    }
    if (budget_.time < absl::InfiniteDuration() &&
        budget_.time > absl::ZeroDuration()) {
      return absl::FDivDuration(elapsed, budget_.time);
    }
    return -1;  // unbounded: see Schedule
  }

  // Cycle index and temperature for progress `frac`.
  std::pair<int64_t, double> Schedule(double frac) const {
    int64_t cycle;
    double local;
    if (frac < 0) {
      const int64_t length = std::max(
          kMinCycleSamples, kCycleSamplesPerNode * problem_.num_nodes());
      cycle = samples_ / length;
      local = static_cast<double>(samples_ % length) / length;
    } else {
      const double x = std::min(frac, 1.0) * kCycles;
      cycle = std::min<int64_t>(static_cast<int64_t>(x), kCycles - 1);
      local = std::min(x - cycle, 1.0);
    }
    // Later cycles start colder: they refine the best rather than explore.
    const double hot =
        kStartTemperature * std::pow(0.5, std::min<int64_t>(cycle, 3));
    const double t = hot * std::pow(kEndTemperature / hot, local);
    return {cycle, t * scale_};
  }

  // A random node on chip c and then a walk, within chip c, along edges in
  // direction d until a node with no neighbour on c that way: the frontier
  // nodes are the ones that can cross to chip c + d.
  int FrontierNode(int c, int d) {
    const std::vector<int>& nodes = state_.nodes_on(c);
    if (nodes.empty()) return -1;
    int v = nodes[rng_.Uniform(static_cast<int>(nodes.size()))];
    const Graph& g = problem_.graph();
    while (true) {
      absl::Span<const int> next = d > 0 ? g.successors(v) : g.predecessors(v);
      int pick = -1, seen = 0;
      for (int w : next) {
        // Reservoir sampling: a uniform neighbour on chip c.
        if (state_.chip(w) == c && rng_.Uniform(++seen) == 0) pick = w;
      }
      if (pick < 0) return v;
      v = pick;
    }
  }

  // Moves v's unit to chip `to` if its edges allow; true when moved.
  bool TryMove(int v, int to) {
    if (v < 0 || to < 0 || to >= problem_.num_chips()) return false;
    int lo, hi;
    if (!state_.Range(v, &lo, &hi) || to < lo || to > hi) return false;
    state_.MoveUnit(v, to);
    return true;
  }

  // Shifts the boundary between chip c and c + d by up to m nodes: starts
  // at a frontier node and grows the moved set breadth-first through its
  // neighbours on chip c (inputs when moving down the pipeline, readers when
  // moving up), each moved as soon as its edges allow. This moves coherent
  // pieces (a whole residual block, say) that single moves could only
  // reach through worse states.
  void ShiftBoundary(int c, int d, int m) {
    const Graph& g = problem_.graph();
    ++epoch_;
    queue_.clear();
    const int start = FrontierNode(c, d);
    if (start < 0) return;
    queue_.push_back(start);
    seen_[start] = epoch_;
    int moved = 0;
    for (size_t head = 0; head < queue_.size() && moved < m; ++head) {
      const int v = queue_[head];
      if (state_.chip(v) != c || !TryMove(v, c + d)) continue;
      ++moved;
      for (int u : d > 0 ? g.predecessors(v) : g.successors(v)) {
        if (seen_[u] != epoch_ && state_.chip(u) == c) {
          seen_[u] = epoch_;
          queue_.push_back(u);
        }
      }
    }
  }

  // Proposes one composite move and applies it to the state (logged). False
  // when no part of it was admissible; the state is then unchanged.
  bool Propose() {
    const int k = state_.used_chips();
    const int chips = problem_.num_chips();
    const int top = std::min(k, chips - 1);  // may open the next chip
    const double r = rng_.Unit();
    if (r < 0.6) {
      // Shift one boundary, half of the time one of the bottleneck's: the
      // hot chip's, or the hot link's in either direction.
      int c, d;
      if (rng_.Unit() < 0.5) {
        c = hot_ >= 0 ? hot_ : -hot_ - 1;
        d = rng_.Unit() < 0.5 ? 1 : -1;
        if (hot_ < 0 && d < 0) ++c;  // chip k + 1 back over link k
      } else {
        c = rng_.Uniform(k);
        d = rng_.Unit() < 0.5 ? 1 : -1;
      }
      if (c + d < 0 || c + d > top) d = -d;
      if (c + d < 0 || c + d > top) return false;
      // Sizes spread over orders of magnitude: 1, 2, 4, ... 64.
      ShiftBoundary(c, d, 1 << rng_.Uniform(7));
      return state_.moved_any();
    }
    if (r < 0.85 || k < 2) {
      // One node or group to any chip its neighbours allow.
      const int v = rng_.Uniform(problem_.num_nodes());
      int lo, hi;
      if (!state_.Range(v, &lo, &hi) || lo == hi) return false;
      const int a = state_.chip(v);
      int b = lo + rng_.Uniform(hi - lo);
      if (b >= a) ++b;
      if (b > hi) return false;  // a was outside [lo, hi]; cannot happen
      state_.MoveUnit(v, b);
      return true;
    }
    // Swap: a frontier node of chip c down to c + 1 and one of c + 1 up to
    // c; roughly load-neutral, so it mostly reshuffles memory and links.
    const int c = rng_.Uniform(k - 1);
    const int down = FrontierNode(c, 1);
    if (!TryMove(down, c + 1)) return false;
    const int up = FrontierNode(c + 1, -1);
    if (up == down || state_.SameUnit(up, down) || !TryMove(up, c)) {
      state_.Undo();
      return false;
    }
    return true;
  }

  // True when some node or group can move at all.
  bool AnyMovable() {
    for (int v = 0; v < problem_.num_nodes(); ++v) {
      int lo, hi;
      if (state_.Range(v, &lo, &hi) && lo < hi) return true;
    }
    return false;
  }

  EndReason Anneal() {
    if (problem_.num_chips() == 1 || AtUpperBound())
      return EndReason::kConverged;
    state_.Load(best_);
    scale_ = best_bottleneck_;
    double bottleneck;
    double energy = state_.Energy(&bottleneck, &hot_);
    int64_t cycle = 0;
    int64_t accepted = 0;
    int64_t failed_in_a_row = 0;
    const int64_t fail_check =
        1000 + 20 * static_cast<int64_t>(problem_.num_nodes());
    double temperature = 0;
    for (int64_t iter = 0;; ++iter) {
      if (stop_.stop_requested()) return EndReason::kCancelled;
      if (budget_.samples > 0 && samples_ >= budget_.samples) {
        return EndReason::kBudget;
      }
      // The clock and the schedule (two pow calls) are cheap but not free;
      // a proposal takes about a microsecond, so every 16th is well inside
      // the 100 ms stop promise and the temperature steps stay tiny.
      if (iter % 16 == 0) {
        const absl::Duration elapsed = absl::Now() - start_;
        if (elapsed >= budget_.time) return EndReason::kBudget;
        const auto [new_cycle, new_temperature] = Schedule(Progress(elapsed));
        temperature = new_temperature;
        if (new_cycle != cycle) {
          // Restart from the best placement so far.
          cycle = new_cycle;
          state_.Load(best_);
          energy = state_.Energy(&bottleneck, &hot_);
        }
      }

      if (!Propose()) {
        if (++failed_in_a_row >= fail_check) {
          if (!AnyMovable()) return EndReason::kConverged;
          failed_in_a_row = 0;
        }
        continue;
      }
      failed_in_a_row = 0;
      ++samples_;
      if (!state_.LoggedMovesValid()) {
        state_.Undo();
        continue;
      }
      double new_bottleneck;
      int new_hot;
      const double new_energy = state_.Energy(&new_bottleneck, &new_hot);
      const double delta = new_energy - energy;
      if (delta > 0 && rng_.Unit() >= std::exp(-delta / temperature)) {
        state_.Undo();
        continue;
      }
      state_.Commit();
      energy = new_energy;
      bottleneck = new_bottleneck;
      hot_ = new_hot;
      if (++accepted % kResyncEvery == 0) {
        state_.Load(Assignment(state_.placement()));
        energy = state_.Energy(&bottleneck, &hot_);
      }
      if (bottleneck < best_bottleneck_ * (1 - kImprovementTolerance)) {
        // The incremental figures drift by rounding; the evaluator decides
        // what counts as valid and better. The tolerance keeps drift alone
        // from calling it on every accepted move.
        const Assignment& p = state_.placement();
        if (!evaluator_.IsValid(p)) {
          state_.Load(best_);
          energy = state_.Energy(&bottleneck, &hot_);
          continue;
        }
        const Figures& f = evaluator_.Score(p);
        if (f.throughput_per_s > best_throughput_) {
          best_ = p;
          best_throughput_ = f.throughput_per_s;
          best_bottleneck_ = f.bottleneck_s;
          Report(f);
          if (AtUpperBound()) return EndReason::kConverged;
        }
      }
    }
  }

  const Problem& problem_;
  const Budget& budget_;
  const StopToken& stop_;
  const ImprovementCallback& on_improvement_;
  const absl::Time start_;
  Rng rng_;
  State state_;
  Evaluator evaluator_;

  Assignment best_;
  double best_throughput_ = 0;
  double best_bottleneck_ = 0;
  double scale_ = 1;
  int hot_ = 0;  // where the bottleneck is; see State::Energy
  // ShiftBoundary's breadth-first queue and visit marks, kept across calls
  // so that a proposal does not allocate.
  std::vector<int> queue_;
  std::vector<int64_t> seen_;
  int64_t epoch_ = 0;
  int64_t samples_ = 0;
};

}  // namespace

absl::StatusOr<StrategyResult> Anneal::Run(
    const Problem& problem, const Budget& budget, const StopToken& stop,
    const ImprovementCallback& on_improvement) {
  const absl::Time start = absl::Now();
  StrategyResult empty;
  auto ended = [&](EndReason reason) {
    empty.reason = reason;
    empty.elapsed = absl::Now() - start;
    return empty;
  };

  // A warm start (the best an earlier strategy found) replaces the
  // constructive split when it is a valid placement of this problem.
  const bool warm = IsWarmStart(problem, options_.initial);
  absl::StatusOr<Assignment> initial =
      warm ? absl::StatusOr<Assignment>(options_.initial)
           : ConstructPlacement(problem, &stop);
  if (absl::IsCancelled(initial.status())) return ended(EndReason::kCancelled);
  if (!initial.ok()) {
    // The constructive heuristic is not complete; the repair solver is, and
    // explains infeasibility. Unrepaired, the heuristic's reason stands.
    RepairOptions options;
    options.time_limit =
        std::max(budget.time - (absl::Now() - start), absl::ZeroDuration()) / 2;
    options.stop = &stop;
    Assignment free(problem.num_nodes(), -1);
    absl::StatusOr<RepairResult> repaired =
        Repair(problem, free, /*weights=*/{}, options);
    if (repaired.ok()) {
      initial = std::move(repaired->placement);
    } else if (absl::IsFailedPrecondition(repaired.status())) {
      return repaired.status();
    } else if (absl::IsCancelled(repaired.status())) {
      return ended(EndReason::kCancelled);
    } else if (absl::IsDeadlineExceeded(repaired.status())) {
      return ended(EndReason::kBudget);
    } else {
      return initial.status();
    }
    if (!Evaluator(problem).IsValid(*initial)) {
      return absl::InternalError(
          "anneal: the repaired starting placement is not valid");
    }
  }
  Search search(problem, budget, stop, on_improvement, options_.seed, start);
  return search.Run(*std::move(initial));
}

}  // namespace mcmpart
