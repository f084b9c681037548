// What `partition` and `jobs submit/watch` share: the search flags, the
// request they build, and the outcome of a streamed search printed and
// written as a placement file (mcmpart.v1.SearchReport).
#ifndef MCMPART_CLIENT_SEARCH_OUTPUT_H_
#define MCMPART_CLIENT_SEARCH_OUTPUT_H_

#include <cstdint>
#include <optional>
#include <ostream>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "client/connection.h"
#include "client/progress.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "solver/problem.h"

namespace mcmpart::cli {

struct SearchFlags {
  v1::PartitionRequest request;
  absl::Duration budget;
};

// --strategy, --time-budget, --samples, --seed, --policy, --no-fine-tune,
// --json, --out and their --help paragraph.
std::vector<FlagSpec> SearchFlagSpecs();
extern const char kSearchHelp[];

// The request for `spec` with the search flags.
absl::StatusOr<SearchFlags> ParseSearchFlags(const Args& args,
                                             const v1::ProblemSpec& spec);

// The headline figures of an evaluation, for when the graph is not at hand.
void PrintBrief(const v1::Evaluation& e, std::ostream& out);

// Prints the outcome of a streamed search and writes the placement file
// (--out, --json); returns the exit code. `problem` may be null (watching a
// job whose graph is not at hand).
int FinishStream(absl::string_view command, const Connection& c,
                 const Args& args, const StreamOutcome& out,
                 const Problem* problem, uint64_t seed, bool detach_on_ctrl_c);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_SEARCH_OUTPUT_H_
