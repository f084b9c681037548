// Tests of fine-tuning on one problem and the "rl" strategy built on it
// (policy/finetune.h).
#include "policy/finetune.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "policy/policy.h"
#include "policy/synthetic.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/problem.h"
#include "solver/strategy.h"
#include "tests/policy/test_util.h"

namespace mcmpart::policy {
namespace {

using ::mcmpart::policy::testing::MakeProblem;
using ::mcmpart::policy::testing::SmallConfig;
using ::mcmpart::policy::testing::TinyChain;

TEST(FineTuneTest, StreamsImprovementsAndKeepsTheBaseUntouched) {
  Problem p = TinyChain();
  auto base = Policy::Create(SmallConfig(), 5);
  ASSERT_TRUE(base.ok());
  auto before = (*base)->Probabilities(p);
  StopToken stop;
  Budget budget;
  budget.time = absl::Seconds(5);
  budget.samples = 60;
  double last = 0;
  int calls = 0;
  FineTuneOptions o;
  o.ppo.batch = 8;
  o.warm_start = false;  // every improvement here comes from the policy
  auto r = FineTune(
      **base, p, budget, stop,
      [&](const Improvement& imp) {
        EXPECT_GT(imp.figures.throughput_per_s, last);
        last = imp.figures.throughput_per_s;
        ++calls;
      },
      o);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GE(calls, 1);
  EXPECT_FALSE(r->best.empty());
  EXPECT_DOUBLE_EQ(r->throughput_per_s, last);
  Evaluator eval(p);
  EXPECT_TRUE(eval.IsValid(r->best));
  EXPECT_EQ((*base)->Probabilities(p).value(), before.value());
  EXPECT_GE(r->samples, 60);
}

TEST(FineTuneTest, WarmStartReportsTheConstructiveSplitFirst) {
  Problem p = TinyChain();
  auto base = Policy::Create(SmallConfig(), 5);
  ASSERT_TRUE(base.ok());
  auto constructive = ConstructPlacement(p);
  ASSERT_TRUE(constructive.ok()) << constructive.status();
  Evaluator eval(p);
  const double floor = eval.Score(*constructive).throughput_per_s;
  StopToken stop;
  Budget budget;
  budget.time = absl::Seconds(5);
  budget.samples = 20;
  std::vector<double> seen;
  std::vector<int64_t> samples;
  auto r = FineTune(**base, p, budget, stop, [&](const Improvement& imp) {
    seen.push_back(imp.figures.throughput_per_s);
    samples.push_back(imp.samples);
  });
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(seen.empty());
  EXPECT_DOUBLE_EQ(seen.front(), floor);
  EXPECT_EQ(samples.front(), 1);
  EXPECT_GE(r->throughput_per_s, floor);
}

// a -> b, 1 s each, on two chips: the warm start puts one on each chip,
// which reaches the upper bound (1 / max(total / C, slowest node) = 1/s),
// so the run ends there instead of spending its 10 s.
TEST(FineTuneTest, EndsAtOnceWhenTheBestReachesTheUpperBound) {
  v1::Graph g;
  testing::AddNode(g, "a", "Relu", {}, 1e9, 10, 10);
  testing::AddNode(g, "b", "Relu", {"a"}, 1e9, 10, 10);
  Problem p = MakeProblem(g, testing::Uniform(2, 1e9));
  auto base = Policy::Create(SmallConfig(), 5);
  ASSERT_TRUE(base.ok());
  StopToken stop;
  Budget budget;
  budget.time = absl::Seconds(10);
  const absl::Time start = absl::Now();
  auto r = FineTune(**base, p, budget, stop, nullptr);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(r->reason, EndReason::kConverged);
  EXPECT_EQ(r->samples, 1);
  EXPECT_DOUBLE_EQ(r->quality, 1);
}

TEST(FineTuneTest, SeveralAtOnceOnOneSharedPolicy) {
  Problem p = TinyChain();
  auto base = Policy::Create(SmallConfig(), 5);
  ASSERT_TRUE(base.ok());
  std::shared_ptr<const Policy> shared = std::move(*base);
  Budget budget;
  budget.time = absl::Seconds(20);
  budget.samples = 36;
  auto run = [&](uint64_t seed) {
    FineTuneOptions o;
    o.ppo.seed = seed;
    StopToken stop;
    auto r = FineTune(*shared, p, budget, stop, {}, o);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->throughput_per_s : -1.0;
  };
  const double alone1 = run(1), alone2 = run(2);
  double together1 = 0, together2 = 0;
  std::thread t1([&] { together1 = run(1); });
  std::thread t2([&] { together2 = run(2); });
  t1.join();
  t2.join();
  EXPECT_EQ(alone1, together1);
  EXPECT_EQ(alone2, together2);
}

TEST(FineTuneTest, CancellationStopsWithin100ms) {
  v1::Graph g = SyntheticGraph(SyntheticFamily::kTransformer, 400, 4);
  Problem p = MakeProblem(g, RandomHardware(g, 8, 2.0, 4));
  auto base = Policy::Create(PolicyConfig{}, 5);
  ASSERT_TRUE(base.ok());
  StopToken stop;
  Budget budget;
  budget.time = absl::Seconds(60);
  std::atomic<int64_t> stopped_at_ns{0};
  absl::Time returned;
  std::thread runner([&] {
    auto r = FineTune(**base, p, budget, stop, {}, {});
    returned = absl::Now();
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok()) {
      EXPECT_EQ(r->reason, EndReason::kCancelled);
    }
  });
  absl::SleepFor(absl::Milliseconds(700));
  const absl::Time requested = absl::Now();
  stop.RequestStop();
  runner.join();
  EXPECT_LT(returned - requested, absl::Milliseconds(100));
}

// The deadline is checked inside a PPO step too (between repairs and
// between epochs), so a step that would end past the budget is cut short.
// Budgets of 0.5 to 1.3 s land at different phases of the steps.
TEST(FineTuneTest, EndsWithin100msOfTheTimeBudget) {
  v1::Graph g = SyntheticGraph(SyntheticFamily::kBranchy, 1500, 4);
  Problem p = MakeProblem(g, RandomHardware(g, 8, 2.0, 4));
  auto base = Policy::Create(PolicyConfig{}, 5);
  ASSERT_TRUE(base.ok());
  for (double seconds : {0.5, 0.9, 1.3}) {
    StopToken stop;
    Budget budget;
    budget.time = absl::Seconds(seconds);
    FineTuneOptions o;
    o.warm_start = false;
    const absl::Time start = absl::Now();
    auto r = FineTune(**base, p, budget, stop, {}, o);
    const absl::Duration took = absl::Now() - start;
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->reason, EndReason::kBudget);
    RecordProperty(
        absl::StrCat("overshoot_ms_", seconds),
        static_cast<int>(absl::ToInt64Milliseconds(took - budget.time)));
    EXPECT_LT(took, budget.time + absl::Milliseconds(100)) << seconds;
  }
}

TEST(RlStrategyTest, IsAStrategyNamedRl) {
  auto base = Policy::Create(SmallConfig(), 5);
  std::shared_ptr<const Policy> shared = std::move(*base);
  auto s = MakeRlStrategy(shared, {});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->name(), "rl");
  EXPECT_FALSE(MakeRlStrategy(nullptr, {}).ok());
  Problem p = TinyChain();
  StopToken stop;
  Budget budget;
  budget.samples = 20;
  auto r = (*s)->Run(p, budget, stop, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->best.empty());
}

}  // namespace
}  // namespace mcmpart::policy
