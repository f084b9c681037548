// Tests of the PPO trainer (policy/ppo.h).
#include "policy/ppo.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "policy/policy.h"
#include "policy/synthetic.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "tests/policy/test_util.h"

namespace mcmpart::policy {
namespace {

using ::mcmpart::policy::testing::AddNode;
using ::mcmpart::policy::testing::MakeProblem;
using ::mcmpart::policy::testing::SmallConfig;
using ::mcmpart::policy::testing::TinyChain;
using ::mcmpart::policy::testing::Uniform;

// Four parallel branches (6, 6, 7 and 4 s of compute) between a source and
// a sink (1 s each) on 3 chips. A tensor inside a branch takes 20 s to cross
// a link, one at a branch's end 0.01 s, so good placements keep branches
// whole and the question is which branches share a chip: the node order a
// placement induces. The best grouping has a bottleneck of 10 s (quality
// 0.833); rebalancing moves the boundaries but cannot regroup the branches.
Problem TinyBranches() {
  v1::Graph g;
  g.set_name("branches");
  AddNode(g, "s", "Conv", {}, 1e9, 10, 1e5);
  const double flops[4][3] = {{2, 1, 3}, {1, 4, 1}, {3, 3, 1}, {1, 1, 2}};
  std::vector<std::string> ends;
  for (int b = 0; b < 4; ++b) {
    std::string prev = "s";
    for (int i = 0; i < 3; ++i) {
      const std::string name = "b" + std::to_string(b) + std::to_string(i);
      AddNode(g, name, i == 1 ? "MatMul" : "Relu", {prev.c_str()},
              flops[b][i] * 1e9, 10, i == 2 ? 1e7 : 2e10);
      prev = name;
    }
    ends.push_back(prev);
  }
  AddNode(g, "t", "Add",
          {ends[0].c_str(), ends[1].c_str(), ends[2].c_str(), ends[3].c_str()},
          1e9, 0, 1e5);
  return MakeProblem(g, Uniform(3, 1e12));
}

// A trainer of a fresh SmallConfig policy, both seeded with o.seed; null
// (with the failure recorded) when either cannot be made.
std::unique_ptr<PpoTrainer> FreshTrainer(const PpoOptions& o) {
  auto policy = Policy::Create(SmallConfig(), o.seed);
  if (!policy.ok()) {
    ADD_FAILURE() << policy.status();
    return nullptr;
  }
  auto trainer = PpoTrainer::Create(std::move(*policy), o);
  if (!trainer.ok()) {
    ADD_FAILURE() << trainer.status();
    return nullptr;
  }
  return *std::move(trainer);
}

// `count` steps of `trainer` on `p`; fewer, with the failure recorded, when
// a step fails.
std::vector<PpoStepStats> RunSteps(PpoTrainer& trainer, const Problem& p,
                                   int count) {
  std::vector<PpoStepStats> out;
  for (int i = 0; i < count; ++i) {
    absl::StatusOr<PpoStepStats> st = trainer.Step(p, nullptr);
    if (!st.ok()) {
      ADD_FAILURE() << "step " << i << ": " << st.status();
      break;
    }
    out.push_back(*std::move(st));
  }
  return out;
}

std::vector<int> Batches(const std::vector<PpoStepStats>& steps) {
  std::vector<int> out;
  for (const PpoStepStats& st : steps) out.push_back(st.batch);
  return out;
}

// A DLRM-like synthetic graph of 120 nodes (tables read by one node) on 8
// chips with `max_hops`.
Problem WideProblem(int max_hops) {
  v1::Graph g = SyntheticGraph(SyntheticFamily::kWide, 120, 6);
  v1::Hardware hw = RandomHardware(g, 8, 4.0, 6);
  hw.mutable_constraints()->set_max_hops(max_hops);
  return MakeProblem(g, hw);
}

// Mean batch reward of the first and of the last three of 12 PPO steps
// from a fresh policy with `seed`.
std::pair<double, double> FirstAndLastMeanReward(const Problem& p, PpoOptions o,
                                                 int seed) {
  auto policy = Policy::Create(SmallConfig(), seed);
  if (!policy.ok()) {
    ADD_FAILURE() << policy.status();
    return {0, 0};
  }
  o.seed = seed;
  o.batch = 16;
  o.learning_rate = 3e-3;
  o.score_greedy = false;
  auto trainer = PpoTrainer::Create(std::move(*policy), o);
  if (!trainer.ok()) {
    ADD_FAILURE() << trainer.status();
    return {0, 0};
  }
  std::vector<double> mean;
  for (int i = 0; i < 12; ++i) {
    auto st = (*trainer)->Step(p, nullptr);
    if (!st.ok()) {
      ADD_FAILURE() << st.status();
      return {0, 0};
    }
    EXPECT_EQ(st->valid, 16);
    mean.push_back(st->mean_reward);
  }
  return {(mean[0] + mean[1] + mean[2]) / 3,
          (mean[9] + mean[10] + mean[11]) / 3};
}

TEST(PpoTest, MeanRewardRisesWithFixedSeed) {
  PpoOptions o;
  // A chain has one node order, so with rebalancing every sample is the
  // best split and there is nothing to learn: this checks the PPO update
  // itself. The branches test below checks it with rebalancing.
  o.decode = Decode::kRepair;
  o.rebalance = false;
  const auto [first, last] = FirstAndLastMeanReward(TinyChain(), o, 5);
  EXPECT_GT(last, first + 0.02) << "first " << first << " last " << last;
}

TEST(PpoTest, MeanRewardRisesWithRebalancingOnBranches) {
  PpoOptions o;
  o.decode = Decode::kRepair;
  ASSERT_TRUE(o.rebalance);  // the default
  const auto [first, last] = FirstAndLastMeanReward(TinyBranches(), o, 3);
  EXPECT_GT(last, first + 0.1) << "first " << first << " last " << last;
}

// The default decoding: the split of each proposal's order, trained on the
// proposal. Measured: 0.547 over the first three steps, 0.636 over the
// last three.
TEST(PpoTest, MeanRewardRisesWithSplitDecodingOnBranches) {
  PpoOptions o;
  ASSERT_EQ(o.decode, Decode::kSplit);  // the default
  const auto [first, last] = FirstAndLastMeanReward(TinyBranches(), o, 3);
  EXPECT_GT(last, first + 0.05) << "first " << first << " last " << last;
}

// Each batch decoded during the update before it, so one update old.
// Measured: 0.508 over the first three steps, 0.622 over the last three
// (with the clip around the policy that drew the batch instead of the
// current one: 0.508 and 0.495, no learning at all).
TEST(PpoTest, MeanRewardRisesWithOverlapOnBranches) {
  PpoOptions o;
  o.overlap = true;
  const auto [first, last] = FirstAndLastMeanReward(TinyBranches(), o, 3);
  EXPECT_GT(last, first + 0.05) << "first " << first << " last " << last;
}

TEST(PpoTest, RebalancingGivesEveryChainSampleTheBestSplit) {
  Problem p = TinyChain();
  absl::StatusOr<Assignment> best = ConstructPlacement(p);
  ASSERT_TRUE(best.ok()) << best.status();
  Evaluator eval(p);
  const double optimum = eval.Score(*best).quality;
  auto step = [&](Decode decode, bool rebalance) {
    auto policy = Policy::Create(SmallConfig(), 5);
    PpoOptions o;
    o.seed = 5;
    o.batch = 8;
    o.epochs = 0;
    o.decode = decode;
    o.rebalance = rebalance;
    auto trainer = PpoTrainer::Create(std::move(*policy), o);
    absl::StatusOr<PpoStepStats> st = (*trainer)->Step(p, nullptr);
    if (!st.ok()) {
      ADD_FAILURE() << st.status();
      return 0.0;
    }
    EXPECT_EQ(st->valid, 9);  // 8 samples and the greedy placement
    EXPECT_EQ(st->split, decode == Decode::kSplit ? 9 : 0);
    return st->mean_quality;
  };
  // The chain's only order, split exactly: every sample reaches the
  // constructive optimum, which unbalanced repaired samples do not.
  EXPECT_NEAR(step(Decode::kRepair, true), optimum, 1e-12);
  EXPECT_LT(step(Decode::kRepair, false), optimum - 0.05);
  // Decoding by the split gives the same exact split without the repair.
  EXPECT_NEAR(step(Decode::kSplit, false), optimum, 1e-12);
}

TEST(PpoTest, ZeroEpochsSamplesWithoutLearning) {
  Problem p = TinyChain();
  auto policy = Policy::Create(SmallConfig(), 5);
  ASSERT_TRUE(policy.ok());
  auto before = (*policy)->Probabilities(p);
  ASSERT_TRUE(before.ok());
  PpoOptions o;
  o.seed = 5;
  o.epochs = 0;
  auto trainer = PpoTrainer::Create(std::move(*policy), o);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  for (int i = 0; i < 3; ++i) {
    auto st = (*trainer)->Step(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_GT(st->candidates, 0);
  }
  EXPECT_EQ((*trainer)->policy().Probabilities(p).value(), before.value());
  o.epochs = -1;
  EXPECT_EQ(
      ValidatePpoOptions(o),
      absl::InvalidArgumentError("PPO option epochs is out of range: -1"));
  o.epochs = 0;
  o.max_fallback_repairs = -1;
  EXPECT_EQ(ValidatePpoOptions(o),
            absl::InvalidArgumentError(
                "PPO option max_fallback_repairs is out of range: -1"));
}

TEST(PpoTest, FixedBatchUnlessMaxBatchIsSet) {
  Problem p = TinyBranches();
  auto run = [&](int max_batch) {
    PpoOptions o;
    o.seed = 3;
    o.batch = 8;
    o.max_batch = max_batch;
    std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
    if (trainer == nullptr) return std::vector<int>();
    return Batches(RunSteps(*trainer, p, 6));
  };
  EXPECT_EQ(run(0), std::vector<int>(6, 8));
  EXPECT_EQ(run(8), std::vector<int>(6, 8));
  PpoOptions o;
  o.batch = 16;
  o.max_batch = 8;
  EXPECT_EQ(
      ValidatePpoOptions(o),
      absl::InvalidArgumentError("PPO option max_batch is out of range: 8"));
  o.max_batch = 5000;
  EXPECT_EQ(
      ValidatePpoOptions(o),
      absl::InvalidArgumentError("PPO option max_batch is out of range: 5000"));
}

// On a graph of a few hundred nodes one update (four forward and backward
// passes) costs as much as decoding hundreds of samples, so the batch grows
// from `batch`, at most doubling per step and never past max_batch.
TEST(PpoTest, BatchGrowsWhenLearningOutweighsDecoding) {
  v1::Graph g = SyntheticGraph(SyntheticFamily::kBranchy, 300, 4);
  Problem p = MakeProblem(g, RandomHardware(g, 4, 3.0, 4));
  PpoOptions o;
  o.seed = 4;
  o.batch = 4;
  o.max_batch = 48;
  std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
  ASSERT_NE(trainer, nullptr);
  const std::vector<PpoStepStats> steps = RunSteps(*trainer, p, 6);
  ASSERT_EQ(steps.size(), 6u);
  for (const PpoStepStats& st : steps) {
    ASSERT_GT(st.learn_time, absl::ZeroDuration());
  }
  const std::vector<int> batches = Batches(steps);
  EXPECT_EQ(batches.front(), 4);
  for (size_t i = 1; i < batches.size(); ++i) {
    EXPECT_GE(batches[i], o.batch);
    EXPECT_LE(batches[i], std::min(2 * batches[i - 1], o.max_batch));
  }
  EXPECT_EQ(batches.back(), 48);
}

// On the tiny instance an update is cheap, so only the sample-rate floor
// (which no machine meets at a billion a second) makes the batch grow: it
// doubles after every step, up to max_batch.
TEST(PpoTest, BatchGrowsWhileBelowTheSampleRateFloor) {
  Problem p = TinyBranches();
  PpoOptions o;
  o.seed = 3;
  o.batch = 8;
  o.max_batch = 64;
  o.min_sample_rate = 1e9;
  for (bool overlap : {false, true}) {
    o.overlap = overlap;
    std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
    ASSERT_NE(trainer, nullptr);
    const std::vector<int> batches = Batches(RunSteps(*trainer, p, 6));
    // With overlap a batch is drawn one step before the size it follows
    // from is known: the growth shows one step later.
    EXPECT_EQ(batches, overlap ? (std::vector<int>{8, 8, 16, 32, 64, 64})
                               : (std::vector<int>{8, 16, 32, 64, 64, 64}))
        << "overlap " << overlap;
  }
  o.min_sample_rate = -1;
  EXPECT_EQ(ValidatePpoOptions(o),
            absl::InvalidArgumentError(
                "PPO option min_sample_rate is out of range: -1"));
}

// A DLRM-like graph (tables read by one node) under max_hops 1: most orders
// that a fresh policy's proposals induce have no valid split (12 of 17 at
// this seed), while the graph's own order has one. Decoding then falls back
// to orders between the two before any repair, so that with no repair
// allowed every candidate is still decoded, by a split.
TEST(PpoTest, SplitDecodingFallsBackToOrdersNearerTheGraphsOwn) {
  Problem p = WideProblem(1);
  std::vector<int> own(p.num_nodes());
  for (int v = 0; v < p.num_nodes(); ++v) own[v] = v;
  ASSERT_TRUE(SplitOrder(p, own, nullptr).ok());
  PpoOptions o;
  o.seed = 6;
  o.batch = 16;
  o.max_fallback_repairs = 0;
  std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
  ASSERT_NE(trainer, nullptr);
  for (int i = 0; i < 3; ++i) {
    auto st = trainer->Step(p, nullptr);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->candidates, 17);
    EXPECT_EQ(st->valid, 17);
    EXPECT_EQ(st->split, 17);
  }
}

// The step's best few placements are polished (solver/polish.h) and the
// best result reported; the rewards, and so the update, stay those of the
// decoded samples. On a DLRM-like graph on 8 chips with max_hops 8, the
// split of a fresh policy's sampled orders leaves tables that moves across
// the boundaries put on lighter chips: measured, the step's best rises from
// 1,599 to 1,682 samples/s.
TEST(PpoTest, PolishesTheStepsBestButRewardsTheDecodedSamples) {
  Problem p = WideProblem(8);
  auto step = [&](int polish_best) {
    PpoOptions o;
    o.seed = 4;
    o.batch = 16;
    o.polish_best = polish_best;
    std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
    if (trainer == nullptr) return PpoStepStats{};
    absl::StatusOr<PpoStepStats> st = trainer->Step(p, nullptr);
    EXPECT_TRUE(st.ok()) << st.status();
    return st.ok() ? *std::move(st) : PpoStepStats{};
  };
  const PpoStepStats plain = step(0);
  const PpoStepStats polished = step(4);
  EXPECT_EQ(polished.mean_reward, plain.mean_reward);
  EXPECT_EQ(polished.mean_quality, plain.mean_quality);
  EXPECT_GT(polished.best_throughput, plain.best_throughput * 1.03);
  Evaluator eval(p);
  ASSERT_TRUE(eval.IsValid(polished.best));
  EXPECT_EQ(eval.Score(polished.best).throughput_per_s,
            polished.best_throughput);
  PpoOptions o;
  o.polish_best = -1;
  EXPECT_EQ(
      ValidatePpoOptions(o),
      absl::InvalidArgumentError("PPO option polish_best is out of range: -1"));
}

// With overlap the next batch is drawn, from the policy before the update,
// by the same random stream: so its samples are those that a trainer that
// never updates (epochs 0) draws at its second step, and the step that
// draws it reports their best too (the caller may stop there).
TEST(PpoTest, OverlapDecodesTheNextBatchFromThePolicyBeforeTheUpdate) {
  Problem p = TinyBranches();
  auto steps = [&](int epochs, bool overlap) {
    PpoOptions o;
    o.seed = 3;
    o.batch = 8;
    o.epochs = epochs;
    o.overlap = overlap;
    o.polish_best = 0;
    std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
    if (trainer == nullptr) return std::vector<PpoStepStats>();
    return RunSteps(*trainer, p, 4);
  };
  const std::vector<PpoStepStats> sampled = steps(0, false);
  const std::vector<PpoStepStats> plain = steps(4, false);
  const std::vector<PpoStepStats> ahead = steps(4, true);
  ASSERT_EQ(sampled.size(), 4u);
  ASSERT_EQ(plain.size(), 4u);
  ASSERT_EQ(ahead.size(), 4u);
  EXPECT_GT(ahead[0].learn_time, absl::ZeroDuration());  // it did update
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(ahead[i].prefetched, i > 0) << "step " << i;
    EXPECT_EQ(ahead[i].batch, 8);
    EXPECT_EQ(ahead[i].candidates, 9);  // and the greedy placement
    EXPECT_EQ(ahead[i].valid, 9);
    EXPECT_FALSE(plain[i].prefetched);
  }
  EXPECT_EQ(ahead[0].mean_reward, plain[0].mean_reward);
  EXPECT_EQ(ahead[1].mean_reward, sampled[1].mean_reward);
  EXPECT_NE(plain[1].mean_reward, sampled[1].mean_reward);
  EXPECT_EQ(ahead[0].best_throughput,
            std::max(sampled[0].best_throughput, sampled[1].best_throughput));
  EXPECT_EQ(steps(4, true)[3].mean_reward, ahead[3].mean_reward);
}

// A batch decoded ahead is for the problem object it was drawn on: a step
// on another one (here an equal copy) draws its own.
TEST(PpoTest, OverlapDropsTheNextBatchForAnotherProblem) {
  Problem first = TinyBranches();
  Problem second = TinyBranches();
  PpoOptions o;
  o.seed = 3;
  o.batch = 8;
  o.overlap = true;
  std::unique_ptr<PpoTrainer> trainer = FreshTrainer(o);
  ASSERT_NE(trainer, nullptr);
  std::vector<bool> prefetched;
  for (const Problem* p : {&first, &second, &second, &first}) {
    absl::StatusOr<PpoStepStats> st = trainer->Step(*p, nullptr);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(st->valid, 9);
    prefetched.push_back(st->prefetched);
  }
  EXPECT_EQ(prefetched, (std::vector<bool>{false, false, true, false}));
}

TEST(PpoTest, DeterministicWithASeed) {
  Problem p = TinyChain();
  auto run = [&] {
    auto policy = Policy::Create(SmallConfig(), 9);
    PpoOptions o;
    o.seed = 9;
    o.batch = 8;
    auto trainer = PpoTrainer::Create(std::move(*policy), o);
    std::vector<double> out;
    for (int i = 0; i < 3; ++i)
      out.push_back((*trainer)->Step(p, nullptr)->mean_reward);
    return out;
  };
  EXPECT_EQ(run(), run());
}

}  // namespace
}  // namespace mcmpart::policy
