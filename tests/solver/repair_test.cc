// Tests of constraint repair (solver/repair.h): exactness against brute
// force on small random DAGs, the infeasibility messages, limits,
// cancellation, threads, and the shared ONNX graphs on the hardware presets.
#include "solver/repair.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"
#include "tests/solver/repair_test_util.h"

namespace mcmpart {
namespace {

using ::testing::HasSubstr;

constexpr double kMiB = 1024.0 * 1024.0;

using ::mcmpart::repair_testing::Chain;
using ::mcmpart::repair_testing::HardProblem;
using ::mcmpart::repair_testing::MakeGraph;
using ::mcmpart::repair_testing::MakeHardware;
using ::mcmpart::repair_testing::MakeProblem;
using ::mcmpart::repair_testing::NodeSpec;
using ::mcmpart::repair_testing::RandomCandidate;

double Distance(absl::Span<const int> p, absl::Span<const int> q,
                absl::Span<const double> w) {
  double d = 0;
  for (size_t v = 0; v < p.size(); ++v) {
    if (q[v] >= 0 && p[v] != q[v]) d += w.empty() ? 1.0 : w[v];
  }
  return d;
}

// ---------------------------------------------------------------------------
// Exactness against brute force on small random instances.

struct Brute {
  bool feasible = false;
  double best = std::numeric_limits<double>::infinity();
};

Brute BruteForce(const Problem& problem, absl::Span<const int> q,
                 absl::Span<const double> w) {
  Evaluator eval(problem);
  const int n = problem.num_nodes();
  const int c = problem.num_chips();
  std::vector<int> p(n, 0);
  Brute b;
  while (true) {
    if (eval.IsValid(p)) {
      b.feasible = true;
      b.best = std::min(b.best, Distance(p, q, w));
    }
    int i = 0;
    while (i < n && ++p[i] == c) p[i++] = 0;
    if (i == n) break;
  }
  return b;
}

TEST(RepairProperty, MatchesBruteForceOnRandomSmallDags) {
  std::mt19937_64 rng(20240601);
  int feasible = 0, infeasible = 0;
  for (int trial = 0; trial < 400; ++trial) {
    SCOPED_TRACE(absl::StrCat("trial ", trial));
    std::uniform_int_distribution<int> nd(1, 9), cd(2, 3), pct(0, 99);
    const int n = nd(rng);
    const int chips = cd(rng);
    std::vector<NodeSpec> nodes;
    const int density = pct(rng) % 60 + 10;
    double total = 0;
    for (int v = 0; v < n; ++v) {
      NodeSpec s;
      s.name = absl::StrCat("v", v);
      for (int u = 0; u < v; ++u) {
        if (pct(rng) < density) s.inputs.push_back(absl::StrCat("v", u));
      }
      s.param_bytes = pct(rng) % 8;
      s.output_bytes = pct(rng) % 5;
      total += s.param_bytes + s.output_bytes;
      nodes.push_back(s);
    }
    // SRAM from tight (often infeasible) to loose, integral so that the
    // solver's units are exact.
    const double per_chip =
        std::floor(total / chips * (0.8 + 1.2 * (pct(rng) / 100.0))) + 1;
    std::vector<double> sram(chips, per_chip);
    if (pct(rng) < 20) sram[pct(rng) % chips] += 5;
    v1::Constraints cons;
    if (pct(rng) < 25) cons.set_max_hops(2);
    if (pct(rng) < 20 && n >= chips) cons.set_use_all_chips(true);
    if (pct(rng) < 25) {
      (*cons.mutable_pins())[absl::StrCat("v", pct(rng) % n)] =
          pct(rng) % chips;
    }
    if (pct(rng) < 20 && n >= 2) {
      v1::ColocationGroup* group = cons.add_colocation_groups();
      group->add_nodes(absl::StrCat("v", pct(rng) % n));
      group->add_nodes(absl::StrCat("v", pct(rng) % n));
    }
    Problem problem = MakeProblem(MakeGraph(nodes), MakeHardware(sram), cons);
    std::vector<int> q(n);
    for (int v = 0; v < n; ++v) q[v] = pct(rng) < 10 ? -1 : pct(rng) % chips;
    std::vector<double> w;
    if (pct(rng) < 40) {
      for (int v = 0; v < n; ++v) w.push_back(pct(rng) % 4);
    }
    const Brute brute = BruteForce(problem, q, w);
    absl::StatusOr<RepairResult> r = Repair(problem, q, w);
    if (!brute.feasible) {
      ++infeasible;
      EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
          << r.status();
      EXPECT_EQ(CheckFeasibility(problem).ok() || !r.ok(), true);
      continue;
    }
    ++feasible;
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(CheckFeasibility(problem).ok());
    Evaluator eval(problem);
    EXPECT_TRUE(eval.IsValid(r->placement));
    EXPECT_TRUE(r->optimal);
    EXPECT_EQ(r->distance, brute.best);
    EXPECT_EQ(r->distance, Distance(r->placement, q, w));
  }
  // The generator covers both outcomes.
  EXPECT_GT(feasible, 100);
  EXPECT_GT(infeasible, 20);
}

// ---------------------------------------------------------------------------
// Basics.

TEST(RepairTest, ValidCandidateIsReturnedUnchanged) {
  Problem problem =
      MakeProblem(MakeGraph(Chain(6, 10, 1)), MakeHardware({40, 40, 40}));
  const std::vector<int> q = {0, 0, 1, 1, 2, 2};
  absl::StatusOr<RepairResult> r = Repair(problem, q, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->placement, q);
  EXPECT_EQ(r->distance, 0);
  EXPECT_EQ(r->changed_nodes, 0);
  EXPECT_TRUE(r->optimal);
  EXPECT_FALSE(r->time_limit_hit || r->fail_limit_hit || r->cancelled);
}

TEST(RepairTest, MovesTheCheapestNodes) {
  // A chain cannot flow backwards: with n2 on chip 0 after n1 on chip 1,
  // one of the two must move, and the weights say which.
  Problem problem =
      MakeProblem(MakeGraph(Chain(4, 1, 1)), MakeHardware({100, 100}));
  const std::vector<int> q = {0, 1, 0, 1};
  absl::StatusOr<RepairResult> r = Repair(problem, q, {1, 5, 1, 1});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->placement, (std::vector<int>{0, 1, 1, 1}));
  EXPECT_EQ(r->distance, 1);
  EXPECT_EQ(r->changed_nodes, 1);
  EXPECT_TRUE(r->optimal);
  r = Repair(problem, q, {1, 1, 5, 1});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->placement, (std::vector<int>{0, 0, 0, 1}));
}

