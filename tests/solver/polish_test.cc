// Tests of solver/polish.h: the greedy descent on hand-worked examples (a
// single move, a block that no single move reaches, a swap where memory
// rules out both single moves), its contract
// against every valid placement of small random DAGs, and its errors.
#include "solver/polish.h"

#include <cstdint>
#include <random>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/strategy.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MakeProblem;
using ::mcmpart::testing::RandomDag;
using ::mcmpart::testing::Ring;
using ::mcmpart::testing::Throughput;
using ::testing::ElementsAre;

// Three independent inputs a (1 ms), b (3 ms) and c (2 ms) read by j
// (1 us), 1 KB outputs (2 us on a link, latency included), on two chips.
Problem FanIn() {
  v1::Graph g;
  AddNode(&g, "a", 1e9, 0, 1000);
  AddNode(&g, "b", 3e9, 0, 1000);
  AddNode(&g, "c", 2e9, 0, 1000);
  AddNode(&g, "j", 1e6, 0, 1000, {"a", "b", "c"});
  return MakeProblem(g, Ring(2, 1e9));
}

TEST(PolishTest, MovesOneBranchAcrossTheBoundary) {
  const Problem problem = FanIn();
  // Chip 0 {a, b} 4 ms, chip 1 {c, j} 2.001 ms: the bottleneck is 4 ms.
  const Assignment start = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(Throughput(problem, start), 1 / 4e-3);
  Polisher polisher(problem);
  absl::StatusOr<Assignment> p = polisher.Run(start, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  // a to chip 1: chip 0 {b} 3 ms, chip 1 {a, c, j} 3.001 ms, link 2 us.
  // Then nothing improves: b alone would empty chip 0, c to chip 0 makes
  // it 5 ms, j must follow its inputs.
  EXPECT_THAT(*p, ElementsAre(1, 0, 1, 1));
  EXPECT_DOUBLE_EQ(Throughput(problem, *p), 1 / 3.001e-3);
  EXPECT_EQ(polisher.moves(), 1);
}

// The chain r (2 ms) -> u (1 ms, a 10 MB output: 10 ms on a link) ->
// w (1 ms) -> z (0.5 ms), other outputs 1 KB.
Problem HeavyEdgeChain() {
  v1::Graph g;
  AddNode(&g, "r", 2e9, 0, 1000);
  AddNode(&g, "u", 1e9, 0, 1e7, {"r"});
  AddNode(&g, "w", 1e9, 0, 1000, {"u"});
  AddNode(&g, "z", 0.5e9, 0, 1000, {"w"});
  return MakeProblem(g, Ring(2, 1e9));
}

TEST(PolishTest, ShiftsABlockThatNoSingleMoveReaches) {
  const Problem problem = HeavyEdgeChain();
  // Chip 0 {r, u, w} 4 ms, chip 1 {z} 0.5 ms.
  const Assignment start = {0, 0, 0, 1};
  EXPECT_DOUBLE_EQ(Throughput(problem, start), 250);
  // Alone, w to chip 1 sends u's 10 MB over the link (10.001 ms), z to
  // chip 0 makes it 4.5 ms, and r and u cannot move: no single move helps.
  PolishOptions singles;
  singles.max_block = 1;
  Polisher single(problem, singles);
  absl::StatusOr<Assignment> p = single.Run(start, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, start);
  EXPECT_EQ(single.moves(), 0);
  // The block {w, u} together: chip 0 {r} 2 ms, chip 1 {u, w, z} 2.5 ms,
  // and only r's 1 KB crosses.
  Polisher polisher(problem);
  p = polisher.Run(start, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 1, 1, 1));
  EXPECT_DOUBLE_EQ(Throughput(problem, *p), 400);
  EXPECT_EQ(polisher.moves(), 1);
}

// s (3 ms) feeds a (2 ms) and b (1 ms), which t (0.5 ms) joins; a and b
// hold 60 MB of parameters each and a chip holds 100 MB.
Problem TwoHeavyBranches() {
  v1::Graph g;
  AddNode(&g, "s", 3e9, 0, 1000);
  AddNode(&g, "a", 2e9, 60e6, 1000, {"s"});
  AddNode(&g, "b", 1e9, 60e6, 1000, {"s"});
  AddNode(&g, "t", 0.5e9, 0, 1000, {"a", "b"});
  return MakeProblem(g, Ring(2, 100e6));
}

TEST(PolishTest, SwapsTwoBranchesThatMemoryKeepsApart) {
  const Problem problem = TwoHeavyBranches();
  // Chip 0 {s, a} 5 ms, chip 1 {b, t} 1.5 ms. Either branch alone on the
  // other chip needs 120 MB there, and s and t cannot move.
  const Assignment start = {0, 0, 1, 1};
  EXPECT_DOUBLE_EQ(Throughput(problem, start), 200);
  PolishOptions no_swaps;
  no_swaps.swaps = false;
  absl::StatusOr<Assignment> p = Polish(problem, start, nullptr, no_swaps);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, start);
  // Swapped: chip 0 {s, b} 4 ms, chip 1 {a, t} 2.5 ms, 60 MB each.
  p = Polish(problem, start, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_THAT(*p, ElementsAre(0, 1, 0, 1));
  EXPECT_DOUBLE_EQ(Throughput(problem, *p), 250);
}

