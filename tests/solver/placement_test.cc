// Tests of reading placements (solver/placement.h).
#include "solver/placement.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/problem.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MustBuild;
using ::mcmpart::testing::UniformHardware;
using ::testing::ElementsAre;

TEST(PlacementTest, FromProtoErrors) {
  v1::Graph g;
  AddNode(g, "a", {}, 1, 1, 1);
  AddNode(g, "b", {"a"}, 1, 1, 1);
  auto problem =
      Problem::Create(MustBuild(g), UniformHardware(2, 10, 1, 1, 1, 0));
  ASSERT_TRUE(problem.ok());
  v1::Placement pl;
  (*pl.mutable_assignment())["a"] = 0;
  EXPECT_EQ(AssignmentFromProto(*problem, pl).status().message(),
            "placement: node 'b' has no chip (1 of 2 nodes unassigned)");
  auto partial = AssignmentFromProto(*problem, pl, /*allow_missing=*/true);
  ASSERT_TRUE(partial.ok());
  EXPECT_THAT(*partial, ElementsAre(0, -1));
  (*pl.mutable_assignment())["b"] = 2;
  EXPECT_EQ(AssignmentFromProto(*problem, pl).status().message(),
            "placement: node 'b' is on chip 2; the hardware has chips 0..1");
  (*pl.mutable_assignment())["b"] = 1;
  (*pl.mutable_assignment())["q"] = 1;
  EXPECT_EQ(AssignmentFromProto(*problem, pl).status().message(),
            "placement: unknown node 'q'");
}

}  // namespace
}  // namespace mcmpart
