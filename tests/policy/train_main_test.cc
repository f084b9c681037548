// Tests of mcmpart-train (policy/train_main.cc), run as the real binary:
// flag errors and a short run with several PPO steps per instance.
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/policy/test_util.h"

namespace mcmpart::policy {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

Result RunTrain(const std::string& args) {
  Result r;
  const std::string command =
      std::string(MCMPART_TRAIN_PATH) + " " + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    r.output.append(buffer, n);
  }
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

TEST(TrainMainTest, RejectsZeroStepsPerInstance) {
  const Result r = RunTrain("--out=/nonexistent --steps_per_instance=0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output,
              HasSubstr("mcmpart-train: --threads, --repair_ms, "
                        "--checkpoint_every, --steps_per_instance must be "
                        ">= 1"));
}

// Two synthetic instances, three PPO steps on each: six steps, recorded in
// the checkpoint with the flag.
TEST(TrainMainTest, TakesSeveralStepsOnEachInstance) {
  const std::string dir = testing::TempDir("train_steps");
  const Result r =
      RunTrain("--out=" + dir +
               " --iterations=2 --steps_per_instance=3 --min_nodes=40"
               " --max_nodes=60 --max_chips=4 --batch=8 --seed=3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("done: 6 PPO steps"));
  std::ifstream meta(std::filesystem::path(dir) / "policy.meta");
  std::stringstream text;
  text << meta.rdbuf();
  EXPECT_THAT(text.str(), HasSubstr("steps: 6\n"));
  EXPECT_THAT(text.str(), HasSubstr("steps_per_instance=3"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mcmpart::policy
