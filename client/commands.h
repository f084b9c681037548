// The mcmpart subcommands. Each takes the arguments after its name and
// returns the process exit code (client/cli.h); output goes to stdout,
// diagnostics to stderr.
#ifndef MCMPART_CLIENT_COMMANDS_H_
#define MCMPART_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

namespace mcmpart::cli {

int RunConvert(const std::vector<std::string>& argv);
int RunEvaluate(const std::vector<std::string>& argv);
int RunRepair(const std::vector<std::string>& argv);
int RunSearch(const std::vector<std::string>& argv);
int RunReport(const std::vector<std::string>& argv);

// `mcmpart --help`.
std::string MainHelp();

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_COMMANDS_H_
