// A v1::ProblemSpec (graph message or ONNX bytes, preset or hardware
// message, constraints) turned into a Problem: the one place that does it,
// for the server's requests and the command line's flags alike, so that both
// accept the same inputs with the same messages.
#ifndef MCMPART_SOLVER_PROBLEM_SPEC_H_
#define MCMPART_SOLVER_PROBLEM_SPEC_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "solver/problem.h"

namespace mcmpart {

struct ProblemSpecOptions {
  // Largest graph accepted, in nodes (after an ONNX import).
  int max_nodes = 1'000'000;
  // Put before the message of an error in the graph ("PATH: ..."); empty
  // for none. ONNX import errors always start "problem.onnx_model: ".
  std::string graph_label;
};

struct ResolvedProblem {
  std::shared_ptr<const Problem> problem;
  // A digest of everything that defines the problem (the graph message, or
  // the ONNX bytes and their import options; the hardware; the
  // constraints), equal for equal problems in every process of the same
  // build: it keys result caches shared between processes. Deterministic
  // serialization, two independent 64-bit hashes and the length.
  std::string digest;
  // What the ONNX import could not count without failing.
  std::vector<std::string> warnings;
};

// Errors: INVALID_ARGUMENT for no graph or no hardware, a malformed graph
// (names the node), a graph over max_nodes, bad ONNX bytes or options,
// chips outside 1..kMaxChips or given with a hardware message, malformed
// hardware or constraints; NOT_FOUND for an unknown preset (lists them);
// FAILED_PRECONDITION for use_all_chips with fewer nodes than chips.
absl::StatusOr<ResolvedProblem> ProblemFromSpec(
    const v1::ProblemSpec& spec, const ProblemSpecOptions& options = {});

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_PROBLEM_SPEC_H_
