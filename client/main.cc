// mcmpart: the command-line tool. Dispatches to a subcommand.
#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "client/commands.h"
#include "client/connection.h"

int main(int argc, char** argv) {
  using namespace mcmpart::cli;
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" ||
      args[0] == "help") {
    std::cout << MainHelp();
    return args.empty() ? kExitBadInput : kExitOk;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "convert") return RunConvert(args);
  if (command == "evaluate") return RunEvaluate(args);
  if (command == "repair") return RunRepair(args);
  if (command == "search") return RunSearch(args);
  if (command == "report") return RunReport(args);
  if (command == "partition") return RunPartition(args);
  if (command == "jobs") return RunJobs(args);
  if (command == "policies") return RunPolicies(args);
  std::cerr << "mcmpart: unknown command '" << command << "'\n\n" << MainHelp();
  return kExitBadInput;
}
