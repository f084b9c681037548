// What the mcmpart subcommands share: the graph, hardware and constraint
// flags, loading a problem from them, error reporting with exit codes, and
// the readable placement summary.
#ifndef MCMPART_CLIENT_COMMON_H_
#define MCMPART_CLIENT_COMMON_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/cli.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "solver/graph.h"
#include "solver/onnx_import.h"
#include "solver/problem.h"

namespace mcmpart::cli {

// --help paragraphs.
extern const char kGraphHelp[];
extern const char kHardwareHelp[];

// --batch, --dim, --help.
std::vector<FlagSpec> GraphFlags();
// GraphFlags plus --preset, --chips, --hardware, --max-hops,
// --use-all-chips, --pin.
std::vector<FlagSpec> ProblemFlags();

// The exit code for an error of this machine's own work (exit_codes.h).
int ExitCodeFor(const absl::Status& s);
// Prints "mcmpart COMMAND: message" to stderr; returns ExitCodeFor(s).
int Fail(absl::string_view command, const absl::Status& s);
// Prints the message and the command's help to stderr; returns kExitBadInput.
int Usage(absl::string_view command, absl::string_view message,
          absl::string_view help);

// `s` with "PATH: " before its message.
absl::Status InFile(const std::string& path, const absl::Status& s);

// From --batch and --dim.
absl::StatusOr<OnnxImportOptions> ImportOptions(const Args& args);
// The problem the graph file at `path` and the flags describe, as the server
// takes it: the graph message (ONNX imported here with --batch/--dim;
// import warnings printed); --preset/--chips or the --hardware file; the
// constraints (the file's, or none for a preset) with --max-hops,
// --use-all-chips and --pin applied.
absl::StatusOr<v1::ProblemSpec> SpecFromFlags(const Args& args,
                                              const std::string& path);

// SpecFromFlags, resolved here (ProblemFromSpec, graph errors prefixed with
// the path): local commands use the problem, remote ones send the spec.
struct Loaded {
  v1::ProblemSpec spec;
  std::shared_ptr<const Problem> problem;
};
absl::StatusOr<Loaded> LoadProblem(const Args& args, const std::string& path);

// The readable summary of one placement: headline figures, a table per chip
// and per link with the bottleneck marked, and the first violations.
// How good a valid placement is, in words: "proved optimal (exact
// search)" or "at most 12.3% below the best possible (proved bound
// 18364.7 /s, compute bound)"; empty for an invalid one.
std::string Optimality(const v1::Evaluation& e);

// When the placement file at `path` is a search report whose evaluation
// carries a bound proved by the exact search for the same placement (same
// throughput), puts that bound into `e` (solver/bound.h, TightenBound). A
// bound is a fact about the problem, so it holds for a re-evaluation; the
// throughput check keeps a report of another problem from lending its own.
void CarryBound(const std::string& path, v1::Evaluation* e);

void PrintEvaluation(const Problem& problem, absl::Span<const int> p,
                     const v1::Evaluation& e, std::ostream& out);

// What repair changed (the first nodes moved) and the repaired placement's
// summary.
void PrintRepair(const Problem& problem, absl::Span<const int> candidate,
                 absl::Span<const int> repaired, const v1::RepairReport& report,
                 std::ostream& out);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_COMMON_H_
