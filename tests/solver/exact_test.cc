#include "solver/exact.h"

#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/bound.h"
#include "solver/evaluator.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/strategy.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MustBuild;
using ::mcmpart::testing::UniformHardware;
using ::mcmpart::testing::WideFanInProblem;
using ::testing::HasSubstr;

constexpr double kInf = std::numeric_limits<double>::infinity();

// The best bottleneck over every assignment of nodes to chips (C^n of
// them), +inf when none is valid.
double BruteForce(const Problem& problem) {
  const int n = problem.num_nodes();
  const int c = problem.num_chips();
  Evaluator eval(problem);
  Assignment p(n, 0);
  double best = kInf;
  while (true) {
    if (eval.IsValid(p)) best = std::min(best, eval.Score(p).bottleneck_s);
    int i = 0;
    while (i < n && ++p[i] == c) p[i++] = 0;
    if (i == n) break;
  }
  return best;
}

struct RandomCase {
  v1::Graph graph;
  v1::Hardware hardware;
  v1::Constraints constraints;
};

// Small random DAGs with long edges, chips and links that differ, pins,
// colocation groups, use_all_chips and SRAM tight enough to matter.
// `wide`: 5 or 6 chips, at most 6 nodes, 2 <= max_hops <= C - 2, where
// the pending nodes' ages decide what may close.
RandomCase MakeRandomCase(uint64_t seed, bool wide = false) {
  std::mt19937_64 rng(seed);
  auto uniform = [&](double lo, double hi) {
    return std::uniform_real_distribution<double>(lo, hi)(rng);
  };
  auto chance = [&](double p) { return uniform(0, 1) < p; };
  RandomCase rc;
  const int n =
      wide ? 3 + static_cast<int>(rng() % 4) : 1 + static_cast<int>(rng() % 8);
  const int chips =
      wide ? 5 + static_cast<int>(rng() % 2) : 1 + static_cast<int>(rng() % 4);
  double total_resident = 0;
  for (int v = 0; v < n; ++v) {
    v1::Node* node = rc.graph.add_nodes();
    node->set_name(absl::StrCat("n", v));
    node->set_op("Op");
    for (int u = 0; u < v; ++u) {
      if (chance(v - u == 1 ? 0.6 : 0.25))
        node->add_inputs(absl::StrCat("n", u));
    }
    node->set_time_s(chance(0.5) ? uniform(1, 10) : 0);
    node->set_flops(uniform(0, 10e6));
    node->set_param_bytes(chance(0.7) ? uniform(0, 100) : 0);
    node->set_output_bytes(uniform(0, 50));
    total_resident += node->param_bytes() + node->output_bytes();
  }
  rc.hardware.set_name("random");
  const bool same = chance(0.5);
  const double sram =
      total_resident / chips * (wide ? uniform(2, 4) : uniform(0.8, 2.5));
  for (int c = 0; c < chips; ++c) {
    v1::Chip* chip = rc.hardware.add_chips();
    chip->set_sram_bytes(same ? sram : sram * uniform(0.5, 1.5));
    chip->set_peak_flops(same ? 1e6 : uniform(0.5e6, 2e6));
    chip->set_mem_bandwidth(same ? 100 : uniform(50, 200));
  }
  for (int k = 0; k + 1 < chips; ++k) {
    v1::Link* link = rc.hardware.add_links();
    link->set_link_bandwidth(same ? 20 : uniform(5, 40));
    link->set_link_latency_s(same ? 0.5 : uniform(0, 2));
  }
  rc.constraints.set_max_hops(wide ? 2 + static_cast<int>(rng() % (chips - 3))
                                   : 1 + static_cast<int>(rng() % chips));
  rc.constraints.set_use_all_chips(n >= chips && chance(0.15));
  if (chance(0.25)) {
    const int v = static_cast<int>(rng() % n);
    (*rc.constraints.mutable_pins())[absl::StrCat("n", v)] =
        static_cast<int>(rng() % chips);
  }
  if (n >= 2 && chance(0.2)) {
    v1::ColocationGroup* group = rc.constraints.add_colocation_groups();
    const int a = static_cast<int>(rng() % n);
    const int b = (a + 1 + static_cast<int>(rng() % (n - 1))) % n;
    group->add_nodes(absl::StrCat("n", a));
    group->add_nodes(absl::StrCat("n", b));
  }
  return rc;
}

