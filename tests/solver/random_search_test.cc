// Tests of the "random" strategy (solver/random_search.h): strict
// improvements within the sample budget, determinism, stop and time budget,
// and the infeasibility proof.
#include "solver/random_search.h"

#include <cstdint>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/evaluator.h"
#include "solver/problem.h"
#include "solver/strategy.h"
#include "tests/solver/repair_test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::repair_testing::Chain;
using ::mcmpart::repair_testing::HardProblem;
using ::mcmpart::repair_testing::MakeGraph;
using ::mcmpart::repair_testing::MakeHardware;
using ::mcmpart::repair_testing::MakeProblem;
using ::testing::HasSubstr;

StrategyOptions Seed(uint64_t seed) {
  StrategyOptions options;
  options.seed = seed;
  return options;
}

TEST(RandomSearchTest, ImprovesStrictlyAndHonoursTheSampleBudget) {
  Problem problem = HardProblem(150, 6, 11);
  RandomSearch search(Seed(42));
  EXPECT_EQ(search.name(), "random");
  Evaluator eval(problem);
  std::vector<double> seen;
  int64_t last_samples = 0;
  Budget budget;
  budget.samples = 25;
  budget.time = absl::Seconds(60);
  StopToken stop;
  absl::StatusOr<StrategyResult> r =
      search.Run(problem, budget, stop, [&](const Improvement& imp) {
        EXPECT_TRUE(eval.IsValid(imp.placement));
        EXPECT_GT(imp.samples, last_samples);
        last_samples = imp.samples;
        if (!seen.empty()) {
          EXPECT_GT(imp.figures.throughput_per_s, seen.back());
        }
        seen.push_back(imp.figures.throughput_per_s);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->samples, 25);
  EXPECT_EQ(r->reason, EndReason::kBudget);
  ASSERT_FALSE(r->best.empty());
  EXPECT_TRUE(eval.IsValid(r->best));
  ASSERT_FALSE(seen.empty());
  EXPECT_DOUBLE_EQ(r->throughput_per_s, seen.back());
  EXPECT_DOUBLE_EQ(eval.Score(r->best).throughput_per_s, r->throughput_per_s);
  EXPECT_GT(r->quality, 0);
  EXPECT_LE(r->quality, 1 + 1e-9);
}

TEST(RandomSearchTest, DeterministicForASeed) {
  Problem problem = HardProblem(150, 6, 12);
  Budget budget;
  budget.samples = 15;
  budget.time = absl::Seconds(60);
  StopToken stop;
  RandomSearch a(Seed(7)), b(Seed(7));
  absl::StatusOr<StrategyResult> ra = a.Run(problem, budget, stop, nullptr);
  absl::StatusOr<StrategyResult> rb = b.Run(problem, budget, stop, nullptr);
  ASSERT_TRUE(ra.ok()) << ra.status();
  ASSERT_TRUE(rb.ok()) << rb.status();
  EXPECT_EQ(ra->best, rb->best);
  EXPECT_EQ(ra->throughput_per_s, rb->throughput_per_s);
}

TEST(RandomSearchTest, StopsWithin100msOfAStopRequest) {
  Problem problem = HardProblem(600, 16, 13);
  RandomSearch search(Seed(1));
  Budget budget;
  budget.time = absl::Seconds(30);
  StopToken stop;
  absl::Time requested = absl::InfiniteFuture();
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(150));
    requested = absl::Now();
    stop.RequestStop();
  });
  absl::StatusOr<StrategyResult> r = search.Run(problem, budget, stop, nullptr);
  const absl::Time ended = absl::Now();
  canceller.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reason, EndReason::kCancelled);
  EXPECT_LT(ended - requested, absl::Milliseconds(100));
}

TEST(RandomSearchTest, HonoursTheTimeBudget) {
  Problem problem = HardProblem(300, 8, 14);
  RandomSearch search(Seed(3));
  Budget budget;
  budget.time = absl::Milliseconds(200);
  StopToken stop;
  const absl::Time start = absl::Now();
  absl::StatusOr<StrategyResult> r = search.Run(problem, budget, stop, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reason, EndReason::kBudget);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_FALSE(r->best.empty());
  EXPECT_GT(r->samples, 0);
}

TEST(RandomSearchTest, InfeasibleInstanceIsAnError) {
  Problem problem =
      MakeProblem(MakeGraph(Chain(3, 50, 1)), MakeHardware({60, 60}));
  RandomSearch search(StrategyOptions{});
  StopToken stop;
  absl::StatusOr<StrategyResult> r =
      search.Run(problem, Budget{}, stop, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("total memory"));
}

}  // namespace
}  // namespace mcmpart
