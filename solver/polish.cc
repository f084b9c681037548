#include "solver/polish.h"

#include <algorithm>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "solver/anneal/state.h"

namespace mcmpart {
namespace {

// Incremental figures drift by rounding; a move counts as an improvement
// only when it lowers the objective by more than this (relative), which
// also bounds the number of moves.
constexpr double kTolerance = 1e-12;

// (energy, bottleneck) improves on (best_energy, best_bottleneck): a lower
// bottleneck, or the same one with a lower objective (the spread term
// unloads the runner-up chips before the bottleneck can fall).
bool Better(double energy, double bottleneck, double best_energy,
            double best_bottleneck) {
  return bottleneck < best_bottleneck * (1 - kTolerance) ||
         (bottleneck <= best_bottleneck * (1 + kTolerance) &&
          energy < best_energy * (1 - kTolerance));
}

}  // namespace

absl::Status ValidatePolishOptions(const PolishOptions& o) {
  if (o.max_block < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("polish max_block ", o.max_block, " is not >= 1"));
  }
  if (o.max_passes < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("polish max_passes ", o.max_passes, " is not >= 1"));
  }
  return absl::OkStatus();
}

Polisher::Polisher(const Problem& problem, const PolishOptions& options)
    : problem_(problem),
      options_(options),
      eval_(problem),
      state_(std::make_unique<anneal::State>(problem)),
      seen_(problem.num_nodes(), 0) {}

Polisher::~Polisher() = default;

// Commits the logged moves when they keep memory and no-skipping and are
// Better than the state before them; otherwise undoes them.
bool Polisher::KeepIfBetter() {
  double energy = 0, bottleneck = 0;
  int hot;
  const bool valid = state_->LoggedMovesValid();
  if (valid) energy = state_->Energy(&bottleneck, &hot);
  if (!valid || !Better(energy, bottleneck, energy_, bottleneck_)) {
    state_->Undo();
    return false;
  }
  energy_ = energy;
  bottleneck_ = bottleneck;
  state_->Commit();
  ++moves_;
  return true;
}

bool Polisher::SinglePass() {
  bool any = false;
  for (int v = 0; v < problem_.num_nodes(); ++v) {
    if (Halted()) return any;
    int lo, hi;
    if (!state_->Range(v, &lo, &hi)) continue;
    for (int c = lo; c <= hi; ++c) {
      if (c == state_->chip(v)) continue;
      state_->MoveUnit(v, c);
      if (KeepIfBetter()) any = true;
    }
  }
  return any;
}

// Grows a block from `start` on chip c breadth-first through its
// neighbours on c (inputs when moving to c + 1, readers when moving to
// c - 1), each moved as soon as its edges allow, and keeps the best
// improving prefix. True when it kept one.
bool Polisher::ShiftBlock(int start, int c, int d) {
  const Graph& g = problem_.graph();
  if (++epoch_ == std::numeric_limits<int>::max()) {  // a long-lived polisher
    std::fill(seen_.begin(), seen_.end(), 0);
    epoch_ = 1;
  }
  queue_.assign(1, start);
  seen_[start] = epoch_;
  moved_.clear();
  int best = 0;
  double best_energy = energy_, best_bottleneck = bottleneck_;
  for (size_t head = 0; head < queue_.size() &&
                        static_cast<int>(moved_.size()) < options_.max_block;
       ++head) {
    const int v = queue_[head];
    int lo, hi;
    if (state_->chip(v) != c || !state_->Range(v, &lo, &hi) || c + d < lo ||
        c + d > hi) {
      continue;
    }
    state_->MoveUnit(v, c + d);
    moved_.push_back(v);
    double e, b;
    if (state_->LoggedMovesValid()) {
      int hot;
      e = state_->Energy(&b, &hot);
      if (Better(e, b, best_energy, best_bottleneck)) {
        best = static_cast<int>(moved_.size());
        best_energy = e;
        best_bottleneck = b;
      }
    }
    for (int u : d > 0 ? g.predecessors(v) : g.successors(v)) {
      if (seen_[u] != epoch_ && state_->chip(u) == c) {
        seen_[u] = epoch_;
        queue_.push_back(u);
      }
    }
  }
  state_->Undo();
  if (best == 0) return false;
  // The same moves in the same order pass the same edge checks again.
  for (int i = 0; i < best; ++i) state_->MoveUnit(moved_[i], c + d);
  state_->Commit();
  energy_ = best_energy;
  bottleneck_ = best_bottleneck;
  ++moves_;
  return true;
}

