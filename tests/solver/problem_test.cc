// Tests of a problem's checks and derived figures (solver/problem.h).
#include "solver/problem.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MustBuild;
using ::mcmpart::testing::UniformHardware;

TEST(ProblemTest, UnknownPinNode) {
  v1::Graph g;
  AddNode(g, "a", {}, 1, 1, 1);
  v1::Hardware hw = UniformHardware(2, 10, 1, 1, 1, 0);
  (*hw.mutable_constraints()->mutable_pins())["zz"] = 0;
  auto p = Problem::Create(MustBuild(g), hw);
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message(), "constraints.pins: unknown node 'zz'");
}

TEST(ProblemTest, PinOutOfRange) {
  v1::Graph g;
  AddNode(g, "a", {}, 1, 1, 1);
  v1::Hardware hw = UniformHardware(2, 10, 1, 1, 1, 0);
  (*hw.mutable_constraints()->mutable_pins())["a"] = 5;
  auto p = Problem::Create(MustBuild(g), hw);
  EXPECT_EQ(p.status().message(),
            "constraints.pins: node 'a' is pinned to chip 5 but the hardware "
            "has chips 0..1");
}

TEST(ProblemTest, MaxHopsMustBePositive) {
  v1::Graph g;
  AddNode(g, "a", {}, 1, 1, 1);
  v1::Hardware hw = UniformHardware(2, 10, 1, 1, 1, 0);
  hw.mutable_constraints()->set_max_hops(0);
  auto p = Problem::Create(MustBuild(g), hw);
  EXPECT_EQ(p.status().message(), "constraints.max_hops is 0; must be >= 1");
}

TEST(ProblemTest, HeterogeneousUpperBoundUsesFastestChip) {
  v1::Graph g;
  AddNode(g, "a", {}, 100, 0, 0);
  AddNode(g, "b", {"a"}, 100, 0, 0);
  v1::Hardware hw = UniformHardware(2, 10, 100, 1, 1, 0);
  hw.mutable_chips(1)->set_peak_flops(200);
  auto p = Problem::Create(MustBuild(g), hw);
  ASSERT_TRUE(p.ok());
  EXPECT_DOUBLE_EQ(p->time(0, 0), 1.0);
  EXPECT_DOUBLE_EQ(p->time(0, 1), 0.5);
  // max(sum 0.5+0.5 over 2 chips, max 0.5) = 0.5.
  EXPECT_DOUBLE_EQ(p->upper_bound_per_s(), 2.0);
}

}  // namespace
}  // namespace mcmpart
