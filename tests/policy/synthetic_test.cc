// Tests of the synthetic training graphs and hardware (policy/synthetic.h).
#include "policy/synthetic.h"

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph.h"
#include "solver/hardware.h"

namespace mcmpart::policy {
namespace {

TEST(SyntheticTest, EveryFamilyGivesValidGraphsOfTheAskedSize) {
  for (int f = 0; f < kNumSyntheticFamilies; ++f) {
    for (int size : {50, 400}) {
      v1::Graph g = SyntheticGraph(static_cast<SyntheticFamily>(f), size, 11);
      absl::StatusOr<Graph> graph = Graph::FromProto(g);
      ASSERT_TRUE(graph.ok())
          << SyntheticFamilyName(SyntheticFamily(f)) << ": " << graph.status();
      EXPECT_GE(graph->num_nodes(), size / 2);
      EXPECT_LE(graph->num_nodes(), size * 2);
      v1::Hardware hw = RandomHardware(g, 4, 1.5, 2);
      EXPECT_TRUE(Hardware::FromProto(hw).ok());
    }
  }
}

}  // namespace
}  // namespace mcmpart::policy