// 400 random instances: the proved optimum is the brute-force optimum,
// infeasible exactly when brute force finds nothing, and the bound of a
// search stopped early on purpose never exceeds the optimum.
TEST(ExactTest, MatchesBruteForceOnRandomSmallDags) {
  int feasible = 0, infeasible = 0, stopped = 0;
  for (uint64_t seed = 1; seed <= 400; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const RandomCase rc = MakeRandomCase(seed);
    absl::StatusOr<Problem> problem =
        Problem::Create(MustBuild(rc.graph), rc.hardware, rc.constraints);
    ASSERT_TRUE(problem.ok()) << problem.status();
    const double best = BruteForce(*problem);
    Evaluator eval(*problem);
    for (bool construct : {true, false}) {
      ExactOptions options;
      options.construct_incumbent = construct;
      absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
      if (std::isinf(best)) {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
            << r.status();
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_EQ(r->outcome, ExactOutcome::kProved);
      ASSERT_TRUE(eval.IsValid(r->best));
      EXPECT_NEAR(r->bottleneck_s / best, 1.0, 1e-9);
      EXPECT_NEAR(eval.Score(r->best).bottleneck_s / best, 1.0, 1e-9);
      EXPECT_EQ(r->bound_s, r->bottleneck_s);
    }
    std::isinf(best) ? ++infeasible : ++feasible;
    // Stopped early: the bound stays below the optimum, and a placement, if
    // any, is valid and no better than the optimum.
    // A beam search: any placement valid, its bound below the optimum.
    for (int64_t beam : {1, 3}) {
      ExactOptions options;
      options.beam = beam;
      options.construct_incumbent = false;
      absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
      if (!r.ok()) {
        EXPECT_TRUE(std::isinf(best)) << r.status();
        continue;
      }
      if (!std::isinf(best)) {
        EXPECT_LE(r->bound_s, best * (1 + 1e-12));
      }
      if (!r->best.empty()) {
        EXPECT_TRUE(eval.IsValid(r->best));
        EXPECT_GE(r->bottleneck_s, best * (1 - 1e-12));
      }
      if (r->outcome == ExactOutcome::kProved && !std::isinf(best)) {
        EXPECT_NEAR(r->bottleneck_s / best, 1.0, 1e-9);
      }
    }
    for (int64_t limit : {1, 2000, 6000}) {
      ExactOptions options;
      options.memory_limit_bytes = limit;
      options.construct_incumbent = limit != 2000;
      absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
      if (!r.ok()) {
        EXPECT_TRUE(std::isinf(best)) << r.status();
        continue;
      }
      if (r->outcome != ExactOutcome::kProved) ++stopped;
      if (!std::isinf(best)) {
        EXPECT_LE(r->bound_s, best * (1 + 1e-12));
      }
      if (!r->best.empty()) {
        EXPECT_TRUE(eval.IsValid(r->best));
        EXPECT_GE(r->bottleneck_s, best * (1 - 1e-12));
        EXPECT_LE(r->bound_s, r->bottleneck_s);
      }
    }
  }
  // The generator must exercise both outcomes and early stops.
  EXPECT_GT(feasible, 200);
  EXPECT_GT(infeasible, 20);
  EXPECT_GT(stopped, 200);
}

// Hop limits that bind on more than the next chip: the pending nodes'
// ages (a node's readers may be up to max_hops chips later) must follow
// each node whatever order its downset was first reached in.
TEST(ExactTest, MatchesBruteForceWithHopLimitsBetweenTwoAndCMinusTwo) {
  int feasible = 0;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    const RandomCase rc = MakeRandomCase(seed, /*wide=*/true);
    absl::StatusOr<Problem> problem =
        Problem::Create(MustBuild(rc.graph), rc.hardware, rc.constraints);
    ASSERT_TRUE(problem.ok()) << problem.status();
    const double best = BruteForce(*problem);
    for (bool construct : {true, false}) {
      ExactOptions options;
      options.construct_incumbent = construct;
      absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
      if (std::isinf(best)) {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(Evaluator(*problem).IsValid(r->best));
      EXPECT_NEAR(r->bottleneck_s / best, 1.0, 1e-9);
    }
    feasible += !std::isinf(best);
  }
  EXPECT_GT(feasible, 60);
}

// The instance on which a boundary kept in the order its downset was first
// reached gave a pending node a fresh age: the search then accepted a
// three-hop edge and pruned the optimum.
TEST(ExactTest, PendingAgesFollowTheirNodes) {
  v1::Graph g;
  AddNode(g, "n0", {}, 0, 40, 5, 3);
  AddNode(g, "n1", {}, 0, 40, 2, 5);
  AddNode(g, "n2", {}, 0, 20, 20, 6);
  AddNode(g, "n3", {"n1", "n2"}, 0, 0, 1, 4);
  AddNode(g, "n4", {}, 0, 20, 1, 3);
  AddNode(g, "n5", {"n1", "n4"}, 0, 10, 10, 3);
  v1::Constraints c;
  c.set_max_hops(2);
  absl::StatusOr<Problem> problem = Problem::Create(
      MustBuild(g), UniformHardware(4, 80, 1e12, 1e12, 10, 0), c);
  ASSERT_TRUE(problem.ok()) << problem.status();
  ASSERT_DOUBLE_EQ(BruteForce(*problem), 7);
  for (bool construct : {true, false}) {
    ExactOptions options;
    options.construct_incumbent = construct;
    absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outcome, ExactOutcome::kProved);
    EXPECT_TRUE(Evaluator(*problem).IsValid(r->best));
    EXPECT_DOUBLE_EQ(r->bottleneck_s, 7);
  }
}

