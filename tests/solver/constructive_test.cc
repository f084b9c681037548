// Tests of the "constructive" strategy and its placement heuristic
// (solver/constructive.h).
#include "solver/constructive.h"

#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::BruteForce;
using ::mcmpart::testing::Chain;
using ::mcmpart::testing::ChainWithSkip;
using ::mcmpart::testing::MakeProblem;
using ::mcmpart::testing::RandomDag;
using ::mcmpart::testing::RandomInstance;
using ::mcmpart::testing::Ring;
using ::mcmpart::testing::Throughput;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Hand-made graphs.

TEST(ConstructiveTest, ChainOfSixOnTwoChipsSplitsInHalf) {
  const Problem problem = MakeProblem(Chain({1, 1, 1, 1, 1, 1}), Ring(2, 1e9));
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 0, 0, 1, 1, 1));
  EXPECT_NEAR(Throughput(problem, *p), 1 / 3e-3, 1e-9);
}

TEST(ConstructiveTest, UnevenChainOnThreeChipsFindsTheUniqueOptimum) {
  // 4 | 1 1 2 | 2 2 ms: the only split with bottleneck 4 ms.
  const Problem problem = MakeProblem(Chain({4, 1, 1, 2, 2, 2}), Ring(3, 1e9));
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 1, 1, 1, 2, 2));
  EXPECT_NEAR(Throughput(problem, *p), 1 / 4e-3, 1e-9);
}

TEST(ConstructiveTest, UsesFewerChipsWhenMoreDoNotHelp) {
  // One 10 ms node dominates: 2 chips reach the 10 ms bottleneck already.
  const Problem problem = MakeProblem(Chain({10, 1, 1, 1, 1, 1}), Ring(3, 1e9));
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 1, 1, 1, 1, 1));
}

TEST(ConstructiveTest, UseAllChipsSpreadsOverEveryChip) {
  v1::Hardware hw = Ring(3, 1e9);
  hw.mutable_constraints()->set_use_all_chips(true);
  const Problem problem = MakeProblem(Chain({10, 1, 1, 1, 1, 1}), hw);
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Evaluator(problem).Score(*p).chips_used, 3);
  EXPECT_TRUE(Evaluator(problem).IsValid(*p));
  EXPECT_NEAR(Throughput(problem, *p), 1 / 10e-3, 1e-9);
}

TEST(ConstructiveTest, MemoryMovesTheCutAndCountsTransitBuffers) {
  // Two 12-byte-param nodes cannot share a 20-byte chip, so the compute
  // balanced 3 | 3 split is out; 1 | 5 fits: chip 1 holds n0's 1-byte
  // output in transit plus 13 + 4 * 1 bytes = 18 bytes.
  v1::Graph g;
  for (int i = 0; i < 6; ++i) {
    AddNode(&g, absl::StrCat("n", i), 1e9, i < 2 ? 12 : 0, 1,
            i > 0 ? std::vector<std::string>{absl::StrCat("n", i - 1)}
                  : std::vector<std::string>{});
  }
  {
    const Problem problem = MakeProblem(g, Ring(2, 18));
    absl::StatusOr<Assignment> p = ConstructPlacement(problem);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_THAT(*p, ElementsAre(0, 1, 1, 1, 1, 1));
    EXPECT_THAT(Evaluator(problem).Score(*p).memory_bytes, ElementsAre(13, 18));
  }
  {
    // One byte less and the transit buffer no longer fits: no split exists.
    const Problem problem = MakeProblem(g, Ring(2, 17));
    absl::StatusOr<Assignment> p = ConstructPlacement(problem);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("'n5'"));
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("chips are full"));
  }
}

TEST(ConstructiveTest, NodeLargerThanEveryChipIsNamed) {
  const Problem problem =
      MakeProblem(Chain({1, 1, 1}, {0, 2e9, 0}), Ring(2, 1e9));
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("node 'n1' needs 1907.35 MiB"));
  EXPECT_THAT(std::string(p.status().message()),
              HasSubstr("the largest chip has 953.67 MiB"));
}

