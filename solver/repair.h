// Constraint repair: the nearest valid placement to a candidate.
//
// Given a candidate q (any assignment, possibly invalid or partial) and
// weights w(v) >= 0, finds a valid p minimising sum of w(v) * [p(v) != q(v)]
// (docs/problem.md, "Repair") with Gecode.
#ifndef MCMPART_SOLVER_REPAIR_H_
#define MCMPART_SOLVER_REPAIR_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"

namespace mcmpart {

struct RepairOptions {
  // Wall-time limit for the whole repair.
  absl::Duration time_limit = absl::Seconds(2);
  // Search failures before giving up; 0 = no limit.
  int64_t fail_limit = 0;
  // Polled during search; may be null.
  const StopToken* stop = nullptr;
};

struct RepairResult {
  Assignment placement;   // valid
  double distance = 0;    // sum of w(v) * [p(v) != q(v)]
  int changed_nodes = 0;  // nodes with p(v) != q(v) (free nodes not counted)
  bool optimal = false;   // the distance is proved minimal
  // Set when a limit ended the search before the proof.
  bool time_limit_hit = false;
  bool fail_limit_hit = false;
  bool cancelled = false;
  absl::Duration solve_time;
  // From the start of Repair until the first valid placement was known
  // (the candidate itself, the warm start or the search's first solution).
  absl::Duration first_solution_time;
  // Failed nodes of the Gecode search (0 when no search ran).
  int64_t failures = 0;
};

// Cheap necessary conditions, checked before any search: a node whose own
// param_bytes + output_bytes exceed every chip's SRAM, total resident memory
// over the sum of all SRAM, pins that contradict an edge or max_hops, a
// colocation group with conflicting pins, and so on. FAILED_PRECONDITION with
// a message a user can act on (which constraint, which nodes, which numbers).
absl::Status CheckFeasibility(const Problem& problem);

// Repairs `candidate` (size num_nodes; -1 = free, weight 0). `weights`
// empty means 1 for every node; else size num_nodes, each finite and >= 0.
// Errors: INVALID_ARGUMENT for malformed candidate or weights;
// FAILED_PRECONDITION when no valid placement exists (explained);
// DEADLINE_EXCEEDED when a limit ends the search before any valid placement
// is found; CANCELLED when `stop` ended it first. Thread-safe: any number of
// repairs may run at once on one Problem.
absl::StatusOr<RepairResult> Repair(const Problem& problem,
                                    absl::Span<const int> candidate,
                                    absl::Span<const double> weights,
                                    const RepairOptions& options = {});

// What users see of a repair (the CLI's --json, the Repair RPC): the
// placement by node name, distance, changed nodes, proof, time, the limit
// that ended the search ("", "time", "failures", "cancelled") and the
// placement's evaluation.
v1::RepairReport MakeRepairReport(const Problem& problem,
                                  const RepairResult& result);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_REPAIR_H_
