// The mcmpart subcommands. Each takes the arguments after its name and
// returns the process exit code (client/cli.h); output goes to stdout,
// diagnostics to stderr.
#ifndef MCMPART_CLIENT_COMMANDS_H_
#define MCMPART_CLIENT_COMMANDS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/cli.h"
#include "mcmpart/v1/partitioner.pb.h"

namespace mcmpart::cli {

int RunConvert(const std::vector<std::string>& argv);
int RunEvaluate(const std::vector<std::string>& argv);
int RunRepair(const std::vector<std::string>& argv);
int RunSearch(const std::vector<std::string>& argv);
int RunReport(const std::vector<std::string>& argv);

// Against mcmpart-server (partition_command.cc, jobs_commands.cc,
// server_commands.cc).
int RunPartition(const std::vector<std::string>& argv);
int RunJobs(const std::vector<std::string>& argv);
int RunPolicies(const std::vector<std::string>& argv);

// The Evaluate and Repair calls, for `evaluate` and `repair` with --server.
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

// `mcmpart --help`.
std::string MainHelp();

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_COMMANDS_H_