TEST(ConstructiveTest, ContradictoryPinsAreNamed) {
  v1::Hardware hw = Ring(2, 1e9);
  (*hw.mutable_constraints()->mutable_pins())["n0"] = 1;
  (*hw.mutable_constraints()->mutable_pins())["n1"] = 0;
  const Problem problem = MakeProblem(Chain({1, 1, 1}), hw);
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  EXPECT_EQ(p.status(),
            absl::FailedPreconditionError(
                "pin puts 'n1' on chip 0 but its producer 'n0' is pinned to "
                "chip 1; data never flows backwards"));
}

TEST(ConstructiveTest, HonoursPins) {
  v1::Hardware hw = Ring(2, 1e9);
  (*hw.mutable_constraints()->mutable_pins())["n1"] = 1;
  const Problem problem = MakeProblem(Chain({1, 1, 1, 1, 1, 1}), hw);
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 1, 1, 1, 1, 1));
}

TEST(ConstructiveTest, HonoursColocation) {
  // The 3 | 3 cut would split {n2, n3}; cutting at 2 or 4 costs 4 ms.
  v1::Hardware hw = Ring(2, 1e9);
  v1::ColocationGroup* group =
      hw.mutable_constraints()->add_colocation_groups();
  group->add_nodes("n2");
  group->add_nodes("n3");
  const Problem problem = MakeProblem(Chain({1, 1, 1, 1, 1, 1}), hw);
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(Evaluator(problem).IsValid(*p));
  EXPECT_EQ((*p)[2], (*p)[3]);
  EXPECT_NEAR(Throughput(problem, *p), 1 / 4e-3, 1e-9);
}

TEST(ConstructiveTest, KeepsEveryEdgeWithinOneHop) {
  // 2 | 2 | 2 would send n0's output two hops; the best one-hop split uses
  // two chips.
  const Problem problem = MakeProblem(ChainWithSkip(), Ring(3, 1e9));
  absl::StatusOr<Assignment> p = ConstructPlacement(problem);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 0, 0, 1, 1, 1));
}

// A chain of 1 ms nodes with one long skip, `from` -> `to`.
v1::Graph ChainWithLongSkip(int n, int from, int to) {
  v1::Graph g = Chain(std::vector<double>(n, 1.0));
  g.mutable_nodes(to)->add_inputs(absl::StrCat("n", from));
  return g;
}

TEST(ConstructiveTest, SendsASkipTwoHopsUnderMaxHopsTwo) {
  // Eight 1 ms nodes, n1 -> n5, four chips. 2 | 2 | 2 | 2 puts n1 on chip 0
  // and n5 on chip 2: two hops, so 2 ms and 500/s under max_hops 2. Under
  // max_hops 1, n1..n5 (5 ms) must share two chips, and the best is 3 ms.
  v1::Hardware hw = Ring(4, 1e9);
  hw.mutable_constraints()->set_max_hops(2);
  const Problem two = MakeProblem(ChainWithLongSkip(8, 1, 5), hw);
  absl::StatusOr<Assignment> p = ConstructPlacement(two);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 0, 1, 1, 2, 2, 3, 3));
  // Link 1 carries n3's output and n1's on its way to n5: 2 x (1 us + 1
  // us latency) = 4 us, far below the 2 ms of compute.
  EXPECT_NEAR(Throughput(two, *p), 500.0, 1e-9);
  EXPECT_NEAR(Evaluator(two).Score(*p).comm_s[1], 4e-6, 1e-15);

  hw.mutable_constraints()->set_max_hops(1);
  const Problem one = MakeProblem(ChainWithLongSkip(8, 1, 5), hw);
  absl::StatusOr<Assignment> q = ConstructPlacement(one);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_NEAR(Throughput(one, *q), 1000.0 / 3, 1e-9);
}

TEST(ConstructiveTest, SendsASkipThreeHopsUnderMaxHopsThree) {
  // Ten 1 ms nodes, n1 -> n7, five chips: 2 | 2 | 2 | 2 | 2 sends n1's
  // output from chip 0 to chip 3. Under max_hops 2 the seven nodes n1..n7
  // share three chips: 3 ms at best.
  v1::Hardware hw = Ring(5, 1e9);
  hw.mutable_constraints()->set_max_hops(3);
  const Problem three = MakeProblem(ChainWithLongSkip(10, 1, 7), hw);
  absl::StatusOr<Assignment> p = ConstructPlacement(three);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 0, 1, 1, 2, 2, 3, 3, 4, 4));
  EXPECT_NEAR(Throughput(three, *p), 500.0, 1e-9);

  hw.mutable_constraints()->set_max_hops(2);
  const Problem two = MakeProblem(ChainWithLongSkip(10, 1, 7), hw);
  absl::StatusOr<Assignment> q = ConstructPlacement(two);
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_TRUE(Evaluator(two).IsValid(*q));
  EXPECT_NEAR(Throughput(two, *q), 1000.0 / 3, 1e-9);
}

