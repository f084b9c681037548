// Tests of the max-flow under the repair's min-cut bound
// (solver/repair/max_flow.h): flows worked by hand, limits, a long chain
// (the DFS is iterative), and the minimum cut against brute force over every
// s-t cut of small random graphs.
#include "solver/repair/max_flow.h"

#include <cstdint>
#include <random>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "solver/strategy.h"

namespace mcmpart::repair {
namespace {

struct Arc {
  int from;
  int to;
  int64_t cap;
};

MaxFlow Build(int nodes, const std::vector<Arc>& arcs) {
  MaxFlow flow(nodes);
  for (const Arc& a : arcs) flow.AddArc(a.from, a.to, a.cap);
  return flow;
}

std::vector<bool> SourceSide(const MaxFlow& flow, int nodes) {
  std::vector<bool> side(nodes);
  for (int v = 0; v < nodes; ++v) side[v] = flow.SourceSide(v);
  return side;
}

// Capacity of the arcs leaving the source side.
int64_t CutCapacity(const std::vector<Arc>& arcs,
                    const std::vector<bool>& side) {
  int64_t cut = 0;
  for (const Arc& a : arcs) {
    if (side[a.from] && !side[a.to]) cut += a.cap;
  }
  return cut;
}

TEST(MaxFlowTest, OneArc) {
  MaxFlow flow = Build(2, {{0, 1, 5}});
  EXPECT_EQ(flow.Run(0, 1), 5);
  EXPECT_TRUE(flow.SourceSide(0));
  EXPECT_FALSE(flow.SourceSide(1));
}

TEST(MaxFlowTest, ParallelArcsAddUp) {
  MaxFlow flow = Build(2, {{0, 1, 2}, {0, 1, 3}, {1, 0, 7}});
  EXPECT_EQ(flow.Run(0, 1), 5);
}

TEST(MaxFlowTest, NoPathMeansNoFlow) {
  // 0 -> 1 and 2 -> 3; t = 3 is not reachable from s = 0.
  MaxFlow flow = Build(4, {{0, 1, 4}, {2, 3, 4}});
  EXPECT_EQ(flow.Run(0, 3), 0);
  EXPECT_EQ(SourceSide(flow, 4), (std::vector<bool>{true, true, false, false}));
}

// The network of Cormen et al., "Introduction to Algorithms", figure 26.1:
// s = 0, v1..v4 = 1..4, t = 5. Maximum flow 23; the minimum cut separates
// {s, v1, v2, v4} from {v3, t} through v1->v3 (12), v4->v3 (7), v4->t (4).
TEST(MaxFlowTest, TextbookNetwork) {
  const std::vector<Arc> arcs = {{0, 1, 16}, {0, 2, 13}, {2, 1, 4},
                                 {1, 3, 12}, {3, 2, 9},  {2, 4, 14},
                                 {4, 3, 7},  {3, 5, 20}, {4, 5, 4}};
  MaxFlow flow = Build(6, arcs);
  EXPECT_EQ(flow.Run(0, 5), 23);
  const std::vector<bool> side = SourceSide(flow, 6);
  EXPECT_EQ(side, (std::vector<bool>{true, true, true, false, true, false}));
  EXPECT_EQ(CutCapacity(arcs, side), 23);
}

// Two paths that share a middle arc: s->a->t, s->b->t and a->b. By hand:
// a->t carries 2, a->b and s->b carry 1 each into b->t (2): 4 in all, and
// s->a (4) keeps one unit spare, so the source side is {s, a} and the cut
// is a->t, a->b, s->b.
TEST(MaxFlowTest, FlowSplitsAndMerges) {
  // s = 0, a = 1, b = 2, t = 3.
  const std::vector<Arc> arcs = {
      {0, 1, 4}, {1, 3, 2}, {1, 2, 1}, {0, 2, 1}, {2, 3, 2}};
  MaxFlow flow = Build(4, arcs);
  EXPECT_EQ(flow.Run(0, 3), 4);
  const std::vector<bool> side = SourceSide(flow, 4);
  EXPECT_EQ(side, (std::vector<bool>{true, true, false, false}));
  EXPECT_EQ(CutCapacity(arcs, side), 4);
}

// A flow that must cancel an earlier augmentation: the first path found may
// take 0->1->2->3, and only the residual arc 2->1 lets 0->2->1->3 through.
TEST(MaxFlowTest, UsesResidualArcs) {
  const std::vector<Arc> arcs = {
      {0, 1, 1}, {0, 2, 1}, {1, 2, 1}, {1, 3, 1}, {2, 3, 1}};
  MaxFlow flow = Build(4, arcs);
  EXPECT_EQ(flow.Run(0, 3), 2);
  EXPECT_EQ(CutCapacity(arcs, SourceSide(flow, 4)), 2);
}

TEST(MaxFlowTest, LongChainDoesNotOverflowTheStack) {
  constexpr int kNodes = 200'000;
  MaxFlow flow(kNodes);
  for (int v = 0; v + 1 < kNodes; ++v) {
    flow.AddArc(v, v + 1, v == kNodes / 2 ? 3 : 1'000'000);
  }
  EXPECT_EQ(flow.Run(0, kNodes - 1), 3);
  EXPECT_TRUE(flow.SourceSide(kNodes / 2));
  EXPECT_FALSE(flow.SourceSide(kNodes / 2 + 1));
}

TEST(MaxFlowTest, StopsOnThePastDeadlineOrTheToken) {
  const std::vector<Arc> arcs = {{0, 1, 5}, {1, 2, 5}};
  MaxFlow late = Build(3, arcs);
  EXPECT_EQ(late.Run(0, 2, absl::Now() - absl::Seconds(1), nullptr), -1);
  StopToken stop;
  stop.RequestStop();
  MaxFlow stopped = Build(3, arcs);
  EXPECT_EQ(stopped.Run(0, 2, absl::InfiniteFuture(), &stop), -1);
  StopToken idle;
  MaxFlow runs = Build(3, arcs);
  EXPECT_EQ(runs.Run(0, 2, absl::InfiniteFuture(), &idle), 5);
}

// On small random graphs the flow equals the least capacity of any s-t cut
// (every subset of the other nodes joined to s), and the reported source
// side is such a cut.
TEST(MaxFlowTest, MatchesBruteForceMinimumCut) {
  std::mt19937_64 rng(2024);
  for (int trial = 0; trial < 500; ++trial) {
    const int nodes = 2 + static_cast<int>(rng() % 7);  // 2..8
    std::vector<Arc> arcs;
    for (int u = 0; u < nodes; ++u) {
      for (int v = 0; v < nodes; ++v) {
        if (u != v && rng() % 3 == 0) {
          arcs.push_back({u, v, static_cast<int64_t>(rng() % 10)});
        }
      }
    }
    const int s = 0;
    const int t = nodes - 1;
    int64_t brute = -1;
    for (uint32_t mask = 0; mask < (1u << nodes); ++mask) {
      if (!(mask & (1u << s)) || (mask & (1u << t))) continue;
      std::vector<bool> side(nodes);
      for (int v = 0; v < nodes; ++v) side[v] = (mask >> v) & 1;
      const int64_t cut = CutCapacity(arcs, side);
      if (brute < 0 || cut < brute) brute = cut;
    }
    MaxFlow flow = Build(nodes, arcs);
    const int64_t value = flow.Run(s, t);
    ASSERT_EQ(value, brute) << "trial " << trial;
    const std::vector<bool> side = SourceSide(flow, nodes);
    ASSERT_TRUE(side[s]);
    ASSERT_FALSE(side[t]);
    ASSERT_EQ(CutCapacity(arcs, side), value) << "trial " << trial;
  }
}

}  // namespace
}  // namespace mcmpart::repair