TEST(RepairTest, FreeNodesCostNothing) {
  Problem problem =
      MakeProblem(MakeGraph(Chain(4, 1, 1)), MakeHardware({100, 100}));
  absl::StatusOr<RepairResult> r = Repair(problem, {-1, 1, -1, -1}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->distance, 0);
  EXPECT_EQ(r->changed_nodes, 0);
  EXPECT_EQ(r->placement[1], 1);
  EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
}

TEST(RepairTest, CountsTransitBuffers) {
  // a feeds c past b: on a 2-chip split after a, a's output waits on chip 1
  // beside b and c. Chip 1 holds b + c + a's output = 9 + transit.
  std::vector<NodeSpec> nodes = {
      {"a", {}, 4, 3}, {"b", {"a"}, 3, 1}, {"c", {"a", "b"}, 4, 1}};
  // Chip 1 with {b, c}: 4 + 5 + 3 (a's output in transit) = 12 > 11, so
  // only the all-on-one-chip or {a, b} | {c} splits remain.
  Problem problem = MakeProblem(MakeGraph(nodes), MakeHardware({20, 11}));
  absl::StatusOr<RepairResult> r = Repair(problem, {0, 1, 1}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->placement, (std::vector<int>{0, 0, 1}));
  EXPECT_EQ(r->distance, 1);
  EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
}