// A chain a -> b -> c -> d of 2, 1, 1, 2 us on two chips whose link moves
// 1 byte per us with 0.5 us per tensor; b's and c's outputs are 1 byte,
// a's is 4. Splits: {a}|{b,c,d}: max(2, 4 + 0.5, 4) = 4.5;
// {a,b}|{c,d}: max(3, 1.5, 3) = 3; {a,b,c}|{d}: max(4, 1.5, 2) = 4; one
// chip: 6. The optimum is 3 us.
absl::StatusOr<Problem> ChainProblem() {
  v1::Graph g;
  AddNode(g, "a", {}, 0, 0, 4, 2e-6);
  AddNode(g, "b", {"a"}, 0, 0, 1, 1e-6);
  AddNode(g, "c", {"b"}, 0, 0, 1, 1e-6);
  AddNode(g, "d", {"c"}, 0, 0, 0, 2e-6);
  return Problem::Create(MustBuild(g),
                         UniformHardware(2, 100, 1e12, 1e12, 1e6, 0.5e-6));
}

TEST(ExactTest, HandWorkedChain) {
  absl::StatusOr<Problem> problem = ChainProblem();
  ASSERT_TRUE(problem.ok());
  absl::StatusOr<ExactResult> r = SolveExact(*problem);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ExactOutcome::kProved);
  EXPECT_THAT(r->best, ::testing::ElementsAre(0, 0, 1, 1));
  EXPECT_DOUBLE_EQ(r->bottleneck_s, 3e-6);
  EXPECT_DOUBLE_EQ(r->bound_s, 3e-6);
}