TEST(ConstructiveTest, StrategyReportsOnceAndConverges) {
  const Problem problem = MakeProblem(Chain({1, 1, 1, 1, 1, 1}), Ring(2, 1e9));
  Constructive strategy;
  EXPECT_EQ(strategy.name(), "constructive");
  int calls = 0;
  StopToken stop;
  absl::StatusOr<StrategyResult> result =
      strategy.Run(problem, Budget(), stop, [&](const Improvement& imp) {
        ++calls;
        EXPECT_THAT(imp.placement, ElementsAre(0, 0, 0, 1, 1, 1));
        EXPECT_EQ(imp.samples, 1);
      });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(result->reason, EndReason::kConverged);
  EXPECT_EQ(result->samples, 1);
  EXPECT_THAT(result->best, ElementsAre(0, 0, 0, 1, 1, 1));
  EXPECT_NEAR(result->throughput_per_s, 1 / 3e-3, 1e-9);
  EXPECT_NEAR(result->quality, 1.0, 1e-9);
}

TEST(ConstructiveTest, StrategyFailsWithTheHeuristicsReason) {
  const Problem problem =
      MakeProblem(Chain({1, 1, 1}, {0, 2e9, 0}), Ring(2, 1e9));
  StopToken stop;
  absl::StatusOr<StrategyResult> result =
      Constructive().Run(problem, Budget(), stop, nullptr);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("'n1'"));
}

// ---------------------------------------------------------------------------
// Random DAGs.

TEST(ConstructiveTest, ValidOnRandomDagsAndRarelyMissesAFeasibleInstance) {
  // Measured: of these 1,000 tiny instances (3-8 nodes, 2-3 chips, SRAM at
  // 0.8-1.5 times an even share, a third with pins and colocation), brute
  // force finds 220 feasible and the constructive places all 220 (100%).
  // Splitting the graph's own topological order alone misses 39 of the 220
  // (18%): placements that need independent branches interleaved
  // differently, which the extra orders provide. The assertion allows a 2%
  // miss rate.
  std::mt19937_64 rng(7);
  int feasible = 0, missed = 0;
  for (int trial = 0; trial < 1000; ++trial) {
    const int n = 3 + trial % 6;
    const int chips = 2 + trial % 2;
    const double slack = 0.8 + 0.7 * ((rng() >> 11) * 0x1.0p-53);
    const RandomInstance inst = RandomDag(rng, n, chips, slack, trial % 3 == 0);
    const Problem problem = MakeProblem(inst.graph, inst.hardware);
    const Assignment optimum = BruteForce(problem);
    absl::StatusOr<Assignment> p = ConstructPlacement(problem);
    if (p.ok()) {
      EXPECT_TRUE(Evaluator(problem).IsValid(*p)) << "trial " << trial;
      EXPECT_FALSE(optimum.empty()) << "trial " << trial;
    } else {
      EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition)
          << p.status();
    }
    if (!optimum.empty()) {
      ++feasible;
      if (!p.ok()) ++missed;
    }
  }
  EXPECT_GT(feasible, 200);
  EXPECT_LE(missed, feasible / 50) << missed << " of " << feasible;
}

TEST(ConstructiveTest, ValidOnLargerRandomDags) {
  std::mt19937_64 rng(11);
  int ok = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const int chips = 2 + trial % 7;
    const RandomInstance inst = RandomDag(rng, 300, chips, 1.3, trial % 2 == 0);
    const Problem problem = MakeProblem(inst.graph, inst.hardware);
    absl::StatusOr<Assignment> p = ConstructPlacement(problem);
    if (!p.ok()) continue;
    ++ok;
    EXPECT_TRUE(Evaluator(problem).IsValid(*p)) << "trial " << trial;
  }
  EXPECT_GE(ok, 35);
}

}  // namespace
}  // namespace mcmpart
