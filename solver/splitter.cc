#include "solver/splitter.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solver/evaluator.h"
#include "solver/format.h"
#include "solver/quote.h"

namespace mcmpart {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

Splitter::Splitter(const Problem& problem, std::vector<int> order)
    : problem_(problem),
      graph_(problem.graph()),
      n_(problem.num_nodes()),
      chips_(problem.num_chips()),
      order_(std::move(order)),
      cuts_(problem, order_, Pins(problem)),
      hops_(RuleOf(problem)) {
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

bool Splitter::Feasible(double t, bool all_counts) {
  const int n = n_;
  const size_t width = static_cast<size_t>(n) + 1;
  if (layers_.size() != (chips_ + 1) * width) {
    layers_.assign((chips_ + 1) * width, -1);
    band_lo_.assign(chips_ + 1, 0);
    band_hi_.assign(chips_ + 1, -1);
  } else {
    // Only the bands of the last call hold entries.
    for (int c = 0; c <= chips_; ++c) {
      if (band_lo_[c] <= band_hi_[c]) {
        std::fill(layers_.begin() + c * width + band_lo_[c],
                  layers_.begin() + c * width + band_hi_[c] + 1, -1);
      }
      band_lo_[c] = 0;
      band_hi_[c] = -1;
    }
  }
  feasible_k_.clear();
  layers_[0] = 0;
  band_hi_[0] = 0;
  for (int c = 0; c < chips_; ++c) {
    int* next = layers_.data() + (c + 1) * width;
    if (!(hops_ == HopRule::kChain ? ReachByPredecessor(c, t, next)
                                   : ReachByInterval(c, t, next))) {
      break;
    }
    // After the last chip only the end of the graph is of use (and there
    // is no link to cross).
    const bool last_chip = c + 1 == chips_;
    // What is left after cut e takes at least its time on the fastest
    // chips; the chips left run at most t each. A cut that fails this
    // reaches only cuts that fail it too, so dropping it changes no kept
    // predecessor. The margin keeps the test necessary under rounding.
    const double room =
        (chips_ - c - 1) * t * (1 + 1e-9) + 1e-12 * prefix_fastest_[n];
    int first = n + 1, last = -1;
    for (int e = band_lo_[c + 1]; e <= band_hi_[c + 1]; ++e) {
      if (next[e] < 0) continue;
      if (cuts_.cut_free(e) &&
          (e == n || (!last_chip && CommTime(c, e) <= t &&
                      prefix_fastest_[n] - prefix_fastest_[e] <= room))) {
        first = std::min(first, e);
        last = e;
      } else {
        next[e] = -1;
      }
    }
    if (last < 0) break;
    band_lo_[c + 1] = first;
    band_hi_[c + 1] = last;
    if (next[n] >= 0 && (!problem_.use_all_chips() || c + 1 == chips_)) {
      feasible_k_.push_back(c + 1);
      if (!all_counts) return true;
    }
  }
  return !feasible_k_.empty();
}

Assignment Splitter::Reconstruct(int k, double t) const {
  const size_t width = static_cast<size_t>(n_) + 1;
  Assignment p(n_, 0);
  std::vector<int> cut(k + 1, n_);
  int end = n_;
  for (int c = k - 1; c >= 0; --c) {
    const int* cur = layers_.data() + c * width;
    const std::vector<double>& pt = prefix_time_[kind_of_chip_[c]];
    const std::vector<int>& hi_mem = hi_mem_[kind_of_chip_[c]];
    const double share = pt[end] / (c + 1);
    int best = -1;
    double best_gap = kInf;
    for (int s = std::min(c == 0 ? 0 : end - 1, band_hi_[c]); s >= band_lo_[c];
         --s) {
      if (cur[s] < 0 || Lo(c, s) > end || hi_mem[s] < end ||
          cuts_.pinned_after(c) < end || pt[end] - pt[s] > t ||
          !KeepsHops(c, s, cut, k)) {
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
    cut[c] = best;
    end = best;
  }
  return p;
}

double Splitter::ComputeFloor() const {
  // In the prefix sums Feasible itself compares.
  double slowest = 0;
  for (int i = 0; i < n_; ++i) {
    slowest = std::max(slowest, prefix_fastest_[i + 1] - prefix_fastest_[i]);
  }
  return std::max(slowest, prefix_fastest_[n_] / chips_);
}

double Splitter::SplitBottleneck(const Assignment& split) const {
  double worst = 0;
  int start = 0;
  for (int e = 1; e <= n_; ++e) {
    const int c = split[order_[start]];
    if (e < n_ && split[order_[e]] == c) continue;
    const std::vector<double>& pt = prefix_time_[kind_of_chip_[c]];
    worst = std::max(worst, pt[e] - pt[start]);
    if (e < n_) worst = std::max(worst, CommTime(c, e));
    start = e;
  }
  return worst;
}

double Splitter::MaxLoad() const {
  double m = 0;
  for (const std::vector<double>& pt : prefix_time_) m = std::max(m, pt[n_]);
  for (int c = 0; c + 1 < chips_; ++c) {
    for (int s = 1; s < n_; ++s) m = std::max(m, CommTime(c, s));
  }
  return m;
}

std::string Splitter::Explain() const {
  const size_t width = static_cast<size_t>(n_) + 1;
  std::string out = absl::StrCat(
      "the constructive heuristic found no valid placement of ", n_,
      " nodes on ", chips_,
      " chips (it cuts topological orders into contiguous runs, one per "
      "chip): ");
  if (problem_.use_all_chips()) {
    for (int c = 1; c < chips_; ++c) {
      if (layers_[c * width + n_] >= 0) {
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
    const int* layer = layers_.data() + c * width;
    for (int s = 0; s < n_; ++s) {
      if (layer[s] < 0 || Lo(c, s) > n_) continue;
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
        &out, "chip ", c, ", running ", Name(run_start), " to ", Name(end - 1),
        ", cannot also take it: that needs ", FormatBytes(need), " (",
        FormatBytes(live_bytes_[run_start]),
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

Splitter::HopRule Splitter::RuleOf(const Problem& problem) {
  if (problem.max_hops() <= 1) return HopRule::kOneHop;
  if (problem.max_hops() >= problem.num_chips() - 1) return HopRule::kNone;
  return HopRule::kChain;
}

template <typename OnRun>
bool Splitter::ForEachRun(int c, double t, OnRun on_run) const {
  const int n = n_;
  const int* cur = layers_.data() + c * (static_cast<size_t>(n) + 1);
  const std::vector<double>& pt = prefix_time_[kind_of_chip_[c]];
  const std::vector<int>& hi_mem = hi_mem_[kind_of_chip_[c]];
  bool any = false;
  int j = 0;  // largest end with compute <= t; grows with s
  for (int s = band_lo_[c], last = std::min(band_hi_[c], n - 1); s <= last;
       ++s) {
    if (cur[s] < 0) continue;
    const int lo = Lo(c, s);
    if (lo > n) continue;
    j = std::max(j, s);
    while (j < n && pt[j + 1] - pt[s] <= t) ++j;
    const int hi = std::min({j, hi_mem[s], cuts_.pinned_after(c)});
    if (lo > hi) continue;
    on_run(s, lo, hi);
    any = true;
  }
  return any;
}

bool Splitter::ReachByInterval(int c, double t, int* next) {
  const int n = n_;
  if (diff_.size() != static_cast<size_t>(n) + 2) diff_.assign(n + 2, 0);
  int first = n + 1, last = -1;
  const bool any = ForEachRun(c, t, [&](int, int lo, int hi) {
    ++diff_[lo];
    --diff_[hi + 1];
    first = std::min(first, lo);
    last = std::max(last, hi);
  });
  if (!any) return false;
  int run = 0;
  for (int e = first; e <= last; ++e) {
    run += diff_[e];
    diff_[e] = 0;
    if (run > 0) next[e] = 0;
  }
  diff_[last + 1] = 0;
  band_lo_[c + 1] = first;
  band_hi_[c + 1] = last;
  return true;
}

bool Splitter::ReachByPredecessor(int c, double t, int* next) {
  const int n = n_;
  if (unclaimed_.size() != static_cast<size_t>(n) + 2) unclaimed_.resize(n + 2);
  // The forest is reset lazily, up to the furthest end a run has reached:
  // every run ends past the band's first cut, and parents point forward to
  // at most one past the furthest end.
  int reset = band_lo_[c];
  auto find = [this](int e) {
    while (unclaimed_[e] != e) {
      unclaimed_[e] = unclaimed_[unclaimed_[e]];
      e = unclaimed_[e];
    }
    return e;
  };
  int first = n + 1, last = -1;
  const bool any = ForEachRun(c, t, [&](int s, int lo, int hi) {
    for (; reset <= hi + 1; ++reset) unclaimed_[reset] = reset;
    for (int e = find(lo); e <= hi; e = find(e)) {
      next[e] = s;
      unclaimed_[e] = e + 1;
      first = std::min(first, e);
      last = std::max(last, e);
    }
  });
  band_lo_[c + 1] = first;
  band_hi_[c + 1] = last;
  return any;
}

int Splitter::Ancestor(int c, int s, int back) const {
  const size_t width = static_cast<size_t>(n_) + 1;
  for (; back > 0 && c > 0; --back, --c) s = layers_[c * width + s];
  return back > 0 ? 0 : s;
}

bool Splitter::KeepsHops(int c, int s, const std::vector<int>& cut,
                         int k) const {
  if (hops_ == HopRule::kNone) return true;
  const int h = problem_.max_hops();
  for (int back = 0; back < h && back <= c; ++back) {
    const int later = c - back + h;
    if (later >= k) continue;
    if (cut[later] <= cuts_.max_reach(Ancestor(c, s, back))) return false;
  }
  return true;
}

std::vector<int> Splitter::Pins(const Problem& problem) {
  std::vector<int> pins(problem.num_nodes());
  for (int v = 0; v < problem.num_nodes(); ++v) pins[v] = problem.pin(v);
  return pins;
}

void Splitter::PrepareChipKinds() {
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
    const double sram = MemoryLimit(problem_.hardware().chip(kind).sram_bytes);
    for (int s = 0; s <= n; ++s) {
      // Largest end e with live(s) + resident[s, e) <= sram.
      const double room = sram - live_bytes_[s] + prefix_resident_[s];
      int e = static_cast<int>(std::upper_bound(prefix_resident_.begin() + s,
                                                prefix_resident_.end(), room) -
                               prefix_resident_.begin()) -
              1;
      hi_mem_[kind][s] = std::max(e, s);
    }
  }
  prefix_fastest_.assign(n + 1, 0.0);
  for (int i = 0; i < n; ++i) {
    double fastest = kInf;
    for (const std::vector<double>& pt : prefix_time_) {
      fastest = std::min(fastest, pt[i + 1] - pt[i]);
    }
    prefix_fastest_[i + 1] = prefix_fastest_[i] + fastest;
  }
  kind_of_chip_.assign(chips_, 0);
  if (!identical) {
    for (int c = 0; c < chips_; ++c) kind_of_chip_[c] = c;
  }
}

std::string Splitter::Name(int position) const {
  return QuoteInput(graph_.node_name(order_[position]));
}

std::string Splitter::WhyNotStart(int c, int s) const {
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

int Splitter::Lo(int c, int s) const {
  if (s <= cuts_.pinned_before(c) || s > cuts_.first_pinned(c)) {
    return n_ + 1;
  }
  int reach = -1;  // the last reader the end must pass
  switch (hops_) {
    case HopRule::kOneHop:
      reach = cuts_.max_reach(s);
      break;
    case HopRule::kNone:
      break;
    case HopRule::kChain:
      reach = cuts_.max_reach(Ancestor(c, s, problem_.max_hops() - 1));
      break;
  }
  return std::max({s + 1, reach + 1, cuts_.last_pinned(c) + 1});
}

double Splitter::CommTime(int c, int s) const {
  const LinkSpec& link = problem_.hardware().link(c);
  return live_bytes_[s] / link.bandwidth + live_count_[s] * link.latency_s;
}

}  // namespace mcmpart