// a feeds b and c; c also reads b. SRAM 10 bytes per chip. a holds 6 and
// sends 3, b holds 6 and sends 1, c holds 2. Together 14 bytes: two chips.
// {a}|{b,c}: chip 1 holds 6 + 2 + a's 3 in transit = 11 > 10.
// {a,b}|{c}: chip 0 holds 12 > 10. No other split keeps dataflow forward.
TEST(ExactTest, ProvesInfeasibleAndSaysWhy) {
  v1::Graph g;
  AddNode(g, "a", {}, 0, 3, 3, 1e-6);
  AddNode(g, "b", {"a"}, 0, 5, 1, 1e-6);
  AddNode(g, "c", {"a", "b"}, 0, 2, 0, 1e-6);
  v1::Hardware hw = UniformHardware(2, 10, 1e12, 1e12, 1e9, 0);
  absl::StatusOr<Problem> problem = Problem::Create(MustBuild(g), hw);
  ASSERT_TRUE(problem.ok());
  ASSERT_TRUE(std::isinf(BruteForce(*problem)));
  for (bool construct : {true, false}) {
    ExactOptions options;
    options.construct_incumbent = construct;
    absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(std::string(r.status().message()),
              "no valid placement exists: an exhaustive search of every "
              "placement (2 downsets) finds none; the furthest partial "
              "placements hold 2 of 3 nodes and then fail: chip 0 would need "
              "0.00 MiB (12 bytes) with node 'b' but has 0.00 MiB (10 bytes) "
              "of SRAM");
  }
}

// Thirty independent branches meeting in one node: about a billion
// downsets. A small memory limit stops the search cleanly with the
// constructive placement and a bound no larger than it.
TEST(ExactTest, WideGraphStopsAtTheMemoryLimitWithABound) {
  absl::StatusOr<Problem> problem = WideFanInProblem();
  ASSERT_TRUE(problem.ok());
  ExactOptions options;
  options.memory_limit_bytes = 4 << 20;
  absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ExactOutcome::kMemoryLimit);
  ASSERT_FALSE(r->best.empty());
  EXPECT_TRUE(Evaluator(*problem).IsValid(r->best));
  EXPECT_GE(r->bound_s, BottleneckBound(*problem));
  EXPECT_LE(r->bound_s, r->bottleneck_s);
  EXPECT_LE(r->peak_bytes, 5 << 20);
}

Problem LoadProblem(const std::string& graph, const std::string& preset,
                    int max_hops) {
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(
      absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", graph, ".onnx"));
  EXPECT_TRUE(proto.ok()) << proto.status();
  v1::Constraints c;
  c.set_max_hops(max_hops);
  absl::StatusOr<Problem> problem =
      Problem::Create(MustBuild(*proto), *PresetHardware(preset), c);
  EXPECT_TRUE(problem.ok()) << problem.status();
  return *std::move(problem);
}

// U-Net's first skip spans the whole network: with one hop, the skip's
// ends and everything between them would have to share two chips; with
// eight the optimum is proved at once
// although no contiguous split of the orders the constructive split tries
// is valid.
TEST(ExactTest, UnetOnRing8IsProvedInfeasibleWithOneHopAndOptimalWithEight) {
  absl::StatusOr<ExactResult> r = SolveExact(LoadProblem("unet", "ring8", 1));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(std::string(r.status().message()),
            "the output of '/down.0/down.0.3/Relu' is read by '/Concat_3' and "
            "with max_hops = 1 may travel at most 1 chip, so they and the 39 "
            "nodes between them must share 2 consecutive chips; together they "
            "need 347.31 MiB (364177152 bytes) for parameters and outputs, but "
            "2 consecutive chips hold at most 192.00 MiB (201326592 bytes)");
  const Problem eight = LoadProblem("unet", "ring8", 8);
  r = SolveExact(eight);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ExactOutcome::kProved);
  EXPECT_TRUE(Evaluator(eight).IsValid(r->best));
  EXPECT_NEAR(1 / r->bottleneck_s, 1526.44, 0.005);
}

// DLRM's 26 tables meet in one node: the lattice has millions of downsets
// and no contiguous split fits. The beam search finds a placement well
// within the limit, and the answer carries a bound.
TEST(ExactTest, DlrmOnRing8GetsAPlacementAndABoundWithinItsLimit) {
  const Problem problem = LoadProblem("dlrm_criteo", "ring8", 8);
  ExactOptions options;
  options.time_limit = absl::Seconds(1);
  int incumbents = 0;
  options.on_incumbent = [&](const Assignment&) { ++incumbents; };
  const absl::Time start = absl::Now();
  absl::StatusOr<ExactResult> r = SolveExact(problem, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500));
  EXPECT_EQ(incumbents, 1);
  ASSERT_FALSE(r->best.empty());
  EXPECT_TRUE(Evaluator(problem).IsValid(r->best));
  EXPECT_NE(r->outcome, ExactOutcome::kProved);
  EXPECT_GE(r->bound_s, BottleneckBound(problem));
  EXPECT_LE(r->bound_s, r->bottleneck_s);
}

