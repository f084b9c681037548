// The memory and no-skipping propagator of the repair's Gecode model
// (docs/repair.md, "The Gecode model").
//
// Reasons on the domain bounds lo(v), hi(v) of every x[v]:
//  * mandatory load M(c): residents fixed on c, plus the output of every u
//    that certainly waits on c (hi(u) < c <= max over successors of lo);
//    M(c) > cap(c) fails;
//  * value pruning: c leaves dom(x[v]) when placing v there would add more
//    than the chip's slack (v's resident, the outputs of predecessors that
//    would then have to wait on c, v's own output on later chips);
//  * energy on prefixes and suffixes of the chips: the nodes that must be on
//    chips 0..c (hi(v) <= c) plus the mandatory loads there must fit the
//    chips' total, and a node that would break that total if put on 0..c
//    must go later (symmetrically for suffixes);
//  * no skipping: every chip below max lo(v) (all chips with use_all_chips)
//    needs a node that can still go there; a chip that no node can take
//    bounds every node below it.
#ifndef MCMPART_SOLVER_REPAIR_MEMORY_PROPAGATOR_H_
#define MCMPART_SOLVER_REPAIR_MEMORY_PROPAGATOR_H_

#include <cstddef>
#include <cstdint>

#include "gecode/int.hh"
#include "solver/repair/instance.h"

namespace mcmpart::repair {

class MemoryProp : public Gecode::Propagator {
 public:
  // Posts the propagator on x (one view per node of `inst`): memory with
  // transit buffers when `memory`, no skipping always, every chip in use
  // when `use_all`.
  static Gecode::ExecStatus Post(Gecode::Home home,
                                 Gecode::ViewArray<Gecode::Int::IntView>& x,
                                 const Instance* inst, bool memory,
                                 bool use_all);

  MemoryProp(Gecode::Space& home, MemoryProp& p);
  Gecode::Propagator* copy(Gecode::Space& home) override;
  Gecode::PropCost cost(const Gecode::Space&,
                        const Gecode::ModEventDelta&) const override;
  void reschedule(Gecode::Space& home) override;
  size_t dispose(Gecode::Space& home) override;
  Gecode::ExecStatus propagate(Gecode::Space& home,
                               const Gecode::ModEventDelta&) override;

 private:
  // The loads one memory pass reasons on, in the pass's region.
  struct Loads {
    int* lo;
    int* hi;
    int* maxlo;  // max lo over successors, -1 if none
    int64_t* slack;
    int64_t* slack_pre;  // slack of chips 0..c together
    int64_t* slack_suf;  // slack of chips c..C-1 together
    int64_t min_slack;
  };

  MemoryProp(Gecode::Home home, Gecode::ViewArray<Gecode::Int::IntView>& x,
             const Instance* inst, bool memory, bool use_all);

  Gecode::ExecStatus PropagateMemory(Gecode::Space& home, bool* modified);
  // Fills `loads`; ES_FAILED when a chip, a prefix or a suffix overflows.
  Gecode::ExecStatus ComputeLoads(Gecode::Region& region, Loads* loads) const;
  // Energy bounds and value pruning for one unfixed node.
  Gecode::ExecStatus PruneNode(Gecode::Space& home, int v, const Loads& loads,
                               bool* modified);
  // Whether putting v on chip c would overfill a chip.
  bool Overfills(int v, int c, const Loads& loads) const;
  Gecode::ExecStatus PropagateNoSkip(Gecode::Space& home, bool* modified);

  Gecode::ViewArray<Gecode::Int::IntView> x_;
  const Instance* inst_;
  bool memory_;
  bool use_all_;
};

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_MEMORY_PROPAGATOR_H_