// Every valid placement of small random DAGs (with pins and colocation
// groups now and then, max_hops 1 and 2): the polished placement is valid,
// never worse, a fixed point of Polish, and no single node outside a
// colocation group can move to another chip and raise its throughput.
TEST(PolishTest, NeverWorseAndLocallyOptimalOnEveryPlacement) {
  std::mt19937_64 rng(7);
  int improved = 0, placements = 0;
  for (int trial = 0; trial < 40; ++trial) {
    testing::RandomInstance inst =
        RandomDag(rng, 8, 3, 2.0 + 0.5 * (trial % 3), trial % 4 == 0);
    inst.hardware.mutable_constraints()->set_max_hops(1 + trial % 2);
    const Problem problem =
        MakeProblem(inst.graph, inst.hardware, inst.hardware.constraints());
    std::vector<bool> grouped(problem.num_nodes(), false);
    for (const std::vector<int>& group : problem.colocation_groups()) {
      for (int v : group) grouped[v] = true;
    }
    Evaluator eval(problem);
    Polisher polisher(problem);
    const int n = problem.num_nodes();
    const int chips = problem.num_chips();
    Assignment p(n, 0);
    while (true) {
      if (eval.IsValid(p)) {
        ++placements;
        const double before = eval.Score(p).throughput_per_s;
        absl::StatusOr<Assignment> q = polisher.Run(p, nullptr);
        ASSERT_TRUE(q.ok()) << q.status();
        ASSERT_TRUE(eval.IsValid(*q));
        const double after = eval.Score(*q).throughput_per_s;
        ASSERT_GE(after, before);
        if (after > before) ++improved;
        absl::StatusOr<Assignment> again = polisher.Run(*q, nullptr);
        ASSERT_TRUE(again.ok()) << again.status();
        EXPECT_EQ(*again, *q);
        for (int v = 0; v < n; ++v) {
          if (grouped[v]) continue;
          Assignment moved = *q;
          for (int c = 0; c < chips; ++c) {
            moved[v] = c;
            if (c == (*q)[v] || !eval.IsValid(moved)) continue;
            EXPECT_LE(eval.Score(moved).throughput_per_s, after * (1 + 1e-9))
                << "trial " << trial << ": node " << v << " to chip " << c;
          }
        }
      }
      int i = 0;
      while (i < n && ++p[i] == chips) p[i++] = 0;
      if (i == n) break;
    }
  }
  // The instances are not trivial: 2,593 valid placements, of which
  // polishing improves 2,357 (measured).
  EXPECT_EQ(placements, 2593);
  EXPECT_GT(improved, placements / 2);
}

// At the deadline the descent ends where it is: the answer is the
// placement reached so far, valid and never worse (a full polish of this
// 2,000-node DAG on 16 chips makes a few hundred moves).
TEST(PolishTest, EndsAtTheDeadlineWithThePlacementReachedSoFar) {
  std::mt19937_64 rng(3);
  testing::RandomInstance inst = RandomDag(rng, 2000, 16, 3.0);
  inst.hardware.mutable_constraints()->set_max_hops(4);
  const Problem problem =
      MakeProblem(inst.graph, inst.hardware, inst.hardware.constraints());
  absl::StatusOr<Assignment> start = ConstructPlacement(problem);
  ASSERT_TRUE(start.ok()) << start.status();
  Polisher full(problem);
  absl::StatusOr<Assignment> p = full.Run(*start, nullptr);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_GT(full.moves(), 100);
  Polisher late(problem);
  absl::StatusOr<Assignment> q =
      late.Run(*start, nullptr, absl::InfinitePast());
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_LT(late.moves(), full.moves() / 2);
  EXPECT_TRUE(Evaluator(problem).IsValid(*q));
  EXPECT_GE(Throughput(problem, *q), Throughput(problem, *start));
}

TEST(PolishTest, RejectsAnInvalidPlacement) {
  const Problem problem = FanIn();
  Polisher polisher(problem);
  // j before its inputs: data would flow backwards.
  absl::StatusOr<Assignment> p = polisher.Run({1, 1, 1, 0}, nullptr);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(),
            "polish needs a valid placement of every node");
  p = polisher.Run({0, 0, 1}, nullptr);
  EXPECT_EQ(p.status(), absl::InvalidArgumentError(
                            "polish needs a valid placement of every node"));
}

TEST(PolishTest, RejectsOptionsOutOfRange) {
  PolishOptions o;
  o.max_block = 0;
  EXPECT_EQ(ValidatePolishOptions(o).message(),
            "polish max_block 0 is not >= 1");
  o.max_block = 1;
  o.max_passes = -2;
  EXPECT_EQ(ValidatePolishOptions(o).message(),
            "polish max_passes -2 is not >= 1");
  const Problem problem = FanIn();
  absl::StatusOr<Assignment> p = Polish(problem, {0, 0, 1, 1}, nullptr, o);
  EXPECT_EQ(p.status(),
            absl::InvalidArgumentError("polish max_passes -2 is not >= 1"));
}

TEST(PolishTest, StopsWhenTheTokenIsSet) {
  const Problem problem = FanIn();
  StopToken stop;
  stop.RequestStop();
  absl::StatusOr<Assignment> p = Polish(problem, {0, 0, 1, 1}, &stop);
  EXPECT_EQ(p.status(), absl::CancelledError("polish stopped"));
}

}  // namespace
}  // namespace mcmpart
