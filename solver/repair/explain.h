// Messages for infeasibility that the pre-checks do not catch
// (docs/repair.md, "Messages"): proved by the cut's relaxation, or by the
// complete search.
#ifndef MCMPART_SOLVER_REPAIR_EXPLAIN_H_
#define MCMPART_SOLVER_REPAIR_EXPLAIN_H_

#include <string>

#include "absl/time/time.h"
#include "solver/problem.h"
#include "solver/repair/instance.h"
#include "solver/strategy.h"

namespace mcmpart::repair {

// The cut proved that pins, colocation, acyclic dataflow and max_hops
// contradict each other whatever the memory.
std::string ExplainCutInfeasible(const Problem& problem);

// Search proved there is no placement; names the families that take part
// and, by dropping each in turn (200 ms and 20,000 failures each, within
// `deadline` and `stop`), those whose removal alone makes a placement
// possible, plus the memory fill.
std::string ExplainInfeasible(const Problem& problem, const Instance& in,
                              absl::Time deadline, const StopToken* stop);

}  // namespace mcmpart::repair

#endif  // MCMPART_SOLVER_REPAIR_EXPLAIN_H_