TEST(RepairTest, FindsPlacementsThatAreNotContiguousSplits) {
  // Two branches s -> a1 -> a2 -> t and s -> b1 -> t, ids in that order.
  // Pins put a2 on chip 1 and b1 on chip 0, so no split of the id order
  // works; the search has to interleave the branches.
  std::vector<NodeSpec> nodes = {{"s", {}, 1, 1},
                                 {"a1", {"s"}, 1, 1},
                                 {"a2", {"a1"}, 1, 1},
                                 {"b1", {"s"}, 1, 1},
                                 {"t", {"a2", "b1"}, 1, 1}};
  v1::Constraints cons;
  (*cons.mutable_pins())["a2"] = 1;
  (*cons.mutable_pins())["b1"] = 0;
  Problem problem =
      MakeProblem(MakeGraph(nodes), MakeHardware({100, 100}), cons);
  absl::StatusOr<RepairResult> r = Repair(problem, {1, 1, 1, 1, 1}, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
  EXPECT_EQ(r->placement[2], 1);
  EXPECT_EQ(r->placement[3], 0);
  EXPECT_TRUE(r->optimal);

  // The same with no time at all: the nearest split of the id order does
  // not exist, but the split of another order is a valid start found
  // without searching.
  RepairOptions none;
  none.time_limit = absl::ZeroDuration();
  absl::StatusOr<RepairResult> late =
      Repair(problem, {1, 1, 1, 1, 1}, {}, none);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(Evaluator(problem).IsValid(late->placement));
  EXPECT_EQ(late->placement[2], 1);
  EXPECT_EQ(late->placement[3], 0);
}

TEST(RepairTest, RejectsMalformedInput) {
  Problem problem =
      MakeProblem(MakeGraph(Chain(3, 1, 1)), MakeHardware({100, 100}));
  EXPECT_EQ(Repair(problem, {0, 0}, {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status chip = Repair(problem, {0, 2, 0}, {}).status();
  EXPECT_EQ(chip.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(chip.message(), HasSubstr("'n1'"));
  EXPECT_EQ(Repair(problem, {0, 0, 0}, {1, 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status weight = Repair(problem, {0, 0, 0}, {1, -1, 1}).status();
  EXPECT_EQ(weight.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(weight.message(), HasSubstr("'n1'"));
  EXPECT_EQ(Repair(problem, {0, 0, 0}, {1, std::nan(""), 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(RepairTest, FractionalBytesAndWeights) {
  // Figures that are not whole bytes and weights that are not integers are
  // scaled conservatively; the result must still pass the checker.
  std::vector<NodeSpec> nodes = Chain(12, 2.75, 0.3);
  Problem problem =
      MakeProblem(MakeGraph(nodes), MakeHardware({13.1, 13.1, 13.1}));
  std::vector<int> q(12, 0);
  std::vector<double> w;
  for (int v = 0; v < 12; ++v) w.push_back(0.1 + v * 0.37);
  absl::StatusOr<RepairResult> r = Repair(problem, q, w);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
  EXPECT_NEAR(r->distance, Distance(r->placement, q, w), 1e-9);
}

// ---------------------------------------------------------------------------
// Infeasibility, explained.

TEST(RepairInfeasible, NodeLargerThanEveryChip) {
  std::vector<NodeSpec> nodes = {{"input", {}, 0, 1024},
                                 {"X", {"input"}, 120 * kMiB - 4096, 4096}};
  absl::StatusOr<v1::Hardware> hw = PresetHardware("ring8");
  ASSERT_TRUE(hw.ok());
  Problem problem = MakeProblem(MakeGraph(nodes), *hw);
  const std::string want =
      "node 'X' needs 120.00 MiB (125829120 bytes) of SRAM for its parameters "
      "and output, but the largest chip has 96.00 MiB (100663296 bytes)";
  EXPECT_EQ(CheckFeasibility(problem), absl::FailedPreconditionError(want));
  EXPECT_EQ(Repair(problem, {0, 0}, {}).status(),
            absl::FailedPreconditionError(want));
}

// Four 40-byte tables read by one node: with one hop they and it share two
// chips of 50 bytes. Each fits alone and all fit the four chips together.
TEST(RepairInfeasible, WideFanInUnderAHopLimit) {
  std::vector<NodeSpec> nodes = {{"t0", {}, 30, 10},
                                 {"t1", {}, 30, 10},
                                 {"t2", {}, 30, 10},
                                 {"t3", {}, 30, 10},
                                 {"join", {"t0", "t1", "t2", "t3"}, 0, 4}};
  v1::Hardware hw;
  for (int c = 0; c < 4; ++c) {
    v1::Chip* chip = hw.add_chips();
    chip->set_sram_bytes(c == 2 ? 60 : 50);
    chip->set_peak_flops(1e12);
    chip->set_mem_bandwidth(1e12);
  }
  for (int k = 0; k < 3; ++k) hw.add_links()->set_link_bandwidth(1e9);
  Problem problem = MakeProblem(MakeGraph(nodes), hw);
  const std::string want =
      "node 'join' reads the outputs of 4 nodes; with max_hops = 1 they and "
      "it must share 2 consecutive chips, but they need 0.00 MiB (164 bytes) "
      "for parameters and outputs and 2 consecutive chips hold at most 0.00 "
      "MiB (110 bytes) (chips 1..2)";
  EXPECT_EQ(CheckFeasibility(problem), absl::FailedPreconditionError(want));
  EXPECT_EQ(Repair(problem, {0, 0, 0, 0, 0}, {}).status(),
            absl::FailedPreconditionError(want));
  // With two hops the window is three chips (160 bytes): still too small;
  // with three, every chip: feasible.
  v1::Constraints c;
  c.set_max_hops(2);
  EXPECT_THAT(CheckFeasibility(MakeProblem(MakeGraph(nodes), hw, c)).message(),
              HasSubstr("3 consecutive chips hold at most 0.00 MiB (160 bytes) "
                        "(chips 0..2)"));
  c.set_max_hops(3);
  EXPECT_TRUE(CheckFeasibility(MakeProblem(MakeGraph(nodes), hw, c)).ok());
}

// A residual around three 40-byte nodes: with one hop the residual's
// producer, its reader and the three between share two 50-byte chips.
TEST(RepairInfeasible, LongSkipUnderAHopLimit) {
  std::vector<NodeSpec> nodes = {{"x", {}, 0, 4},
                                 {"a", {"x"}, 36, 4},
                                 {"b", {"a"}, 36, 4},
                                 {"c", {"b"}, 36, 4},
                                 {"add", {"x", "c"}, 0, 4}};
  v1::Hardware hw;
  for (int c = 0; c < 4; ++c) {
    v1::Chip* chip = hw.add_chips();
    chip->set_sram_bytes(50);
    chip->set_peak_flops(1e12);
    chip->set_mem_bandwidth(1e12);
  }
  for (int k = 0; k < 3; ++k) hw.add_links()->set_link_bandwidth(1e9);
  Problem problem = MakeProblem(MakeGraph(nodes), hw);
  const std::string want =
      "the output of 'x' is read by 'add' and with max_hops = 1 may travel at "
      "most 1 chip, so they and the 3 nodes between them must share 2 "
      "consecutive chips; together they need 0.00 MiB (128 bytes) for "
      "parameters and outputs, but 2 consecutive chips hold at most 0.00 MiB "
      "(100 bytes)";
  EXPECT_EQ(CheckFeasibility(problem), absl::FailedPreconditionError(want));
  EXPECT_EQ(Repair(problem, {0, 0, 0, 0, 0}, {}).status(),
            absl::FailedPreconditionError(want));
  // Three hops let the residual wait on every chip: feasible.
  v1::Constraints c;
  c.set_max_hops(3);
  EXPECT_TRUE(CheckFeasibility(MakeProblem(MakeGraph(nodes), hw, c)).ok());
}

TEST(RepairInfeasible, TotalMemory) {
  absl::StatusOr<v1::Hardware> hw = PresetHardware("ring4");
  ASSERT_TRUE(hw.ok());
  Problem problem = MakeProblem(MakeGraph(Chain(5, 80 * kMiB, 0)), *hw);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "total memory of all nodes' parameters and outputs is 400.00 "
                "MiB (419430400 bytes), which exceeds 4 chips x 96.00 MiB "
                "(100663296 bytes) = 384.00 MiB (402653184 bytes)"));
}

TEST(RepairInfeasible, PinAgainstProducer) {
  v1::Constraints cons;
  (*cons.mutable_pins())["n1"] = 0;
  (*cons.mutable_pins())["n2"] = 3;
  Problem problem =
      MakeProblem(MakeGraph(Chain(4, 1, 1)), MakeHardware({9, 9, 9, 9}), cons);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "pin puts 'n2' on chip 3 but its producer 'n1' is pinned to "
                "chip 0; max_hops is 1, so an edge spans at most 1 chip"));

  (*cons.mutable_pins())["n1"] = 2;
  (*cons.mutable_pins())["n2"] = 1;
  problem =
      MakeProblem(MakeGraph(Chain(4, 1, 1)), MakeHardware({9, 9, 9, 9}), cons);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "pin puts 'n2' on chip 1 but its producer 'n1' is pinned to "
                "chip 2; data never flows backwards"));
}

TEST(RepairInfeasible, PinsTooFarApartAlongAPath) {
  v1::Constraints cons;
  cons.set_max_hops(1);
  (*cons.mutable_pins())["n1"] = 0;
  (*cons.mutable_pins())["n3"] = 3;
  Problem problem =
      MakeProblem(MakeGraph(Chain(5, 1, 1)), MakeHardware({9, 9, 9, 9}), cons);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "pin puts 'n3' on chip 3 but 'n1', 2 edges upstream ('n1' -> "
                "'n2' -> 'n3'), is pinned to chip 0; with max_hops 1 that path "
                "spans at most 2 chips"));
}

TEST(RepairInfeasible, ColocationWithTwoPins) {
  v1::Constraints cons;
  (*cons.mutable_pins())["n1"] = 0;
  (*cons.mutable_pins())["n3"] = 1;
  v1::ColocationGroup* group = cons.add_colocation_groups();
  group->add_nodes("n1");
  group->add_nodes("n3");
  Problem problem =
      MakeProblem(MakeGraph(Chain(4, 1, 1)), MakeHardware({9, 9}), cons);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "colocation group 0 puts 'n1' and 'n3' on one chip, but 'n1' "
                "is pinned to chip 0 and 'n3' to chip 1"));
}

TEST(RepairInfeasible, UseAllChipsWithTooFewFreeNodes) {
  v1::Constraints cons;
  cons.set_use_all_chips(true);
  v1::ColocationGroup* group = cons.add_colocation_groups();
  group->add_nodes("n0");
  group->add_nodes("n1");
  group->add_nodes("n2");
  Problem problem =
      MakeProblem(MakeGraph(Chain(5, 1, 1)), MakeHardware({9, 9, 9, 9}), cons);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "use_all_chips needs a node on each of the 4 chips, but "
                "colocation groups leave only 3 sets of nodes that can go to "
                "different chips"));
}

TEST(RepairInfeasible, PinnedSourceLeavesChipZeroEmpty) {
  v1::Constraints cons;
  (*cons.mutable_pins())["n0"] = 1;
  Problem problem =
      MakeProblem(MakeGraph(Chain(3, 1, 1)), MakeHardware({9, 9}), cons);
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "node 'n0' is pinned to chip 1, but every other node depends "
                "on it, so chip 0 would stay empty (no skipping chips)"));
}

