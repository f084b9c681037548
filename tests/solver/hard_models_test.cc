// The wide and long-range models (DLRM's embedding tables, mixture-of-
// experts layers, U-Net's skips) on the presets, with max_hops 1, 2 and C:
// every feasible case gets a valid placement fast, every infeasible one a
// proof in the model's terms.
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "solver/constructive.h"
#include "solver/evaluator.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"
#include "solver/repair.h"

namespace mcmpart {
namespace {

struct HardCase {
  std::string graph;
  std::string preset;
  int max_hops;  // 0: the chip count
};

Problem Load(const HardCase& c) {
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(
      absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", c.graph, ".onnx"));
  EXPECT_TRUE(proto.ok()) << proto.status();
  absl::StatusOr<v1::Hardware> hw = PresetHardware(c.preset);
  EXPECT_TRUE(hw.ok()) << hw.status();
  const int chips = hw->chips_size();
  hw->mutable_constraints()->set_max_hops(c.max_hops == 0 ? chips : c.max_hops);
  absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
  EXPECT_TRUE(graph.ok()) << graph.status();
  absl::StatusOr<Problem> problem = Problem::Create(
      std::make_shared<const Graph>(*std::move(graph)), *hw, hw->constraints());
  EXPECT_TRUE(problem.ok()) << problem.status();
  return *std::move(problem);
}

std::vector<HardCase> AllCases() {
  std::vector<HardCase> cases;
  for (const char* g : {"dlrm_criteo", "moe_e8", "unet"}) {
    for (const char* preset : {"ring4", "ring8", "ring16"}) {
      for (int hops : {1, 2, 0}) cases.push_back({g, preset, hops});
    }
  }
  return cases;
}

std::string Name(const HardCase& c) {
  return absl::StrCat(c.graph, " on ", c.preset, " with max_hops ",
                      c.max_hops == 0 ? "C" : absl::StrCat(c.max_hops));
}

TEST(HardModelsTest, EveryCaseIsPlacedOrProvedInfeasibleWithinASecond) {
  // A uniformly random candidate for each of the 27 cases: the repair ends
  // with a valid placement found within 1 s or with a proof, and the
  // constructive agrees at once. Measured: 6 feasible cases, the other 21
  // proved infeasible by the cheap checks in under a millisecond.
  int feasible = 0, infeasible = 0;
  for (const HardCase& c : AllCases()) {
    SCOPED_TRACE(Name(c));
    const Problem problem = Load(c);
    Evaluator evaluator(problem);
    std::mt19937 rng(7);
    Assignment q(problem.num_nodes());
    for (int& chip : q) chip = static_cast<int>(rng() % problem.num_chips());
    RepairOptions options;
    options.time_limit = absl::Seconds(1);
    absl::StatusOr<RepairResult> r = Repair(problem, q, {}, options);
    const absl::Time start = absl::Now();
    absl::StatusOr<Assignment> k = ConstructPlacement(problem);
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
    if (!r.ok()) {
      ++infeasible;
      EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition)
          << r.status();
      // Proved where the model is: the constructive gives the same proof.
      EXPECT_EQ(k.status(), r.status());
      continue;
    }
    ++feasible;
    EXPECT_TRUE(evaluator.IsValid(r->placement));
    EXPECT_LT(r->first_solution_time, absl::Seconds(1));
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_TRUE(evaluator.IsValid(*k));
  }
  EXPECT_EQ(feasible, 6);
  EXPECT_EQ(infeasible, 21);
}

TEST(HardModelsTest, DlrmOnRing8WithMaxHopsTwoIsProvedInfeasibleByItsTables) {
  // Each table reaches '/Concat' through one '/Unsqueeze', so within
  // 2 x 2 = 4 chips before it; the six 48.83 MiB tables cannot pair on a
  // 96 MiB chip, and five chips hold at most five of them.
  const Problem problem = Load({"dlrm_criteo", "ring8", 2});
  EXPECT_EQ(
      CheckFeasibility(problem),
      absl::FailedPreconditionError(
          "the 54 nodes that '/Concat' reads through at most 2 edges and "
          "'/Concat' itself must share 5 consecutive chips (an edge spans at "
          "most max_hops = 2 chips), but 6 of them need more than half of a "
          "chip's 96.00 MiB (100663296 bytes) of SRAM each ('/tables.2/Gather' "
          "48.83 MiB (51200256 bytes), '/tables.3/Gather' 48.83 MiB (51200256 "
          "bytes), '/tables.11/Gather' 48.83 MiB (51200256 bytes) and 3 more), "
          "so no two of them share a chip and they need 6 chips"));
}

TEST(HardModelsTest, DlrmOnRing8WithMaxHopsOneIsProvedInfeasibleByItsBytes) {
  // Within 2 edges of '/Concat', so within 2 chips of it under max_hops 1:
  // 362.11 MiB, and 3 chips hold 288 MiB.
  const Problem problem = Load({"dlrm_criteo", "ring8", 1});
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "the 54 nodes that '/Concat' reads through at most 2 edges "
                "and '/Concat' itself must share 3 consecutive chips (an edge "
                "spans at most max_hops = 1 chip), but they need 362.11 MiB "
                "(379698392 bytes) for parameters and outputs and 3 "
                "consecutive chips hold at most 288.00 MiB (301989888 bytes) "
                "(chips 0..2)"));
}

TEST(HardModelsTest, DlrmOnRing4IsProvedInfeasibleByItsLargestTables) {
  const Problem problem = Load({"dlrm_criteo", "ring4", 0});
  EXPECT_EQ(
      CheckFeasibility(problem),
      absl::FailedPreconditionError(
          "6 nodes need more than half of a chip's 96.00 MiB (100663296 "
          "bytes) of SRAM each ('/tables.2/Gather' 48.83 MiB (51200256 "
          "bytes), '/tables.3/Gather' 48.83 MiB (51200256 bytes), "
          "'/tables.11/Gather' 48.83 MiB (51200256 bytes) and 3 more), so "
          "no two of them share a chip, and there are 4 chips"));
}

TEST(HardModelsTest, UnetOnRing8WithMaxHopsOneIsProvedInfeasibleByItsSkip) {
  const Problem problem = Load({"unet", "ring8", 1});
  EXPECT_EQ(CheckFeasibility(problem),
            absl::FailedPreconditionError(
                "the output of '/down.0/down.0.3/Relu' is read by '/Concat_3' "
                "and with max_hops = 1 may travel at most 1 chip, so they and "
                "the 39 nodes between them must share 2 consecutive chips; "
                "together they need 347.31 MiB (364177152 bytes) for "
                "parameters and outputs, but 2 consecutive chips hold at most "
                "192.00 MiB (201326592 bytes)"));
}

}  // namespace
}  // namespace mcmpart
