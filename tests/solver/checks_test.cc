// The cheap necessary checks shared by the repair and the constructive
// split (solver/repair/checks.h): one wording per fault, whichever path
// finds it. The repair's messages themselves are pinned in repair_test.cc.
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/constructive.h"
#include "solver/problem.h"
#include "solver/repair.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;
using ::mcmpart::testing::MustBuild;
using ::mcmpart::testing::UniformHardware;

// n0 -> n1 -> n2 with the given parameter bytes and 1000 output bytes each.
v1::Graph Chain(const std::vector<double>& params) {
  v1::Graph g;
  AddNode(g, "n0", {}, 1e9, params[0], 1000);
  AddNode(g, "n1", {"n0"}, 1e9, params[1], 1000);
  AddNode(g, "n2", {"n1"}, 1e9, params[2], 1000);
  return g;
}

v1::Hardware Ring(int chips) {
  return UniformHardware(chips, 1e9, 1e12, 1e18, 1e9, 1e-6);
}

Problem MakeProblem(const v1::Graph& g, const v1::Hardware& hw) {
  absl::StatusOr<Problem> problem =
      Problem::Create(MustBuild(g), hw, hw.constraints());
  EXPECT_TRUE(problem.ok()) << problem.status();
  return *std::move(problem);
}

std::vector<Problem> OneFaultEach() {
  std::vector<Problem> problems;
  // A node larger than every chip.
  problems.push_back(MakeProblem(Chain({0, 2e9, 0}), Ring(2)));
  // A pinned edge spanning two chips under max_hops 1.
  v1::Hardware far = Ring(3);
  (*far.mutable_constraints()->mutable_pins())["n0"] = 0;
  (*far.mutable_constraints()->mutable_pins())["n1"] = 2;
  problems.push_back(MakeProblem(Chain({0, 0, 0}), far));
  // A pinned edge flowing backwards.
  v1::Hardware back = Ring(2);
  (*back.mutable_constraints()->mutable_pins())["n0"] = 1;
  (*back.mutable_constraints()->mutable_pins())["n1"] = 0;
  problems.push_back(MakeProblem(Chain({0, 0, 0}), back));
  // A colocation group with two pins.
  v1::Hardware pinned_group = Ring(2);
  v1::Constraints* c = pinned_group.mutable_constraints();
  (*c->mutable_pins())["n0"] = 0;
  (*c->mutable_pins())["n2"] = 1;
  v1::ColocationGroup* group = c->add_colocation_groups();
  group->add_nodes("n0");
  group->add_nodes("n2");
  problems.push_back(MakeProblem(Chain({0, 0, 0}), pinned_group));
  // A colocation group larger than every chip.
  v1::Hardware big_group = Ring(2);
  group = big_group.mutable_constraints()->add_colocation_groups();
  group->add_nodes("n0");
  group->add_nodes("n1");
  problems.push_back(MakeProblem(Chain({6e8, 6e8, 0}), big_group));
  // A node pinned to a chip too small for it.
  v1::Hardware small = Ring(2);
  small.mutable_chips(1)->set_sram_bytes(5e8);
  (*small.mutable_constraints()->mutable_pins())["n1"] = 1;
  problems.push_back(MakeProblem(Chain({0, 6e8, 0}), small));
  // More memory than all chips together.
  problems.push_back(MakeProblem(Chain({8e8, 8e8, 8e8}), Ring(2)));
  return problems;
}

TEST(ChecksTest, ConstructiveProofsAreWordedAsTheRepairWordsThem) {
  const std::vector<Problem> problems = OneFaultEach();
  for (size_t i = 0; i < problems.size(); ++i) {
    const absl::Status proof = CheckFeasibility(problems[i]);
    EXPECT_EQ(proof.code(), absl::StatusCode::kFailedPrecondition) << i;
    EXPECT_EQ(ConstructPlacement(problems[i]).status(), proof) << i;
  }
}

TEST(ChecksTest, MessagesNameTheFault) {
  const std::vector<Problem> problems = OneFaultEach();
  const std::vector<std::string> want = {
      "node 'n1' needs 1907.35 MiB (2000001000 bytes) of SRAM for its "
      "parameters and output, but the largest chip has 953.67 MiB "
      "(1000000000 bytes)",
      "pin puts 'n1' on chip 2 but its producer 'n0' is pinned to chip 0; "
      "max_hops is 1, so an edge spans at most 1 chip",
      "pin puts 'n1' on chip 0 but its producer 'n0' is pinned to chip 1; "
      "data never flows backwards",
      "colocation group 0 puts 'n0' and 'n2' on one chip, but 'n0' is "
      "pinned to chip 0 and 'n2' to chip 1",
      "colocation group 0 ('n0', 'n1') needs 1144.41 MiB (1200002000 bytes) "
      "of SRAM for its members' parameters and outputs on one chip, but the "
      "largest chip has 953.67 MiB (1000000000 bytes)",
      "node 'n1' is pinned to chip 1, which has 476.84 MiB (500000000 bytes) "
      "of SRAM, but needs 572.21 MiB (600001000 bytes) for parameters and "
      "outputs",
      "total memory of all nodes' parameters and outputs is 2288.82 MiB "
      "(2400003000 bytes), which exceeds 2 chips x 953.67 MiB (1000000000 "
      "bytes) = 1907.35 MiB (2000000000 bytes)",
  };
  ASSERT_EQ(problems.size(), want.size());
  for (size_t i = 0; i < problems.size(); ++i) {
    EXPECT_EQ(CheckFeasibility(problems[i]),
              absl::FailedPreconditionError(want[i]))
        << i;
  }
}

}  // namespace
}  // namespace mcmpart
