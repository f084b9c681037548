#include "solver/repair/memory_propagator.h"

#include <algorithm>
#include <cstdint>

#include "solver/graph.h"

namespace mcmpart::repair {

using Gecode::ExecStatus;
using Gecode::Home;
using Gecode::ModEventDelta;
using Gecode::PropCost;
using Gecode::Space;
using Gecode::ViewArray;
using Gecode::Int::IntView;

ExecStatus MemoryProp::Post(Home home, ViewArray<IntView>& x,
                            const Instance* inst, bool memory, bool use_all) {
  (void)new (home) MemoryProp(home, x, inst, memory, use_all);
  return Gecode::ES_OK;
}

MemoryProp::MemoryProp(Home home, ViewArray<IntView>& x, const Instance* inst,
                       bool memory, bool use_all)
    : Propagator(home), x_(x), inst_(inst), memory_(memory), use_all_(use_all) {
  x_.subscribe(home, *this, Gecode::Int::PC_INT_DOM);
}

MemoryProp::MemoryProp(Space& home, MemoryProp& p)
    : Propagator(home, p),
      inst_(p.inst_),
      memory_(p.memory_),
      use_all_(p.use_all_) {
  x_.update(home, p.x_);
}

Gecode::Propagator* MemoryProp::copy(Space& home) {
  return new (home) MemoryProp(home, *this);
}

PropCost MemoryProp::cost(const Space&, const ModEventDelta&) const {
  return PropCost::linear(PropCost::HI, x_.size());
}

void MemoryProp::reschedule(Space& home) {
  x_.reschedule(home, *this, Gecode::Int::PC_INT_DOM);
}

size_t MemoryProp::dispose(Space& home) {
  x_.cancel(home, *this, Gecode::Int::PC_INT_DOM);
  (void)Propagator::dispose(home);
  return sizeof(*this);
}

ExecStatus MemoryProp::ComputeLoads(Gecode::Region& region,
                                    Loads* loads) const {
  const Instance& in = *inst_;
  const Graph& g = *in.graph;
  const int n = in.n;
  const int chips = in.chips;
  int* lo = loads->lo = region.alloc<int>(n);
  int* hi = loads->hi = region.alloc<int>(n);
  int* maxlo = loads->maxlo = region.alloc<int>(n);
  for (int v = 0; v < n; ++v) {
    lo[v] = x_[v].min();
    hi[v] = x_[v].max();
  }
  int64_t* mand = region.alloc<int64_t>(chips + 1);
  std::fill(mand, mand + chips + 1, 0);
  int64_t* diff = region.alloc<int64_t>(chips + 2);
  std::fill(diff, diff + chips + 2, 0);
  int64_t* hi_res = region.alloc<int64_t>(chips);  // unfixed res by hi
  int64_t* lo_res = region.alloc<int64_t>(chips);  // unfixed res by lo
  std::fill(hi_res, hi_res + chips, 0);
  std::fill(lo_res, lo_res + chips, 0);
  for (int u = 0; u < n; ++u) {
    int m = -1;
    for (int s : g.successors(u)) m = std::max(m, lo[s]);
    maxlo[u] = m;
    if (lo[u] == hi[u]) {
      mand[lo[u]] += in.res[u];
    } else {
      hi_res[hi[u]] += in.res[u];
      lo_res[lo[u]] += in.res[u];
    }
    if (m > hi[u] && in.out[u] > 0) {
      diff[hi[u] + 1] += in.out[u];
      diff[m + 1] -= in.out[u];
    }
  }
  int64_t* slack = loads->slack = region.alloc<int64_t>(chips);
  int64_t run = 0;
  loads->min_slack = kInf;
  for (int c = 0; c < chips; ++c) {
    run += diff[c];
    mand[c] += run;
    slack[c] = in.cap[c] - mand[c];
    if (slack[c] < 0) return Gecode::ES_FAILED;
    loads->min_slack = std::min(loads->min_slack, slack[c]);
  }
  // Energy on prefixes (chips 0..c) and suffixes (chips c..C-1).
  int64_t* slack_pre = loads->slack_pre = region.alloc<int64_t>(chips);
  int64_t* slack_suf = loads->slack_suf = region.alloc<int64_t>(chips);
  int64_t acc = 0;
  for (int c = 0; c < chips; ++c) {
    acc += mand[c] + hi_res[c];
    slack_pre[c] = in.cap_prefix[c] - acc;
    if (slack_pre[c] < 0) return Gecode::ES_FAILED;
  }
  acc = 0;
  for (int c = chips - 1; c >= 0; --c) {
    acc += mand[c] + lo_res[c];
    slack_suf[c] = in.cap_suffix[c] - acc;
    if (slack_suf[c] < 0) return Gecode::ES_FAILED;
  }
  return Gecode::ES_OK;
}

bool MemoryProp::Overfills(int v, int c, const Loads& loads) const {
  const Instance& in = *inst_;
  const Graph& g = *in.graph;
  const int* hi = loads.hi;
  const int* maxlo = loads.maxlo;
  const int64_t* slack = loads.slack;
  int64_t extra = in.res[v];
  for (int u : g.predecessors(v)) {
    if (hi[u] < c && maxlo[u] < c) extra += in.out[u];
  }
  bool drop = extra > slack[c];
  // v's output would wait on chips (c, min(hi, maxlo)].
  if (!drop && in.out[v] > 0) {
    const int end = std::min(hi[v], maxlo[v]);
    for (int k = c + 1; k <= end && !drop; ++k) {
      drop = in.out[v] > slack[k];
    }
  }
  // With max_hops > 1 a predecessor's output would also wait on the
  // chips between it and c; each such output alone must fit.
  if (!drop && in.hops > 1) {
    for (int u : g.predecessors(v)) {
      const int from = std::max(hi[u], maxlo[u]) + 1;
      for (int k = from; k < c && !drop; ++k) drop = in.out[u] > slack[k];
      if (drop) break;
    }
  }
  return drop;
}

ExecStatus MemoryProp::PruneNode(Space& home, int v, const Loads& loads,
                                 bool* modified) {
  const int lo = loads.lo[v];
  const int hi = loads.hi[v];
  const int64_t r = inst_->res[v];
  // Prefix energy: v on a chip <= c (c < hi) adds r to prefix c.
  int new_lo = lo;
  for (int c = hi - 1; c >= lo; --c) {
    if (loads.slack_pre[c] < r) {
      new_lo = c + 1;
      break;
    }
  }
  int new_hi = hi;
  for (int c = lo + 1; c <= hi; ++c) {
    if (loads.slack_suf[c] < r) {
      new_hi = c - 1;
      break;
    }
  }
  if (new_lo > new_hi) return Gecode::ES_FAILED;
  if (new_lo > lo) {
    GECODE_ME_CHECK(x_[v].gq(home, new_lo));
    *modified = true;
  }
  if (new_hi < hi) {
    GECODE_ME_CHECK(x_[v].lq(home, new_hi));
    *modified = true;
  }
  if (inst_->max_extra[v] <= loads.min_slack) return Gecode::ES_OK;
  // Per-chip check of each remaining value.
  const int vlo = x_[v].min();
  const int vhi = x_[v].max();
  for (int c = vlo; c <= vhi; ++c) {
    if (!x_[v].in(c)) continue;
    if (Overfills(v, c, loads)) {
      GECODE_ME_CHECK(x_[v].nq(home, c));
      *modified = true;
    }
  }
  return Gecode::ES_OK;
}

ExecStatus MemoryProp::PropagateMemory(Space& home, bool* modified) {
  Gecode::Region region;
  Loads loads;
  if (ComputeLoads(region, &loads) != Gecode::ES_OK) return Gecode::ES_FAILED;
  for (int v = 0; v < inst_->n; ++v) {
    if (loads.lo[v] == loads.hi[v]) continue;
    const ExecStatus s = PruneNode(home, v, loads, modified);
    if (s != Gecode::ES_OK) return s;
  }
  return Gecode::ES_OK;
}

ExecStatus MemoryProp::PropagateNoSkip(Space& home, bool* modified) {
  const int n = inst_->n;
  const int chips = inst_->chips;
  Gecode::Region region;
  int* support = region.alloc<int>(chips);
  int* who = region.alloc<int>(chips);
  std::fill(support, support + chips, 0);
  int must = 0;  // chips 0..must-1 must be used
  for (int v = 0; v < n; ++v) must = std::max(must, x_[v].min() + 1);
  if (use_all_) must = chips;
  for (int v = 0; v < n; ++v) {
    for (Gecode::Int::ViewValues<IntView> it(x_[v]); it(); ++it) {
      ++support[it.val()];
      who[it.val()] = v;
    }
  }
  for (int c = 0; c < chips; ++c) {
    if (support[c] == 0) {
      if (c < must) return Gecode::ES_FAILED;
      // No node can take chip c, so no chip after it may be used.
      for (int v = 0; v < n; ++v) {
        if (x_[v].max() >= c) {
          GECODE_ME_CHECK(x_[v].lq(home, c - 1));
          *modified = true;
        }
      }
      break;
    }
    if (support[c] == 1 && c < must && !x_[who[c]].assigned()) {
      GECODE_ME_CHECK(x_[who[c]].eq(home, c));
      *modified = true;
    }
  }
  return Gecode::ES_OK;
}

ExecStatus MemoryProp::propagate(Space& home, const ModEventDelta&) {
  bool modified = false;
  if (memory_) {
    ExecStatus s = PropagateMemory(home, &modified);
    if (s != Gecode::ES_OK) return s;
  }
  ExecStatus s = PropagateNoSkip(home, &modified);
  if (s != Gecode::ES_OK) return s;
  if (!modified && x_.assigned()) return home.ES_SUBSUMED(*this);
  return modified ? Gecode::ES_NOFIX : Gecode::ES_FIX;
}

}  // namespace mcmpart::repair
