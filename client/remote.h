// The mcmpart subcommands that talk to mcmpart-server over gRPC:
// partition, jobs, policies, and evaluate/repair with --server.
#ifndef MCMPART_CLIENT_REMOTE_H_
#define MCMPART_CLIENT_REMOTE_H_

#include <string>
#include <vector>

namespace mcmpart::cli {

// The address used when neither --server nor MCMPART_SERVER is given.
inline constexpr char kDefaultServer[] = "localhost:50051";

int RunPartition(const std::vector<std::string>& argv);
int RunJobs(const std::vector<std::string>& argv);
int RunPolicies(const std::vector<std::string>& argv);
// Remote forms of evaluate and repair; the local commands hand over to these
// when --server is given.
int RunRemoteEvaluate(const std::vector<std::string>& argv);
int RunRemoteRepair(const std::vector<std::string>& argv);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_REMOTE_H_
