#include "solver/repair/space.h"

#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "gecode/minimodel.hh"
#include "gecode/search.hh"
#include "solver/repair/memory_propagator.h"

namespace mcmpart::repair {

using Gecode::BoolVar;
using Gecode::BoolVarArgs;
using Gecode::IntArgs;
using Gecode::IntVar;
using Gecode::IntVarArgs;
using Gecode::Space;

namespace {

// Stops a search on the wall-clock deadline, the failure budget or the
// caller's stop token, and remembers which.
class LimitStop : public Gecode::Search::Stop {
 public:
  LimitStop(absl::Time deadline, int64_t fail_budget, const StopToken* token)
      : deadline_(deadline), fail_budget_(fail_budget), token_(token) {}

  bool stop(const Gecode::Search::Statistics& s,
            const Gecode::Search::Options&) override {
    if (token_ != nullptr && token_->stop_requested()) {
      cancelled = true;
      return true;
    }
    if (fail_budget_ > 0 && static_cast<int64_t>(s.fail) >= fail_budget_) {
      fail_hit = true;
      return true;
    }
    // The clock is read every few nodes: one node takes microseconds.
    if ((calls_++ & 7) == 0 && absl::Now() >= deadline_) {
      time_hit = true;
      return true;
    }
    return false;
  }

  bool cancelled = false;
  bool fail_hit = false;
  bool time_hit = false;

