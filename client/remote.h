// The mcmpart subcommands that talk to mcmpart-server over gRPC:
// partition, jobs, policies, and evaluate/repair with --server.
#ifndef MCMPART_CLIENT_REMOTE_H_
#define MCMPART_CLIENT_REMOTE_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/cli.h"
#include "mcmpart/v1/partitioner.pb.h"

namespace mcmpart::cli {

// The address used when neither --server nor MCMPART_SERVER is given.
inline constexpr char kDefaultServer[] = "localhost:50051";

int RunPartition(const std::vector<std::string>& argv);
int RunJobs(const std::vector<std::string>& argv);
int RunPolicies(const std::vector<std::string>& argv);
// The server connection's flags (--server, --tls*, --timeout) and their
// --help paragraphs, for commands that can run either here or remotely.
std::vector<FlagSpec> RemoteFlags();
extern const char kRemoteHelp[];
extern const char kServerExitHelp[];

// The Evaluate and Repair RPCs, for `evaluate` and `repair` with --server.
// On failure they print the error as every remote command does, set
// *exit_code and return nothing.
std::optional<v1::Evaluation> EvaluateOnServer(const Args& args,
                                               const v1::ProblemSpec& spec,
                                               const v1::Placement& placement,
                                               int* exit_code);
std::optional<v1::RepairReport> RepairOnServer(const Args& args,
                                               const v1::ProblemSpec& spec,
                                               const v1::Placement& candidate,
                                               absl::Duration time_limit,
                                               int* exit_code);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_REMOTE_H_
