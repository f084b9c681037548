#include "solver/graph.h"

#include <cmath>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::testing::ElementsAre;

absl::Status BuildStatus(const v1::Graph& g) {
  return Graph::FromProto(g).status();
}

TEST(GraphTest, KeepsTopologicalMessageOrderAndBuildsAdjacency) {
  v1::Graph p;
  p.add_inputs("x");
  AddNode(p, "a", {"x"}, 1, 0, 4);
  AddNode(p, "b", {"a", "a"}, 1, 0, 2);
  AddNode(p, "c", {"a", "b"}, 1, 0, 1);
  auto g = Graph::FromProto(p);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->num_nodes(), 3);
  EXPECT_EQ(g->num_edges(), 3);  // a->b listed twice counts once
  EXPECT_EQ(g->node_name(0), "a");
  EXPECT_THAT(g->successors(0), ElementsAre(1, 2));
  EXPECT_THAT(g->predecessors(2), ElementsAre(0, 1));
  EXPECT_EQ(g->input_bytes(1), 4);  // once, and x is free
  EXPECT_EQ(g->input_bytes(0), 0);
  EXPECT_EQ(g->FindNode("c"), 2);
  EXPECT_EQ(g->FindNode("x"), std::nullopt);
}

TEST(GraphTest, SortsOutOfOrderMessageStably) {
  v1::Graph p;
  AddNode(p, "c", {"b"}, 1, 0, 1);
  AddNode(p, "a", {}, 1, 0, 1);
  AddNode(p, "b", {"a"}, 1, 0, 1);
  AddNode(p, "z", {}, 1, 0, 1);
  auto g = Graph::FromProto(p);
  ASSERT_TRUE(g.ok());
  std::vector<std::string> names;
  for (int v = 0; v < g->num_nodes(); ++v) names.push_back(g->node_name(v));
  EXPECT_THAT(names, ElementsAre("a", "b", "c", "z"));
  for (int v = 0; v < g->num_nodes(); ++v) {
    for (int s : g->successors(v)) EXPECT_LT(v, s);
  }
}

TEST(GraphTest, RejectsCycleNamingItsNodes) {
  v1::Graph p;
  AddNode(p, "a", {}, 1, 0, 1);
  AddNode(p, "b", {"a", "d"}, 1, 0, 1);
  AddNode(p, "c", {"b"}, 1, 0, 1);
  AddNode(p, "d", {"c"}, 1, 0, 1);
  absl::Status s = BuildStatus(p);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "graph has a cycle: 'b' -> 'c' -> 'd' -> 'b'");
}

TEST(GraphTest, RejectsSelfLoop) {
  v1::Graph p;
  AddNode(p, "a", {"a"}, 1, 0, 1);
  EXPECT_EQ(BuildStatus(p).message(), "graph has a cycle: 'a' -> 'a'");
}

TEST(GraphTest, RejectsDanglingInput) {
  v1::Graph p;
  p.add_inputs("x");
  AddNode(p, "a", {"x", "y"}, 1, 0, 1);
  EXPECT_EQ(BuildStatus(p).message(),
            "node 'a': input 'y' is neither a node nor a graph input");
}

TEST(GraphTest, RejectsDuplicateAndEmptyNames) {
  v1::Graph p;
  AddNode(p, "a", {}, 1, 0, 1);
  AddNode(p, "a", {}, 1, 0, 1);
  EXPECT_EQ(BuildStatus(p).message(),
            "duplicate node name 'a' (nodes #0 and #1)");
  v1::Graph q;
  AddNode(q, "", {}, 1, 0, 1)->set_op("Relu");
  EXPECT_EQ(BuildStatus(q).message(), "node #0 (op 'Relu') has an empty name");
}

TEST(GraphTest, RejectsBadNumbers) {
  v1::Graph p;
  AddNode(p, "a", {}, std::nan(""), 0, 1);
  EXPECT_EQ(BuildStatus(p).message(),
            "node 'a': flops is nan; must be a finite number >= 0");
  v1::Graph q;
  AddNode(q, "b", {}, 1, -5, 1);
  EXPECT_EQ(BuildStatus(q).message(),
            "node 'b': param_bytes is -5; must be a finite number >= 0");
  v1::Graph r;
  AddNode(r, "c", {}, 1, 0, std::numeric_limits<double>::infinity());
  EXPECT_EQ(BuildStatus(r).message(),
            "node 'c': output_bytes is inf; must be a finite number >= 0");
  v1::Graph t;
  AddNode(t, "d", {}, 1, 0, 1, -1);
  EXPECT_EQ(BuildStatus(t).message(),
            "node 'd': time_s is -1; must be a finite number >= 0");
}

TEST(GraphTest, RejectsEmptyGraph) {
  EXPECT_EQ(BuildStatus(v1::Graph()).message(), "graph has no nodes");
}

}  // namespace
}  // namespace mcmpart
