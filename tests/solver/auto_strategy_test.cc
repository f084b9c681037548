#include "solver/auto_strategy.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/bound.h"
#include "solver/evaluator.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/strategy.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MustBuild;
using ::mcmpart::testing::UniformHardware;

Problem WideProblem() { return *testing::WideFanInProblem(); }

TEST(AutoTest, EndsAtOnceWithTheProofOnAnEasyGraph) {
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(
      absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/googlenet.onnx"));
  ASSERT_TRUE(proto.ok()) << proto.status();
  absl::StatusOr<Problem> problem =
      Problem::Create(MustBuild(*proto), *PresetHardware("ring4"));
  ASSERT_TRUE(problem.ok());
  absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy("auto");
  ASSERT_TRUE(s.ok());
  Budget budget;
  budget.time = absl::Seconds(10);
  StopToken stop;
  std::vector<double> seen;
  const absl::Time start = absl::Now();
  absl::StatusOr<StrategyResult> r =
      (*s)->Run(*problem, budget, stop, [&](const Improvement& imp) {
        seen.push_back(imp.figures.throughput_per_s);
        EXPECT_GT(imp.bound_s, 0);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(r->reason, EndReason::kConverged);
  EXPECT_TRUE(r->proved_optimal);
  EXPECT_NEAR(r->throughput_per_s / 43059.801970, 1, 1e-9);
  EXPECT_NEAR(r->bound_s * r->throughput_per_s, 1, 1e-12);
  // The constructive split first (42,276/s), then the optimum.
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_LT(seen[0], seen[1]);
}

TEST(AutoTest, HandsTheRestToAnnealingAndTheLearnedStageWithABound) {
  const Problem problem = WideProblem();
  AutoOptions options;
  options.base.seed = 3;
  options.base.exact_memory_bytes = 1 << 20;
  std::vector<Assignment> warm_starts;
  options.learned = [&](const StrategyOptions& o)
      -> absl::StatusOr<std::unique_ptr<Strategy>> {
    warm_starts.push_back(o.initial);
    return MakeStrategy("random", o);
  };
  Auto s(options);
  Budget budget;
  budget.time = absl::Milliseconds(600);
  StopToken stop;
  std::vector<double> seen;
  int64_t last_samples = 0;
  absl::StatusOr<StrategyResult> r =
      s.Run(problem, budget, stop, [&](const Improvement& imp) {
        if (!seen.empty()) {
          EXPECT_GT(imp.figures.throughput_per_s, seen.back());
        }
        EXPECT_GE(imp.samples, last_samples);
        last_samples = imp.samples;
        seen.push_back(imp.figures.throughput_per_s);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reason, EndReason::kBudget);
  EXPECT_FALSE(r->proved_optimal);
  ASSERT_FALSE(r->best.empty());
  Evaluator eval(problem);
  EXPECT_TRUE(eval.IsValid(r->best));
  EXPECT_GE(r->bound_s, BottleneckBound(problem));
  EXPECT_LE(r->bound_s, eval.Score(r->best).bottleneck_s);
  EXPECT_DOUBLE_EQ(r->throughput_per_s, seen.back());
  // The learned stage started from the best placement so far.
  ASSERT_EQ(warm_starts.size(), 1u);
  EXPECT_TRUE(eval.IsValid(warm_starts[0]));
  EXPECT_LE(eval.Score(warm_starts[0]).throughput_per_s, r->throughput_per_s);
}

TEST(AutoTest, InfeasibleIsTheExactSearchsExplanation) {
  v1::Graph g;
  AddNode(g, "a", {}, 0, 3, 3, 1e-6);
  AddNode(g, "b", {"a"}, 0, 5, 1, 1e-6);
  AddNode(g, "c", {"a", "b"}, 0, 2, 0, 1e-6);
  absl::StatusOr<Problem> problem =
      Problem::Create(MustBuild(g), UniformHardware(2, 10, 1e12, 1e12, 1e9, 0));
  ASSERT_TRUE(problem.ok());
  StopToken stop;
  absl::StatusOr<StrategyResult> r =
      (*MakeStrategy("auto"))->Run(*problem, Budget{}, stop, nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::StartsWith("no valid placement exists: an exhaustive "
                                    "search"));
}

TEST(AutoTest, StopsWithin100msOfACancel) {
  const Problem problem = WideProblem();
  AutoOptions options;
  options.base.exact_memory_bytes = 1 << 20;
  Auto s(options);
  Budget budget;
  budget.time = absl::Seconds(30);
  StopToken stop;
  std::thread canceller([&stop] {
    absl::SleepFor(absl::Milliseconds(200));
    stop.RequestStop();
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<StrategyResult> r = s.Run(problem, budget, stop, nullptr);
  const absl::Duration took = absl::Now() - start;
  canceller.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reason, EndReason::kCancelled);
  EXPECT_FALSE(r->best.empty());
  EXPECT_LT(took, absl::Milliseconds(300));
}

}  // namespace
}  // namespace mcmpart
