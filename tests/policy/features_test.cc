// Tests of the node and hardware features (policy/features.h).
#include "policy/features.h"

#include <cmath>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/problem.h"
#include "tests/policy/test_util.h"

namespace mcmpart::policy {
namespace {

using ::mcmpart::policy::testing::AddNode;
using ::mcmpart::policy::testing::Diamond;
using ::mcmpart::policy::testing::MakeProblem;
using ::mcmpart::policy::testing::Uniform;

TEST(FeaturesTest, HandMadeDiamond) {
  Problem p = MakeProblem(Diamond(), Uniform(2, 1000));
  absl::StatusOr<GraphFeatures> f = ExtractFeatures(p, 512);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->num_nodes, 4);
  EXPECT_EQ(f->num_chips, 2);
  ASSERT_EQ(f->node.size(), 4u * kNumNodeFeatures);
  auto at = [&](int v, NodeFeature k) {
    return f->node[v * kNumNodeFeatures + k];
  };
  // Total time 10 s; prefix before c = 1 + 2 = 3.
  EXPECT_FLOAT_EQ(at(0, kCumTimeBefore), 0.0f);
  EXPECT_FLOAT_EQ(at(2, kCumTimeBefore), 0.3f);
  EXPECT_FLOAT_EQ(at(3, kCumTimeAfter), 1.0f);
  EXPECT_FLOAT_EQ(at(3, kTopoPosition), 1.0f);
  EXPECT_FLOAT_EQ(at(1, kTopoPosition), 1.0f / 3);
  // a has two successors and no predecessors.
  EXPECT_FLOAT_EQ(at(0, kLogOutDegree), std::log1p(2.0f) / 3);
  EXPECT_FLOAT_EQ(at(0, kLogInDegree), 0.0f);
  // time(d) = 4 s against an ideal chip time of 10 / 2 = 5 s.
  EXPECT_FLOAT_EQ(at(3, kTimeShare), std::log1p(0.8f));
  // c holds 330 bytes of a 1000-byte chip.
  EXPECT_FLOAT_EQ(at(2, kMemShareOfChip), std::log1p(0.33f));
  // Cut after b (position 1): a's (10) and b's (20) outputs cross: 30 bytes
  // over 1e9 B/s = 3e-8 s against 5 s.
  EXPECT_NEAR(at(1, kCutCost), std::log1p(3e-8 / 5), 1e-12);
  // a's output goes as far as c? no: its last reader is c (id 2).
  EXPECT_FLOAT_EQ(at(0, kSpan), 2.0f / 4);
  EXPECT_FLOAT_EQ(at(3, kSpan), 0.0f);
  // Time-balanced chips: a at 2 * 0.5 / 10 = 0.1, its last reader c at
  // 2 * (3 + 1.5) / 10 = 0.9: 0.8 chips under max_hops 1, / 4.
  EXPECT_FLOAT_EQ(at(0, kHopSpan), 0.8f / 4);
  EXPECT_FLOAT_EQ(at(3, kHopSpan), 0.0f);
  // d (40 bytes) and its producers b (20) and c (330) share max_hops + 1 =
  // 2 chips of 1000 bytes.
  EXPECT_FLOAT_EQ(at(3, kFanInWindow), std::log1p(390.0f / 2000));
  EXPECT_FLOAT_EQ(f->hardware[kHopsOfChips], 1.0f);  // 1 hop of C - 1 = 1
  EXPECT_EQ(f->op_id[0], HashOp("Conv", 512));
  EXPECT_EQ(f->edge_src.size(), 4u);
  EXPECT_FLOAT_EQ(f->hardware[kChipCount], 2.0f / 32);
  for (float x : f->node) EXPECT_TRUE(std::isfinite(x));
  for (float x : f->hardware) EXPECT_TRUE(std::isfinite(x));
}

TEST(FeaturesTest, UnseenOpsAndZeroFiguresStayFinite) {
  v1::Graph g;
  AddNode(g, "x", "NeverSeenOpType", {}, 0, 0, 0);
  AddNode(g, "y", "", {"x"}, 0, 0, 0);
  Problem p = MakeProblem(g, Uniform(3, 1));
  absl::StatusOr<GraphFeatures> f = ExtractFeatures(p, 64);
  ASSERT_TRUE(f.ok());
  for (float x : f->node) EXPECT_TRUE(std::isfinite(x));
  EXPECT_GE(f->op_id[0], 0);
  EXPECT_LT(f->op_id[0], 64);
  EXPECT_FALSE(ExtractFeatures(p, 0).ok());
}

}  // namespace
}  // namespace mcmpart::policy
