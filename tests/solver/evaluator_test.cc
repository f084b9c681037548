#include "solver/evaluator.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/placement.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MustBuild;
using ::mcmpart::testing::UniformHardware;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::SizeIs;

// The 5-node example, worked on paper.
//
// Hardware: 3 identical chips, SRAM 1000 B, 100 FLOP/s, 1000 B/s to SRAM;
// links 10 B/s and 0.5 s per tensor.
//
//   x (graph input) -> a -> b -> d -> e
//                      a -> c -> d
//                      a ---------> e          c lists a twice: one edge
//
// clang-format off
//  node flops param out time_s touched = param+out+inputs  time(v)
//  a    100   10    20  -      10+20+0 (x is free) = 30    max(1.00, 0.030) = 1.00
//  b    200   0     30  -      0+30+20             = 50    max(2.00, 0.050) = 2.00
//  c    50    900   10  -      900+10+20           = 930   max(0.50, 0.930) = 0.93
//  d    300   0     5   -      0+5+30+10           = 45    max(3.00, 0.045) = 3.00
//  e    0     0     8   2.5    (measured time wins)        2.50
// clang-format on
//
// Placement a,b -> chip 0; c,d -> chip 1; e -> chip 2.
//   compute(0) = 1 + 2 = 3.00, compute(1) = 0.93 + 3 = 3.93, compute(2) = 2.50
//   last(a) = 2 (e), last(b) = 1, last(c) = 1, last(d) = 2, last(e) = 2
//   link 0 carries a, b:  (20 + 30) / 10 + 2 * 0.5 = 6.0
//   link 1 carries a, d:  (20 + 5) / 10 + 2 * 0.5 = 3.5   (a sent once)
//   memory(0) = (10+20) + (0+30)                       = 60
//   memory(1) = (900+10) + (0+5) + transit a 20, b 30   = 965
//   memory(2) = (0+8) + transit a 20, d 5              = 33
//   bottleneck = max(3, 3.93, 2.5, 6, 3.5) = 6.0 on link 0; throughput 1/6
//   latency = 3 + 3.93 + 2.5 + 6 + 3.5 = 18.93
//   upper bound = 1 / max(9.43 / 3, 3) = 1 / 3.143333...
//   quality = 3.143333... / 6 = 0.5238888...
class WorkedExampleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    proto_.set_name("worked");
    proto_.add_inputs("x");
    AddNode(proto_, "a", {"x"}, 100, 10, 20);
    AddNode(proto_, "b", {"a"}, 200, 0, 30);
    AddNode(proto_, "c", {"a", "a"}, 50, 900, 10);
    AddNode(proto_, "d", {"b", "c"}, 300, 0, 5);
    AddNode(proto_, "e", {"d", "a"}, 0, 0, 8, 2.5);
    hw_ = UniformHardware(3, 1000, 100, 1000, 10, 0.5);
  }

  Problem Make(const v1::Constraints& constraints) {
    auto problem = Problem::Create(MustBuild(proto_), hw_, constraints);
    EXPECT_TRUE(problem.ok()) << problem.status();
    return *std::move(problem);
  }

  v1::Graph proto_;
  v1::Hardware hw_;
  const Assignment placement_ = {0, 0, 1, 1, 2};
};

constexpr double kTol = 1e-12;