void Polisher::Frontier(int c, int d, std::vector<int>* out) const {
  const Graph& g = problem_.graph();
  out->clear();
  for (int v : state_->nodes_on(c)) {
    bool frontier = true;
    for (int w : d > 0 ? g.successors(v) : g.predecessors(v)) {
      if (state_->chip(w) == c) frontier = false;
    }
    if (frontier) out->push_back(v);
  }
}

bool Polisher::BlockPass() {
  if (options_.max_block < 2) return false;  // the single pass covers it
  const int chips = problem_.num_chips();
  bool any = false;
  for (int c = 0; c < chips; ++c) {
    for (int d : {1, -1}) {
      if (c + d < 0 || c + d >= chips) continue;
      Frontier(c, d, &starts_);
      for (int v : starts_) {
        if (Halted()) return any;
        if (state_->chip(v) == c && ShiftBlock(v, c, d)) any = true;
      }
    }
  }
  return any;
}

bool Polisher::SwapPass() {
  if (!options_.swaps) return false;
  bool any = false;
  for (int c = 0; c + 1 < problem_.num_chips(); ++c) {
    Frontier(c, 1, &starts_);
    Frontier(c + 1, -1, &ups_);
    for (int down : starts_) {
      for (int up : ups_) {
        if (Halted()) return any;
        // Either may have moved with an earlier swap of this pass.
        if (state_->chip(down) != c || state_->chip(up) != c + 1 ||
            state_->SameUnit(up, down)) {
          continue;
        }
        int lo, hi;
        if (!state_->Range(down, &lo, &hi) || hi < c + 1) continue;
        state_->MoveUnit(down, c + 1);
        if (!state_->Range(up, &lo, &hi) || lo > c) {
          state_->Undo();
          continue;
        }
        state_->MoveUnit(up, c);
        if (KeepIfBetter()) {
          any = true;
          break;  // `down` is on c + 1 now
        }
      }
    }
  }
  return any;
}

bool Polisher::Halted() {
  if (halted_) return true;
  if (stop_ != nullptr && stop_->stop_requested()) return halted_ = true;
  // The clock every 64 polls: a poll is a few moves, microseconds.
  if (++polls_ % 64 == 0 && absl::Now() >= deadline_) return halted_ = true;
  return false;
}

absl::StatusOr<Assignment> Polisher::Run(absl::Span<const int> placement,
                                         const StopToken* stop,
                                         absl::Time deadline) {
  if (absl::Status s = ValidatePolishOptions(options_); !s.ok()) return s;
  moves_ = 0;
  if (static_cast<int>(placement.size()) != problem_.num_nodes() ||
      !eval_.IsValid(placement)) {
    return absl::InvalidArgumentError(
        "polish needs a valid placement of every node");
  }
  const double before = eval_.Score(placement).throughput_per_s;
  stop_ = stop;
  deadline_ = deadline;
  halted_ = false;
  polls_ = 0;
  state_->Load(placement);
  int hot;
  energy_ = state_->Energy(&bottleneck_, &hot);
  for (int pass = 0; pass < options_.max_passes; ++pass) {
    const bool single = SinglePass();
    const bool block = BlockPass();
    const bool swap = SwapPass();
    if (stop != nullptr && stop->stop_requested()) {
      return absl::CancelledError("polish stopped");
    }
    if (halted_ || (!single && !block && !swap)) break;
  }
  Assignment out = state_->placement();
  // The evaluator, not the drifting incremental figures, decides.
  if (moves_ == 0 || !eval_.IsValid(out) ||
      eval_.Score(out).throughput_per_s < before) {
    return Assignment(placement.begin(), placement.end());
  }
  return out;
}

absl::StatusOr<Assignment> Polish(const Problem& problem,
                                  absl::Span<const int> placement,
                                  const StopToken* stop,
                                  const PolishOptions& options,
                                  absl::Time deadline) {
  Polisher polisher(problem, options);
  return polisher.Run(placement, stop, deadline);
}

}  // namespace mcmpart
