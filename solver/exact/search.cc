#include "solver/exact/search.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/format.h"
#include "solver/quote.h"
#include "solver/repair.h"
#include "solver/splitmix.h"

namespace mcmpart::exact {

void Search::Prepare() {
  const Hardware& hw = p_.hardware();
  hops_ = p_.max_hops();
  hop_free_ = hops_ >= chips_ - 1;
  bool uniform = hw.identical_chips();
  for (int k = 1; k + 1 < chips_; ++k) {
    uniform = uniform && hw.link(k).bandwidth == hw.link(0).bandwidth &&
              hw.link(k).latency_s == hw.link(0).latency_s;
  }
  bool pins = false;
  tmin_.resize(n_);
  res_.resize(n_);
  zobrist_.resize(n_);
  uint64_t seed = 0x6d636d7061727400ULL;
  for (int v = 0; v < n_; ++v) {
    double t = kInf;
    for (int c = 0; c < chips_; ++c) t = std::min(t, p_.time(v, c));
    tmin_[v] = t;
    res_[v] = p_.resident_bytes(v);
    zobrist_[v] = SplitMix64(&seed);
    if (g_.predecessors(v).empty()) sources_.push_back(v);
    if (p_.pin(v) >= 0) {
      pins = true;
      pinned_.emplace_back(p_.pin(v), v);
    }
  }
  std::sort(pinned_.begin(), pinned_.end());
  cross_level_ = uniform && !pins && !p_.use_all_chips();
  finish_anywhere_ = cross_level_;
  const double ub = p_.upper_bound_per_s();
  lb0_ = std::isfinite(ub) && ub > 0 ? 1.0 / ub : 0;
  sram_.resize(chips_);
  suffix_sram_.assign(chips_ + 1, 0);
  for (int c = 0; c < chips_; ++c) {
    sram_[c] = MemoryLimit(hw.chip(c).sram_bytes);
  }
  for (int c = chips_ - 1; c >= 0; --c) {
    suffix_sram_[c] = suffix_sram_[c + 1] + sram_[c];
  }
  mark_.assign(n_, 0);
  scratch_words_.resize(width_);
}

bool Search::Dominates(const Layer& la, const State& a, const State& b) const {
  if (a.chip != b.chip && !(cross_level_ && a.chip < b.chip)) return false;
  if (b.nonempty && !a.nonempty) return false;
  if (std::max(a.b, lb0_) > std::max(b.b, lb0_) || a.acc_c > b.acc_c ||
      a.acc_m > b.acc_m) {
    return false;
  }
  // Every pending node of a must be pending in b, at least as old.
  int j = 0;
  for (int i = 0; i < a.pend_size; ++i) {
    const Pending& x = la.pend[a.pend_begin + i];
    while (j < b.pend_size && la.pend[b.pend_begin + j].node < x.node) ++j;
    if (j == b.pend_size) return false;
    const Pending& y = la.pend[b.pend_begin + j];
    if (y.node != x.node || y.age < x.age) return false;
  }
  return true;
}

int32_t Search::Insert(Layer* layer, int32_t e, State s,
                       const std::vector<Pending>& pend, int32_t parent_trail,
                       int32_t action) {
  s.pend_begin = static_cast<int32_t>(layer->pend.size());
  s.pend_size = static_cast<int32_t>(pend.size());
  layer->pend.insert(layer->pend.end(), pend.begin(), pend.end());
  Entry& entry = layer->entries[e];
  for (int32_t id : entry.states) {
    const State& o = layer->states[id];
    if (!o.dead && Dominates(*layer, o, s)) {
      layer->pend.resize(s.pend_begin);
      return -1;
    }
  }
  for (int32_t id : entry.states) {
    State& o = layer->states[id];
    if (!o.dead && Dominates(*layer, s, o)) o.dead = true;
  }
  s.trail = static_cast<int32_t>(trail_.size());
  trail_.push_back(Trail{parent_trail, action});
  const int32_t id = static_cast<int32_t>(layer->states.size());
  layer->states.push_back(s);
  entry.states.push_back(id);
  ++states_;
  return id;
}

int32_t Search::ChildEntry(int32_t e, int v, std::vector<int>* left) {
  const uint64_t* w = &cur_.words[static_cast<size_t>(e) * width_];
  const Entry& from = cur_.entries[e];
  std::copy(w, w + width_, scratch_words_.begin());
  scratch_words_[v >> 6] |= uint64_t{1} << (v & 63);
  const uint64_t hash = from.hash ^ zobrist_[v];
  // Preds of v whose successors are now all placed leave the boundary.
  left->clear();
  for (int u : g_.predecessors(v)) {
    bool all = true;
    for (int x : g_.successors(u)) {
      if (!((scratch_words_[x >> 6] >> (x & 63)) & 1)) {
        all = false;
        break;
      }
    }
    if (all) left->push_back(u);
  }
  auto it = next_.index.find(hash);
  if (it != next_.index.end()) {
    for (int32_t c = it->second; c >= 0; c = next_.entries[c].next) {
      if (std::equal(scratch_words_.begin(), scratch_words_.end(),
                     next_.words.begin() + static_cast<size_t>(c) * width_)) {
        return c;
      }
    }
  }
  const int32_t c = static_cast<int32_t>(next_.entries.size());
  Entry& child = next_.entries.emplace_back();
  child.hash = hash;
  child.next = it != next_.index.end() ? it->second : -1;
  next_.index[hash] = c;
  next_.words.insert(next_.words.end(), scratch_words_.begin(),
                     scratch_words_.end());
  child.bnd_begin = static_cast<int32_t>(next_.bnd.size());
  child.bnd_bytes = from.bnd_bytes;
  for (int i = 0; i < from.bnd_size; ++i) {
    const int u = cur_.bnd[from.bnd_begin + i];
    if (std::find(left->begin(), left->end(), u) != left->end()) {
      child.bnd_bytes -= g_.output_bytes(u);
    } else {
      next_.bnd.push_back(u);
    }
  }
  if (!g_.successors(v).empty()) {
    // Boundaries stay sorted by node: TryClose merges them with the sorted
    // pending lists.
    auto at = std::lower_bound(next_.bnd.begin() + child.bnd_begin,
                               next_.bnd.end(), v);
    next_.bnd.insert(at, v);
    child.bnd_bytes += g_.output_bytes(v);
  }
  // Recomputed rather than updated where it shrinks, so that rounding never
  // leaves a boundary of zero tensors with a few stray bytes.
  child.bnd_size = static_cast<int32_t>(next_.bnd.size()) - child.bnd_begin;
  if (child.bnd_size == 0) child.bnd_bytes = 0;
  child.rem_time = std::max(from.rem_time - tmin_[v], 0.0);
  child.rem_res = std::max(from.rem_res - res_[v], 0.0);
  child.rem_last = std::max(from.rem_last - p_.time(v, chips_ - 1), 0.0);
  ++downsets_;
  return c;
}

bool Search::ColocationConsistent(const uint64_t* w) const {
  for (const std::vector<int>& group : p_.colocation_groups()) {
    const bool first = InJ(w, group[0]);
    for (int v : group) {
      if (InJ(w, v) != first) return false;
    }
  }
  return true;
}

int Search::FirstOpenPin(const uint64_t* w) const {
  for (const auto& [chip, v] : pinned_) {
    if (!InJ(w, v)) return chip;
  }
  return chips_;
}

void Search::TryClose(int32_t e, const State& s) {
  const Entry& entry = cur_.entries[e];
  const uint64_t* w = &cur_.words[static_cast<size_t>(e) * width_];
  const int j = s.chip;
  if (j + 1 >= chips_) {
    Block(depth_, [&] {
      return absl::StrCat("all ", chips_, " chips are full after ", depth_,
                          " of ", n_, " nodes");
    });
    return;
  }
  if (!hop_free_) {
    for (int i = 0; i < s.pend_size; ++i) {
      const Pending& x = cur_.pend[s.pend_begin + i];
      if (x.age > hops_ - 1) {
        Block(depth_, [&] {
          return absl::StrCat(
              "the output of ", QuoteInput(g_.node_name(x.node)), " (chip ",
              j - x.age, ") would have to travel more than max_hops = ", hops_,
              " chips to reach its readers");
        });
        return;
      }
    }
  }
  if (!ColocationConsistent(w)) return;
  if (FirstOpenPin(w) <= j) return;
  if (p_.use_all_chips() && n_ - depth_ < chips_ - (j + 1)) return;
  const LinkSpec& link = p_.hardware().link(j);
  const double comm =
      entry.bnd_bytes / link.bandwidth + link.latency_s * entry.bnd_size;
  State t;
  t.b = std::max({s.b, s.acc_c, comm});
  t.acc_c = 0;
  t.acc_m = entry.bnd_bytes;
  t.chip = static_cast<int16_t>(j + 1);
  t.nonempty = false;
  if (t.acc_m > sram_[j + 1] || t.acc_m + entry.rem_res > suffix_sram_[j + 1]) {
    Block(depth_, [&] {
      return absl::StrCat(
          "after ", depth_, " of ", n_, " nodes, chip ", j + 1,
          " would need at least ", FormatBytes(t.acc_m + entry.rem_res),
          " for the tensors it receives and the nodes left, but chips ", j + 1,
          "..", chips_ - 1, " hold ", FormatBytes(suffix_sram_[j + 1]));
    });
    return;
  }
  if (Optimistic(t.b, 0, j + 1, entry.rem_time) >= Cutoff()) return;
  scratch_pend_.clear();
  if (!hop_free_) {
    int i = 0;
    for (int k = 0; k < entry.bnd_size; ++k) {
      const int u = cur_.bnd[entry.bnd_begin + k];
      while (i < s.pend_size && cur_.pend[s.pend_begin + i].node < u) ++i;
      const bool old = i < s.pend_size && cur_.pend[s.pend_begin + i].node == u;
      scratch_pend_.push_back(
          Pending{u, old ? cur_.pend[s.pend_begin + i].age + 1 : 1});
    }
  }
  // Sorted by node, as the boundary is.
  Insert(&cur_, e, t, scratch_pend_, s.trail, kClose);
}

void Search::TryFinish(int32_t e, const State& s) {
  const Entry& entry = cur_.entries[e];
  const int j = s.chip;
  if (p_.use_all_chips() && j != chips_ - 1) return;
  // rem_last is the rest's time on the last chip; from another chip it is
  // used only when every chip is the same.
  const double cost = std::max(s.b, s.acc_c + entry.rem_last);
  if (cost >= Cutoff()) return;
  if (s.acc_m + entry.rem_res > sram_[j]) {
    if (j == chips_ - 1) {
      Block(depth_, [&] {
        return absl::StrCat("chip ", j, ", the last, would need ",
                            FormatBytes(s.acc_m + entry.rem_res), " for the ",
                            n_ - depth_, " nodes left but has ",
                            FormatBytes(p_.hardware().chip(j).sram_bytes),
                            " of SRAM");
      });
    }
    return;
  }
  const uint64_t* w = &cur_.words[static_cast<size_t>(e) * width_];
  for (const auto& [chip, v] : pinned_) {
    if (chip != j && !InJ(w, v)) return;
  }
  Record(cost, Trail{s.trail, kFinish});
}

void Search::Record(double cost, Trail step) {
  const int32_t id = static_cast<int32_t>(trail_.size());
  trail_.push_back(step);
  // The search's own sums decide what it prunes; the evaluator checks every
  // placement it would stand on, so that no inconsistency between the two
  // can pass for a proof.
  const Assignment p = Reconstruct(id);
  if (!eval_.IsValid(p)) {
    inconsistent_ = true;
    return;
  }
  best_found_ = std::max(cost, 0.0);
  best_trail_ = id;
}

void Search::CollectAddable(int32_t e) {
  const uint64_t* w = &cur_.words[static_cast<size_t>(e) * width_];
  // Each addable node has a predecessor on the boundary, or none at all:
  // the successors of the boundary and the sources are all to look at.
  ++epoch_;
  addable_.clear();
  const Entry& entry = cur_.entries[e];
  auto consider = [&](int v) {
    if (mark_[v] == epoch_ || InJ(w, v)) return;
    mark_[v] = epoch_;
    for (int u : g_.predecessors(v)) {
      if (!InJ(w, u)) return;
    }
    addable_.push_back(v);
  };
  for (int i = 0; i < entry.bnd_size; ++i) {
    for (int v : g_.successors(cur_.bnd[entry.bnd_begin + i])) consider(v);
  }
  for (int v : sources_) consider(v);
  std::sort(addable_.begin(), addable_.end());
}

void Search::TryAdd(int32_t e, const State& s, size_t a) {
  const int j = s.chip;
  const int v = addable_[a];
  const int pin = p_.pin(v);
  if (pin >= 0 && pin != j) return;
  State t = s;
  t.acc_c = s.acc_c + p_.time(v, j);
  t.acc_m = s.acc_m + res_[v];
  t.nonempty = true;
  if (t.acc_m > sram_[j]) {
    Block(depth_ + 1, [&] {
      return absl::StrCat(
          "chip ", j, " would need ", FormatBytes(t.acc_m), " with node ",
          QuoteInput(g_.node_name(v)), " but has ",
          FormatBytes(p_.hardware().chip(j).sram_bytes), " of SRAM");
    });
    return;
  }
  const double rem_time = cur_.entries[e].rem_time - tmin_[v];
  if (Optimistic(t.b, t.acc_c, j, std::max(rem_time, 0.0)) >= Cutoff()) {
    return;
  }
  if (depth_ + 1 == n_) {
    if (p_.use_all_chips() && j != chips_ - 1) return;
    const double cost = std::max(t.b, t.acc_c);
    if (cost < best_found_) Record(cost, Trail{s.trail, v});
    return;
  }
  if (child_[a] == -2) child_[a] = ChildEntry(e, v, &left_[a]);
  const Entry& child = next_.entries[child_[a]];
  if (t.acc_m + child.rem_res > suffix_sram_[j]) return;
  if (p_.use_all_chips() && n_ - depth_ - 1 < chips_ - 1 - j) return;
  // v's predecessors that left the boundary are no longer pending.
  scratch_pend_.clear();
  for (int k = 0; k < s.pend_size; ++k) {
    const Pending& x = cur_.pend[s.pend_begin + k];
    if (std::find(left_[a].begin(), left_[a].end(), x.node) == left_[a].end()) {
      scratch_pend_.push_back(x);
    }
  }
  Insert(&next_, child_[a], t, scratch_pend_, s.trail, v);
}

size_t Search::ProcessEntry(int32_t e) {
  CollectAddable(e);
  child_.assign(addable_.size(), -2);  // -2: not made yet
  if (left_.size() < addable_.size()) left_.resize(addable_.size());

  size_t i = 0;
  for (; i < cur_.entries[e].states.size(); ++i) {
    // A wide lattice can hold thousands of partial placements per downset:
    // the limits are checked inside the entry too.
    if ((++ticks_ & 255) == 0 && LimitReached()) return i;
    // A copy: TryClose adds states to cur_, which may move them.
    const State s = cur_.states[cur_.entries[e].states[i]];
    if (s.dead) continue;
    const int j = s.chip;
    // On the last chip nothing is left to decide: the rest goes there.
    // With identical chips, trying that from every chip finds good
    // placements early, which tightens the pruning.
    if (j == chips_ - 1 || finish_anywhere_) {
      TryFinish(e, s);
      if (j == chips_ - 1) continue;
    }
    if (s.nonempty) TryClose(e, s);
    for (size_t a = 0; a < addable_.size(); ++a) {
      // One partial placement can have thousands of nodes to add (a graph
      // of many sources), each a new downset: the limits hold here too.
      // The state counts as unexpanded, its children as open: still sound.
      if ((++ticks_ & 63) == 0 && LimitReached()) return i;
      TryAdd(e, s, a);
    }
  }
  return i;
}

void Search::TrimToBeam() {
  struct Ranked {
    double bound, memory;
    int32_t id;
  };
  std::vector<Ranked> live;
  for (const Entry& entry : next_.entries) {
    for (int32_t id : entry.states) {
      const State& s = next_.states[id];
      if (s.dead) continue;
      live.push_back(Ranked{Optimistic(s.b, s.acc_c, s.chip, entry.rem_time),
                            s.acc_m, id});
    }
  }
  if (static_cast<int64_t>(live.size()) <= opt_.beam) return;
  // Least bound first; among equals, the one with more SRAM left.
  auto better = [](const Ranked& a, const Ranked& b) {
    return a.bound != b.bound ? a.bound < b.bound : a.memory < b.memory;
  };
  std::nth_element(live.begin(), live.begin() + opt_.beam, live.end(), better);
  for (size_t i = opt_.beam; i < live.size(); ++i) {
    next_.states[live[i].id].dead = true;
    dropped_bound_ = std::min(dropped_bound_, live[i].bound);
  }
  truncated_ = true;
}

double Search::OpenBound() const {
  double lb = std::min(Cutoff(), dropped_bound_);
  for (const Layer* layer : {&cur_, &next_}) {
    for (const Entry& entry : layer->entries) {
      for (int32_t id : entry.states) {
        const State& s = layer->states[id];
        if (s.dead) continue;
        lb = std::min(lb, Optimistic(s.b, s.acc_c, s.chip, entry.rem_time));
      }
    }
  }
  return lb;
}

Assignment Search::Reconstruct(int32_t trail) const {
  std::vector<int32_t> actions;
  for (int32_t t = trail; t > 0; t = trail_[t].parent) {
    actions.push_back(trail_[t].action);
  }
  Assignment p(n_, -1);
  int chip = 0;
  for (auto it = actions.rbegin(); it != actions.rend(); ++it) {
    if (*it == kClose) {
      ++chip;
    } else if (*it == kFinish) {
      for (int& c : p) {
        if (c < 0) c = chip;
      }
    } else {
      p[*it] = chip;
    }
  }
  return p;
}

std::string Search::Infeasible() const {
  std::string why = blocker_.text.empty()
                        ? "no chain of chips satisfies the constraints"
                        : blocker_.text;
  return absl::StrCat(
      "no valid placement exists: an exhaustive search of every placement ",
      "(", downsets_, " downsets) finds none; the furthest partial ",
      "placements hold ", std::max(blocker_.depth, 0), " of ", n_,
      " nodes and then fail: ", why);
}

absl::Status Search::SetIncumbent() {
  incumbent_ = opt_.incumbent;
  if (!incumbent_.empty()) {
    if (static_cast<int>(incumbent_.size()) != n_ ||
        !eval_.IsValid(incumbent_)) {
      return absl::InvalidArgumentError(
          "exact search: the incumbent is not a valid placement");
    }
  } else if (opt_.construct_incumbent) {
    absl::StatusOr<Assignment> made = ConstructPlacement(p_, opt_.stop);
    if (made.ok()) incumbent_ = *std::move(made);
  }
  if (!incumbent_.empty()) {
    incumbent_s_ = eval_.Score(incumbent_).bottleneck_s;
    incumbent_cut_ = incumbent_s_ * (1 - kTieTolerance);
  }
  return absl::OkStatus();
}

void Search::AddRoot() {
  trail_.push_back(Trail{-1, 0});
  Entry& root = cur_.entries.emplace_back();
  cur_.words.assign(width_, 0);
  cur_.index[0] = 0;
  for (int v = 0; v < n_; ++v) {
    root.rem_time += tmin_[v];
    root.rem_res += res_[v];
    root.rem_last += p_.time(v, chips_ - 1);
  }
  ++downsets_;
  cur_.states.push_back(State{});
  root.states.push_back(0);
  ++states_;
}

std::optional<ExactOutcome> Search::ExpandLayer() {
  for (int32_t e = 0; e < static_cast<int32_t>(cur_.entries.size()); ++e) {
    const size_t expanded = ProcessEntry(e);
    peak_ = std::max(peak_, Bytes());
    const bool stop = opt_.stop != nullptr && opt_.stop->stop_requested();
    const bool late = absl::Now() >= deadline_;
    if (stop || late || peak_ > opt_.memory_limit_bytes) {
      RetireExpanded(e, expanded);
      return stop   ? ExactOutcome::kCancelled
             : late ? ExactOutcome::kTimeLimit
                    : ExactOutcome::kMemoryLimit;
    }
  }
  return std::nullopt;
}

void Search::RetireExpanded(int32_t e, size_t expanded) {
  // Their partial placements live on in next_ and in later states of their
  // own entry, so they no longer count as open.
  for (int32_t d = 0; d <= e; ++d) {
    const auto& ids = cur_.entries[d].states;
    const size_t done = d < e ? ids.size() : expanded;
    for (size_t i = 0; i < done; ++i) cur_.states[ids[i]].dead = true;
  }
}

ExactResult Search::Finish(ExactOutcome outcome, double bound) {
  ExactResult result;
  result.outcome = outcome;
  result.best = incumbent_;
  result.bottleneck_s = incumbent_s_;
  if (best_trail_ >= 0) {
    Assignment found = Reconstruct(best_trail_);
    if (eval_.IsValid(found) &&
        eval_.Score(found).bottleneck_s < incumbent_s_) {
      result.best = std::move(found);
      result.bottleneck_s = eval_.Score(result.best).bottleneck_s;
    }
  }
  result.bound_s = outcome == ExactOutcome::kProved
                       ? result.bottleneck_s
                       : std::min(bound, result.bottleneck_s);
  result.downsets = downsets_;
  result.states = states_;
  result.peak_bytes = peak_;
  result.elapsed = absl::Now() - start_;
  return result;
}

absl::StatusOr<ExactResult> Search::Run() {
  start_ = absl::Now();
  deadline_ = opt_.time_limit == absl::InfiniteDuration()
                  ? absl::InfiniteFuture()
                  : start_ + opt_.time_limit;
  Prepare();
  if (absl::Status s = SetIncumbent(); !s.ok()) return s;
  if (n_ == 0) return Finish(ExactOutcome::kProved, 0);

  // Layer by layer up the lattice: cur_ holds the downsets of depth_
  // nodes, ExpandLayer fills next_ with those of one more.
  AddRoot();
  for (depth_ = 0; depth_ < n_; ++depth_) {
    if (std::optional<ExactOutcome> stopped = ExpandLayer()) {
      return Finish(*stopped, OpenBound());
    }
    if (opt_.beam > 0) TrimToBeam();
    std::swap(cur_, next_);
    next_.Clear();
  }
  if (inconsistent_) {
    return absl::InternalError(
        "exact search: a placement it completed is not valid per the cost "
        "model (a bug; please report the graph and hardware)");
  }
  if (truncated_) return Finish(ExactOutcome::kBeam, OpenBound());
  if (incumbent_.empty() && best_trail_ < 0) {
    absl::Status explained = CheckFeasibility(p_);
    if (!explained.ok() && !absl::IsUnimplemented(explained)) return explained;
    return absl::FailedPreconditionError(Infeasible());
  }
  return Finish(ExactOutcome::kProved, 0);
}

}  // namespace mcmpart::exact