TEST_F(WorkedExampleTest, EveryCostModelTerm) {
  v1::Constraints c;
  c.set_max_hops(2);
  Problem problem = Make(c);
  EXPECT_DOUBLE_EQ(problem.time(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(problem.time(1, 0), 2.0);
  EXPECT_DOUBLE_EQ(problem.time(2, 0), 0.93);
  EXPECT_DOUBLE_EQ(problem.time(3, 0), 3.0);
  EXPECT_DOUBLE_EQ(problem.time(4, 0), 2.5);
  EXPECT_DOUBLE_EQ(problem.touched_bytes(2), 930);

  Evaluator eval(problem);
  const Figures& f = eval.Score(placement_);
  EXPECT_THAT(f.compute_s,
              ElementsAre(DoubleNear(3.0, kTol), DoubleNear(3.93, kTol),
                          DoubleNear(2.5, kTol)));
  EXPECT_THAT(f.comm_s,
              ElementsAre(DoubleNear(6.0, kTol), DoubleNear(3.5, kTol)));
  EXPECT_THAT(f.memory_bytes, ElementsAre(60, 965, 33));
  EXPECT_THAT(f.link_bytes, ElementsAre(50, 25));
  EXPECT_THAT(f.link_tensors, ElementsAre(2, 2));
  EXPECT_NEAR(f.bottleneck_s, 6.0, kTol);
  EXPECT_EQ(f.bottleneck_link, 0);
  EXPECT_EQ(f.bottleneck_chip, -1);
  EXPECT_NEAR(f.throughput_per_s, 1.0 / 6, kTol);
  EXPECT_NEAR(f.latency_s, 18.93, kTol);
  EXPECT_EQ(f.chips_used, 3);
  EXPECT_NEAR(problem.upper_bound_per_s(), 1 / (9.43 / 3), kTol);
  EXPECT_NEAR(f.quality, (9.43 / 3) / 6, kTol);
  EXPECT_TRUE(eval.IsValid(placement_));

  v1::Evaluation e = eval.Evaluate(placement_);
  EXPECT_TRUE(e.valid());
  EXPECT_THAT(e.violations(), SizeIs(0));
  EXPECT_EQ(e.bottleneck(), "link 0");
  EXPECT_NEAR(e.quality(), 0.5238888888888889, 1e-12);
}

TEST_F(WorkedExampleTest, ChipBottleneckWhenLinksAreFast) {
  hw_ = UniformHardware(3, 1000, 100, 1000, 1e6, 0);
  v1::Constraints c;
  c.set_max_hops(2);
  Problem problem = Make(c);
  Evaluator eval(problem);
  const Figures& f = eval.Score(placement_);
  EXPECT_NEAR(f.bottleneck_s, 3.93, kTol);
  EXPECT_EQ(f.bottleneck_chip, 1);
  EXPECT_EQ(f.bottleneck_link, -1);
  EXPECT_EQ(eval.Evaluate(placement_).bottleneck(), "chip 1");
}

TEST_F(WorkedExampleTest, DefaultMaxHopsFlagsTheLongEdge) {
  Problem problem = Make({});
  Evaluator eval(problem);
  EXPECT_FALSE(eval.IsValid(placement_));
  std::vector<v1::Violation> v = eval.Violations(placement_);
  ASSERT_THAT(v, SizeIs(1));
  EXPECT_EQ(v[0].constraint(), "max_hops");
  EXPECT_EQ(v[0].message(),
            "edge 'a' -> 'e' spans 2 hops (chip 0 to chip 2); max_hops is 1");
  EXPECT_THAT(v[0].nodes(), ElementsAre("a", "e"));
  EXPECT_THAT(v[0].chips(), ElementsAre(0, 2));
}

TEST_F(WorkedExampleTest, AcyclicViolation) {
  v1::Constraints c;
  c.set_max_hops(2);
  Problem problem = Make(c);
  Evaluator eval(problem);
  const Assignment p = {0, 1, 0, 0, 2};  // b on 1 feeds d on 0
  EXPECT_FALSE(eval.IsValid(p));
  std::vector<v1::Violation> v = eval.Violations(p);
  ASSERT_THAT(v, SizeIs(1));
  EXPECT_EQ(v[0].constraint(), "acyclic");
  EXPECT_EQ(v[0].message(),
            "edge 'b' -> 'd' flows backwards from chip 1 to chip 0");
}

TEST_F(WorkedExampleTest, NoSkippingViolation) {
  v1::Constraints c;
  c.set_max_hops(2);
  Problem problem = Make(c);
  Evaluator eval(problem);
  const Assignment p = {0, 0, 0, 2, 2};  // chip 1 empty, chip 2 used
  EXPECT_FALSE(eval.IsValid(p));
  std::vector<v1::Violation> v = eval.Violations(p);
  ASSERT_THAT(v, SizeIs(1));
  EXPECT_EQ(v[0].constraint(), "no_skipping");
  EXPECT_EQ(
      v[0].message(),
      "chip 1 is empty but chip 2 is used; the chips in use must be 0..k-1");
  EXPECT_THAT(v[0].chips(), ElementsAre(1));
  // Chips 0..1 only is fine without use_all_chips.
  EXPECT_TRUE(eval.IsValid(Assignment{0, 0, 1, 1, 1}));
}

TEST_F(WorkedExampleTest, UseAllChipsViolation) {
  v1::Constraints c;
  c.set_max_hops(2);
  c.set_use_all_chips(true);
  Problem problem = Make(c);
  Evaluator eval(problem);
  const Assignment p = {0, 0, 1, 1, 1};
  EXPECT_FALSE(eval.IsValid(p));
  std::vector<v1::Violation> v = eval.Violations(p);
  ASSERT_THAT(v, SizeIs(1));
  EXPECT_EQ(v[0].constraint(), "no_skipping");
  EXPECT_EQ(v[0].message(),
            "chip 2 is empty but use_all_chips requires all 3 chips");
  EXPECT_TRUE(eval.IsValid(placement_));
}

TEST_F(WorkedExampleTest, MemoryViolationCountsTransitBuffers) {
  // Chip 1 holds 915 bytes of its own plus 50 in transit: 960 is too small.
  hw_ = UniformHardware(3, 960, 100, 1000, 10, 0.5);
  v1::Constraints c;
  c.set_max_hops(2);
  Problem problem = Make(c);
  Evaluator eval(problem);
  EXPECT_FALSE(eval.IsValid(placement_));
  std::vector<v1::Violation> v = eval.Violations(placement_);
  ASSERT_THAT(v, SizeIs(1));
  EXPECT_EQ(v[0].constraint(), "memory");
  EXPECT_EQ(
      v[0].message(),
      "chip 1 needs 0.00 MiB (965 bytes) but has 0.00 MiB (960 bytes) of SRAM");
  // Exactly full is valid.
  hw_ = UniformHardware(3, 965, 100, 1000, 10, 0.5);
  Problem exact = Make(c);
  EXPECT_TRUE(Evaluator(exact).IsValid(placement_));
}

TEST_F(WorkedExampleTest, PinAndColocationViolations) {
  v1::Constraints c;
  c.set_max_hops(2);
  (*c.mutable_pins())["d"] = 2;
  v1::ColocationGroup* group = c.add_colocation_groups();
  group->add_nodes("b");
  group->add_nodes("c");
  Problem problem = Make(c);
  Evaluator eval(problem);
  EXPECT_FALSE(eval.IsValid(placement_));
  std::vector<v1::Violation> v = eval.Violations(placement_);
  ASSERT_THAT(v, SizeIs(2));
  EXPECT_EQ(v[0].constraint(), "pin");
  EXPECT_EQ(v[0].message(),
            "node 'd' is pinned to chip 2 but placed on chip 1");
  EXPECT_EQ(v[1].constraint(), "colocation");
  EXPECT_EQ(
      v[1].message(),
      "colocation group 0 spans several chips: 'b' (chip 0), 'c' (chip 1)");
  EXPECT_THAT(v[1].nodes(), ElementsAre("b", "c"));
}

TEST_F(WorkedExampleTest, EveryViolationIsReported) {
  Problem problem = Make({});
  Evaluator eval(problem);
  // b -> d and c -> d flow backwards; a -> b, a -> e and d -> e span 2 hops.
  const Assignment p = {0, 2, 1, 0, 2};
  std::vector<v1::Violation> v = eval.Violations(p);
  std::vector<std::string> kinds;
  for (const auto& x : v) kinds.push_back(x.constraint());
  EXPECT_THAT(kinds, ElementsAre("acyclic", "acyclic", "max_hops", "max_hops",
                                 "max_hops"));
  EXPECT_EQ(v[0].message(),
            "edge 'b' -> 'd' flows backwards from chip 2 to chip 0");
  EXPECT_EQ(v[1].message(),
            "edge 'c' -> 'd' flows backwards from chip 1 to chip 0");
  EXPECT_EQ(v[2].message(),
            "edge 'a' -> 'b' spans 2 hops (chip 0 to chip 2); max_hops is 1");
  EXPECT_EQ(v[3].message(),
            "edge 'a' -> 'e' spans 2 hops (chip 0 to chip 2); max_hops is 1");
  EXPECT_EQ(v[4].message(),
            "edge 'd' -> 'e' spans 2 hops (chip 0 to chip 2); max_hops is 1");
}

}  // namespace
}  // namespace mcmpart