// The proved optima of the table: graph, preset, throughput.
struct TableCase {
  const char* graph;
  const char* preset;
  double optimum_per_s;  // full precision, as this search proves it
  double table_per_s;    // as the table prints it (one decimal)
  int chips;
};

class ExactTableTest : public ::testing::TestWithParam<TableCase> {};

TEST_P(ExactTableTest, ProvesTheOptimum) {
  const TableCase& c = GetParam();
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(
      absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", c.graph, ".onnx"));
  ASSERT_TRUE(proto.ok()) << proto.status();
  absl::StatusOr<v1::Hardware> hw = PresetHardware(c.preset);
  ASSERT_TRUE(hw.ok());
  absl::StatusOr<Problem> problem = Problem::Create(MustBuild(*proto), *hw);
  ASSERT_TRUE(problem.ok()) << problem.status();
  absl::StatusOr<ExactResult> r = SolveExact(*problem);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, ExactOutcome::kProved);
  const double t = 1.0 / r->bottleneck_s;
  EXPECT_NEAR(t / c.optimum_per_s, 1.0, 1e-9);
  EXPECT_NEAR(t, c.table_per_s, 0.05);
  int chips = 0;
  for (int p : r->best) chips = std::max(chips, p + 1);
  EXPECT_EQ(chips, c.chips);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ExactTableTest,
    ::testing::Values(
        TableCase{"resnet50", "ring4", 15331.478838, 15331.5, 4},
        TableCase{"resnet50", "ring8", 17116.412969, 17116.4, 5},
        TableCase{"googlenet", "ring4", 43059.801970, 43059.8, 4},
        TableCase{"inception_v3", "ring8", 28807.739695, 28807.7, 8},
        TableCase{"bert_base", "ring8", 10229.573103, 10229.6, 8},
        TableCase{"mobilenet_v2", "ring4", 51462.947501, 51462.9, 4}),
    [](const ::testing::TestParamInfo<TableCase>& info) {
      return absl::StrCat(info.param.graph, "_", info.param.preset);
    });

TEST(ExactTest, AnInvalidIncumbentIsRejected) {
  absl::StatusOr<Problem> problem = ChainProblem();
  ASSERT_TRUE(problem.ok());
  ExactOptions options;
  options.incumbent = {1, 0, 0, 0};  // a -> b flows backwards
  absl::StatusOr<ExactResult> r = SolveExact(*problem, options);
  EXPECT_EQ(r.status(),
            absl::InvalidArgumentError(
                "exact search: the incumbent is not a valid placement"));
  options.incumbent = {0, 0};  // too short
  EXPECT_EQ(SolveExact(*problem, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The chain of HandWorkedChain through the strategy interface.
TEST(ExactStrategyTest, ConvergesWithTheProofAndReportsTheIncumbentFirst) {
  absl::StatusOr<Problem> problem = ChainProblem();
  ASSERT_TRUE(problem.ok());
  absl::StatusOr<std::unique_ptr<Strategy>> s = MakeStrategy("exact");
  ASSERT_TRUE(s.ok());
  std::vector<double> seen;
  StopToken stop;
  absl::StatusOr<StrategyResult> r =
      (*s)->Run(*problem, Budget{}, stop, [&](const Improvement& imp) {
        seen.push_back(imp.figures.bottleneck_s);
      });
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->reason, EndReason::kConverged);
  EXPECT_TRUE(r->proved_optimal);
  EXPECT_DOUBLE_EQ(r->bound_s, 3e-6);
  EXPECT_DOUBLE_EQ(r->throughput_per_s, 1 / 3e-6);
  ASSERT_FALSE(seen.empty());
  EXPECT_DOUBLE_EQ(seen.back(), 3e-6);
}

}  // namespace
}  // namespace mcmpart
