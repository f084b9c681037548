// Constraint repair with Gecode: the nearest valid placement to a candidate.
//
// The model, the branching and the limits are described in docs/repair.md;
// the parts live in solver/repair/: the pre-checks (checks.h, bounds.h),
// the integer instance (instance.h), the warm start (warm_start.h), the
// min-cut lower bound (min_cut.h, max_flow.h), the Gecode model and its
// propagator (space.h, memory_propagator.h), the driver with its search
// phases (search.h) and the infeasibility explanations (explain.h).
#include "solver/repair.h"

#include <exception>
#include <new>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gecode/kernel.hh"
#include "solver/evaluator.h"
#include "solver/repair/bounds.h"
#include "solver/repair/search.h"

namespace mcmpart {

absl::Status CheckFeasibility(const Problem& problem) {
  return repair::CheckAndBound(problem).status();
}

absl::StatusOr<RepairResult> Repair(const Problem& problem,
                                    absl::Span<const int> candidate,
                                    absl::Span<const double> weights,
                                    const RepairOptions& options) {
  // Gecode reports bad values and exhausted memory with exceptions; none may
  // leave the module.
  try {
    return repair::RunRepair(problem, candidate, weights, options);
  } catch (const Gecode::Exception& e) {
    return absl::InternalError(absl::StrCat("repair: Gecode ", e.what()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("repair: out of memory");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("repair: ", e.what()));
  }
}

v1::RepairReport MakeRepairReport(const Problem& problem,
                                  const RepairResult& result) {
  v1::RepairReport report;
  *report.mutable_assignment() =
      AssignmentToProto(problem.graph(), result.placement).assignment();
  report.set_distance(result.distance);
  report.set_changed_nodes(result.changed_nodes);
  report.set_optimal(result.optimal);
  report.set_solve_s(absl::ToDoubleSeconds(result.solve_time));
  report.set_limit(result.cancelled        ? "cancelled"
                   : result.time_limit_hit ? "time"
                   : result.fail_limit_hit ? "failures"
                                           : "");
  *report.mutable_evaluation() = Evaluator(problem).Evaluate(result.placement);
  return report;
}

}  // namespace mcmpart
