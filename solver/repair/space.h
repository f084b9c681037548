// The repair's Gecode model: one Space subclass, and one branch-and-bound
// run over it within the caller's limits (docs/repair.md, "The Gecode
// model", "Branching" and "Limits").
#ifndef MCMPART_SOLVER_REPAIR_SPACE_H_
#define MCMPART_SOLVER_REPAIR_SPACE_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "gecode/int.hh"
#include "solver/evaluator.h"
#include "solver/repair/instance.h"
#include "solver/strategy.h"

namespace mcmpart::repair {

// Which constraint families a model includes. Relaxed copies explain
// infeasibility proved by search.
struct Families {
  bool memory = true;
  bool hops = true;
  bool pins = true;
  bool colocation = true;
  bool use_all = true;
};

// One search: which families, which bounds on the distance, which nodes are
// fixed (large-neighbourhood search fixes all but a window).
struct SearchSpec {
  Families families;
  int64_t bound = 0;  // distance < bound; 0 = no bound
  int64_t lower = 0;  // distance >= lower (a proved lower bound)
  bool first_only = false;
  const std::vector<int>* fixed = nullptr;  // -1 = free
};

// x[v] in lo(v)..hi(v) per node; edges, max_hops and colocation as binary
// relations; memory and no-skipping in MemoryProp; the distance as a linear
// sum of reified disagreements, minimised by branch and bound.
class RepairSpace : public Gecode::Space {
 public:
  // Posts the model of `spec` (families, distance bounds, fixed nodes).
  RepairSpace(const Instance& in, const SearchSpec& spec);
  RepairSpace(RepairSpace& s);

  Gecode::Space* copy() override;
  void constrain(const Gecode::Space& best) override;

  std::vector<int> Placement() const;
  int64_t Cost() const { return cost_.val(); }

 private:
  // One variable per node; false when a domain is empty (the space failed).
  bool PostDomains(const SearchSpec& spec);
  void PostRelations(const Families& f);
  void PostDistance(const SearchSpec& spec);
  void PostBranching();

  const Instance* inst_;
  Gecode::IntVarArray x_;
  Gecode::IntVar cost_;
};

struct SearchResult {
  bool found = false;
  std::vector<int> best;
  int64_t cost = 0;
  bool complete = false;  // the search space was exhausted
  bool cancelled = false;
  bool fail_hit = false;
  bool time_hit = false;
  int64_t fails = 0;
  absl::Time first_found;  // when the first solution arrived
};

// Branch and bound per `spec` (satisfaction when spec.first_only) until
// `deadline`, `fail_budget` failures (0 = none) or `token`. Solutions that
// `eval` (may be null) rejects are skipped.
SearchResult RunSearch(const Instance& in, const SearchSpec& spec,
                       absl::Time deadline, int64_t fail_budget,
                       const StopToken* token, Evaluator* eval);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_SPACE_H_
