// Runs the mcmpart binary as a user would and captures what it prints.
#ifndef MCMPART_TESTS_CLIENT_CLI_RUNNER_H_
#define MCMPART_TESTS_CLIENT_CLI_RUNNER_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace mcmpart::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `args` is a shell-quoted argument string; tests only pass plain paths.
inline CliResult RunCli(const std::string& args) {
  // ctest runs tests as parallel processes: keep their files apart.
  const std::string stem =
      ::testing::TempDir() + "/cli_" + std::to_string(getpid());
  const std::string out = stem + ".out";
  const std::string err = stem + ".err";
  const std::string cmd = std::string(MCMPART_CLI_PATH) + " " + args + " >" +
                          out + " 2>" + err + " </dev/null";
  int status = std::system(cmd.c_str());
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Slurp(out);
  r.err = Slurp(err);
  return r;
}

}  // namespace mcmpart::testing

#endif  // MCMPART_TESTS_CLIENT_CLI_RUNNER_H_