 private:
  absl::Time deadline_;
  int64_t fail_budget_;
  const StopToken* token_;
  uint64_t calls_ = 0;
};

}  // namespace

RepairSpace::RepairSpace(const Instance& in, const SearchSpec& spec)
    : inst_(&in), x_(*this, in.n) {
  if (!PostDomains(spec)) {
    cost_ = IntVar(*this, 0, 0);
    return;
  }
  PostRelations(spec.families);
  PostDistance(spec);
  PostBranching();
}

RepairSpace::RepairSpace(RepairSpace& s) : Space(s), inst_(s.inst_) {
  x_.update(*this, s.x_);
  cost_.update(*this, s.cost_);
}

Space* RepairSpace::copy() { return new RepairSpace(*this); }

void RepairSpace::constrain(const Space& best) {
  Gecode::rel(*this, cost_, Gecode::IRT_LE,
              static_cast<const RepairSpace&>(best).cost_.val());
}

std::vector<int> RepairSpace::Placement() const {
  std::vector<int> p(inst_->n);
  for (int v = 0; v < inst_->n; ++v) p[v] = x_[v].val();
  return p;
}

bool RepairSpace::PostDomains(const SearchSpec& spec) {
  const Instance& in = *inst_;
  const Families& f = spec.families;
  for (int v = 0; v < in.n; ++v) {
    int l = 0, h = in.chips - 1;
    // The precomputed bounds assume every family (use_all_chips fixes a
    // unique sink to the last chip), so relaxed models start from pins.
    if (f.pins && f.colocation && f.hops && f.use_all) {
      l = in.lo[v];
      h = in.hi[v];
    } else if (f.pins && in.problem->pin(v) >= 0) {
      l = h = in.problem->pin(v);
    }
    if (spec.fixed != nullptr && (*spec.fixed)[v] >= 0) {
      const int c = (*spec.fixed)[v];
      if (c < l || c > h) {
        l = 1;
        h = 0;
      } else {
        l = h = c;
      }
    }
    if (l > h) {
      // An empty domain cannot be built; fail the space instead.
      x_[v] = IntVar(*this, 0, 0);
      fail();
      continue;
    }
    x_[v] = IntVar(*this, l, h);
  }
  return !failed();
}

void RepairSpace::PostRelations(const Families& f) {
  const Instance& in = *inst_;
  const Graph& g = *in.graph;
  for (int u = 0; u < in.n; ++u) {
    for (int v : g.successors(u)) {
      Gecode::rel(*this, x_[u], Gecode::IRT_LQ, x_[v]);
      if (f.hops && in.hops < in.chips - 1) {
        Gecode::linear(*this, IntArgs({1, -1}), IntVarArgs({x_[v], x_[u]}),
                       Gecode::IRT_LQ, in.hops);
      }
    }
  }
  if (f.colocation) {
    for (const std::vector<int>& group : in.problem->colocation_groups()) {
      for (size_t i = 1; i < group.size(); ++i) {
        Gecode::rel(*this, x_[group[0]], Gecode::IRT_EQ, x_[group[i]]);
      }
    }
  }
  Gecode::ViewArray<Gecode::Int::IntView> views(*this, IntVarArgs(x_));
  if (MemoryProp::Post(*this, views, &in, f.memory, f.use_all && in.use_all) !=
      Gecode::ES_OK) {
    fail();
  }
}

// Distance: sum of w(v) * [x(v) != q(v)], within the spec's bounds.
void RepairSpace::PostDistance(const SearchSpec& spec) {
  const Instance& in = *inst_;
  IntArgs coeffs;
  BoolVarArgs differs;
  int64_t total = 0;
  for (int v = 0; v < in.n; ++v) {
    if (in.w[v] <= 0) continue;
    BoolVar d(*this, 0, 1);
    Gecode::rel(*this, x_[v], Gecode::IRT_NQ, in.q[v], d);
    coeffs << static_cast<int>(in.w[v]);
    differs << d;
    total += in.w[v];
  }
  cost_ = IntVar(*this, 0, static_cast<int>(total));
  if (differs.size() > 0) {
    Gecode::linear(*this, coeffs, differs, Gecode::IRT_EQ, cost_);
  }
  if (spec.bound > 0) {
    Gecode::rel(*this, cost_, Gecode::IRT_LE, static_cast<int>(spec.bound));
  }
  if (spec.lower > 0) {
    Gecode::rel(*this, cost_, Gecode::IRT_GQ, static_cast<int>(spec.lower));
  }
}

// Branching: in.order (weighted nodes by resident memory, largest first,
// then free ones); the candidate's chip first, else the warm start's, else
// the chip nearest the candidate's.
void RepairSpace::PostBranching() {
  const Instance* inst = inst_;
  IntVarArgs ordered;
  for (int v : inst->order) ordered << x_[v];
  Gecode::branch(
      *this, ordered, Gecode::INT_VAR_NONE(),
      Gecode::INT_VAL(
          [inst](const Space&, IntVar x, int i) {
            const int v = inst->order[i];
            const int want = inst->q[v];
            const int guide = inst->guide.empty() ? -1 : inst->guide[v];
            if (want >= 0 && x.in(want)) return want;
            if (guide >= 0 && x.in(guide)) return guide;
            if (want < 0) return x.min();
            int best = x.min();
            for (Gecode::IntVarValues it(x); it(); ++it) {
              if (std::abs(it.val() - want) < std::abs(best - want)) {
                best = it.val();
              }
            }
            return best;
          },
          [](Space& home, unsigned int a, IntVar x, int, int val) {
            if (a == 0) {
              Gecode::rel(home, x, Gecode::IRT_EQ, val);
            } else {
              Gecode::rel(home, x, Gecode::IRT_NQ, val);
            }
          }));
}

SearchResult RunSearch(const Instance& in, const SearchSpec& spec,
                       absl::Time deadline, int64_t fail_budget,
                       const StopToken* token, Evaluator* eval) {
  SearchResult r;
  const bool first_only = spec.first_only;
  auto root = std::make_unique<RepairSpace>(in, spec);
  if (root->status() == Gecode::SS_FAILED) {
    r.complete = true;
    return r;
  }
  LimitStop stop(deadline, fail_budget, token);
  Gecode::Search::Options opts;
  opts.threads = 1;
  opts.stop = &stop;
  opts.clone = false;  // the engine owns root from here
  Gecode::BAB<RepairSpace> engine(root.release(), opts);
  while (RepairSpace* s = engine.next()) {
    std::unique_ptr<RepairSpace> sol(s);
    std::vector<int> p = sol->Placement();
    // Memory was rounded conservatively, so this holds by construction;
    // checking costs O(V + E) per solution and guards every other family.
    if (eval != nullptr && !eval->IsValid(p)) continue;
    if (!r.found) r.first_found = absl::Now();
    r.found = true;
    r.best = std::move(p);
    r.cost = sol->Cost();
    if (first_only) break;
  }
  r.fails = static_cast<int64_t>(engine.statistics().fail);
  r.complete = !engine.stopped() && !(first_only && r.found);
  r.cancelled = stop.cancelled;
  r.fail_hit = stop.fail_hit;
  r.time_hit = stop.time_hit;
  return r;
}

}  // namespace mcmpart::repair