TEST(RepairInfeasible, ProvedBySearch) {
  // Fits on paper (7 + 7 + 5 = 19 <= 2 x 10) but every split overflows a
  // chip once a's output waits beside b on chip 1.
  std::vector<NodeSpec> nodes = {
      {"a", {}, 6, 1}, {"b", {"a"}, 6, 1}, {"c", {"b"}, 4, 1}};
  Problem problem = MakeProblem(MakeGraph(nodes), MakeHardware({10, 10}));
  EXPECT_TRUE(CheckFeasibility(problem).ok());
  absl::Status s = Repair(problem, {0, 1, 1}, {}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(s.message(), HasSubstr("no valid placement exists"));
  EXPECT_THAT(s.message(),
              HasSubstr("dropping any one of {memory (with transit buffers)} "
                        "makes a placement possible"));
}

// ---------------------------------------------------------------------------
// Limits, cancellation, threads.

TEST(RepairLimits, ZeroTimeReturnsTheWarmStart) {
  Problem problem = HardProblem(300, 12, 1);
  RepairOptions options;
  options.time_limit = absl::ZeroDuration();
  absl::StatusOr<RepairResult> r =
      Repair(problem, RandomCandidate(300, 12, 2), {}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
  EXPECT_TRUE(r->time_limit_hit);
  EXPECT_FALSE(r->optimal);
  EXPECT_GT(r->distance, 0);
}

TEST(RepairLimits, FailLimitReturnsBestSoFar) {
  Problem problem = HardProblem(300, 12, 1);
  RepairOptions options;
  options.fail_limit = 5;
  absl::StatusOr<RepairResult> r =
      Repair(problem, RandomCandidate(300, 12, 3), {}, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
  EXPECT_TRUE(r->fail_limit_hit);
  EXPECT_FALSE(r->optimal);
  EXPECT_LE(r->failures, 5);
}

TEST(RepairLimits, CancelledBeforeStart) {
  Problem problem = HardProblem(50, 4, 1);
  StopToken stop;
  stop.RequestStop();
  RepairOptions options;
  options.stop = &stop;
  EXPECT_EQ(
      Repair(problem, RandomCandidate(50, 4, 1), {}, options).status().code(),
      absl::StatusCode::kCancelled);
}

TEST(RepairLimits, CancelledDuringSearchStopsQuickly) {
  Problem problem = HardProblem(600, 16, 4);
  StopToken stop;
  RepairOptions options;
  options.time_limit = absl::Seconds(30);
  options.stop = &stop;
  std::thread canceller([&stop] {
    absl::SleepFor(absl::Milliseconds(100));
    stop.RequestStop();
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<RepairResult> r =
      Repair(problem, RandomCandidate(600, 16, 5), {}, options);
  const absl::Duration took = absl::Now() - start;
  canceller.join();
  if (r.ok()) {
    EXPECT_TRUE(Evaluator(problem).IsValid(r->placement));
    // Either proved before the stop or cut short by it.
    EXPECT_TRUE(r->optimal || r->cancelled);
  } else {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  }
  EXPECT_LT(took, absl::Milliseconds(500));
}

TEST(RepairConcurrency, ThreadsGetTheSameAnswersAsOneThread) {
  Problem problem = HardProblem(120, 6, 7);
  RepairOptions options;
  options.fail_limit = 2000;  // deterministic, unlike a time limit
  options.time_limit = absl::Seconds(20);
  constexpr int kThreads = 4, kEach = 6;
  std::vector<std::vector<int>> candidates;
  std::vector<RepairResult> expected;
  for (int i = 0; i < kThreads * kEach; ++i) {
    candidates.push_back(RandomCandidate(120, 6, 100 + i));
    absl::StatusOr<RepairResult> r =
        Repair(problem, candidates.back(), {}, options);
    ASSERT_TRUE(r.ok()) << r.status();
    expected.push_back(*r);
  }
  std::vector<absl::StatusOr<RepairResult>> got(kThreads * kEach);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; i < kThreads * kEach; i += kThreads) {
        got[i] = Repair(problem, candidates[i], {}, options);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  Evaluator eval(problem);
  for (int i = 0; i < kThreads * kEach; ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_EQ(got[i]->placement, expected[i].placement) << i;
    EXPECT_EQ(got[i]->distance, expected[i].distance);
    EXPECT_TRUE(eval.IsValid(got[i]->placement));
  }
}

// ---------------------------------------------------------------------------
// The shared graphs (need the ONNX importer).

absl::StatusOr<Problem> LoadShared(const std::string& graph,
                                   const std::string& preset) {
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(
      std::string(MCMPART_TEST_DATA_DIR) + "/graphs/" + graph + ".onnx");
  if (!proto.ok()) return proto.status();
  absl::StatusOr<Graph> g = Graph::FromProto(*proto);
  if (!g.ok()) return g.status();
  absl::StatusOr<v1::Hardware> hw = PresetHardware(preset);
  if (!hw.ok()) return hw.status();
  return Problem::Create(std::make_shared<const Graph>(*std::move(g)), *hw);
}

TEST(RepairSharedGraphs, EveryGraphOnEveryPresetRepairsOrIsExplained) {
  const char* graphs[] = {
      "alexnet",      "bert_base",          "bert_large",     "efficientnet_b0",
      "googlenet",    "gpt2_small",         "inception_v3",   "mnasnet1_0",
      "mobilenet_v2", "mobilenet_v3_large", "regnet_y_400mf", "resnet18",
      "resnet50",     "resnext50_32x4d",    "shufflenet_v2",  "squeezenet1_1",
      "vgg16"};
  int repaired = 0;
  for (const char* graph : graphs) {
    for (const char* preset : {"ring4", "ring8", "ring16"}) {
      SCOPED_TRACE(absl::StrCat(graph, " on ", preset));
      absl::StatusOr<Problem> problem = LoadShared(graph, preset);
      if (absl::IsUnimplemented(problem.status())) {
        GTEST_SKIP() << "ONNX importer not built: " << problem.status();
      }
      ASSERT_TRUE(problem.ok()) << problem.status();
      const absl::Status feasible = CheckFeasibility(*problem);
      RepairOptions options;
      options.time_limit = absl::Milliseconds(150);
      absl::StatusOr<RepairResult> r =
          Repair(*problem,
                 RandomCandidate(problem->num_nodes(), problem->num_chips(), 1),
                 {}, options);
      if (!feasible.ok()) {
        EXPECT_EQ(feasible.code(), absl::StatusCode::kFailedPrecondition);
        EXPECT_EQ(r.status(), feasible);
        continue;
      }
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(Evaluator(*problem).IsValid(r->placement));
      ++repaired;
    }
  }
  EXPECT_GE(repaired, 30);
}

TEST(RepairSharedGraphs, Vgg16OnRing8) {
  absl::StatusOr<Problem> problem = LoadShared("vgg16", "ring8");
  if (absl::IsUnimplemented(problem.status())) GTEST_SKIP() << problem.status();
  ASSERT_TRUE(problem.ok()) << problem.status();
  const absl::Status want = absl::FailedPreconditionError(
      "node '/classifier/classifier.0/Gemm' needs 392.03 MiB (411074560 "
      "bytes) of SRAM for its parameters and output, but the largest chip has "
      "96.00 MiB (100663296 bytes)");
  EXPECT_EQ(CheckFeasibility(*problem), want);
  EXPECT_EQ(
      Repair(*problem, std::vector<int>(problem->num_nodes(), 0), {}).status(),
      want);
}

TEST(RepairSharedGraphs, Gpt2SmallOnRing16) {
  absl::StatusOr<Problem> problem = LoadShared("gpt2_small", "ring16");
  if (absl::IsUnimplemented(problem.status())) GTEST_SKIP() << problem.status();
  ASSERT_TRUE(problem.ok()) << problem.status();
  const absl::Status want = absl::FailedPreconditionError(
      "node '/tok/Gather' needs 147.99 MiB (155175936 bytes) of SRAM for its "
      "parameters and output, but the largest chip has 96.00 MiB (100663296 "
      "bytes)");
  EXPECT_EQ(CheckFeasibility(*problem), want);
  EXPECT_EQ(
      Repair(*problem, std::vector<int>(problem->num_nodes(), 0), {}).status(),
      want);
}

TEST(RepairSharedGraphs, BertBaseNearValidOnRing8IsProvedQuickly) {
  absl::StatusOr<Problem> problem = LoadShared("bert_base", "ring8");
  if (absl::IsUnimplemented(problem.status())) GTEST_SKIP() << problem.status();
  ASSERT_TRUE(problem.ok()) << problem.status();
  const int n = problem->num_nodes();
  absl::StatusOr<RepairResult> base =
      Repair(*problem, RandomCandidate(n, 8, 9), {});
  ASSERT_TRUE(base.ok()) << base.status();
  std::vector<int> q = base->placement;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 20; ++i) {
    const int v = static_cast<int>(rng() % n);
    q[v] = q[v] + 1 < 8 ? q[v] + 1 : q[v] - 1;
  }
  absl::StatusOr<RepairResult> r = Repair(*problem, q, {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(Evaluator(*problem).IsValid(r->placement));
  EXPECT_TRUE(r->optimal);
  EXPECT_LE(r->distance, 20);
}

}  // namespace
}  // namespace mcmpart
