// Tests of the strategy factory (solver/strategy.h).
#include "solver/strategy.h"

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/problem.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::MakeProblem;
using ::mcmpart::testing::RandomDag;
using ::mcmpart::testing::RandomInstance;
using ::mcmpart::testing::RunAnneal;
using ::testing::ElementsAre;

TEST(MakeStrategyTest, MakesEveryNamedStrategy) {
  EXPECT_THAT(StrategyNames(),
              ElementsAre("auto", "exact", "anneal", "constructive", "random"));
  for (const std::string& name : StrategyNames()) {
    absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy(name);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)->name(), name);
  }
}

TEST(MakeStrategyTest, UnknownNameIsNotFound) {
  absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy("gradient");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.status().message(),
            "unknown strategy 'gradient'; strategies are auto, exact, anneal, "
            "constructive, random");
}

TEST(MakeStrategyTest, PassesTheSeed) {
  std::mt19937_64 rng(21);
  const RandomInstance inst = RandomDag(rng, 200, 4, 1.3);
  const Problem problem = MakeProblem(inst.graph, inst.hardware);
  absl::StatusOr<std::unique_ptr<Strategy>> s =
      MakeStrategy("anneal", StrategyOptions{77});
  ASSERT_TRUE(s.ok()) << s.status();
  Budget budget;
  budget.samples = 5000;
  StopToken stop;
  absl::StatusOr<StrategyResult> made =
      (*s)->Run(problem, budget, stop, nullptr);
  ASSERT_TRUE(made.ok()) << made.status();
  absl::StatusOr<StrategyResult> direct = RunAnneal(problem, 5000, 77);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(made->best, direct->best);
}

}  // namespace
}  // namespace mcmpart
