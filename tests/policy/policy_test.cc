// Tests of the policy network (policy/policy.h): its probabilities and
// greedy placements, and its checkpoints (Save, Load, Clone and metadata).
#include "policy/policy.h"

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "policy/features.h"
#include "policy/synthetic.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "tests/policy/test_util.h"

namespace mcmpart::policy {
namespace {

namespace fs = std::filesystem;
using ::mcmpart::policy::testing::Diamond;
using ::mcmpart::policy::testing::MakeProblem;
using ::mcmpart::policy::testing::SmallConfig;
using ::mcmpart::policy::testing::TempDir;
using ::mcmpart::policy::testing::Uniform;
using ::testing::HasSubstr;

TEST(PolicyTest, MaskingGivesNoProbabilityBeyondChipCount) {
  auto policy = Policy::Create(SmallConfig(), 1);
  ASSERT_TRUE(policy.ok()) << policy.status();
  for (int chips : {1, 3, 32}) {
    Problem p = MakeProblem(Diamond(), Uniform(chips, 1e6));
    absl::StatusOr<std::vector<float>> probs = (*policy)->Probabilities(p);
    ASSERT_TRUE(probs.ok()) << probs.status();
    const int m = SmallConfig().max_chips;
    ASSERT_EQ(probs->size(), 4u * m);
    for (int v = 0; v < 4; ++v) {
      double sum = 0;
      for (int c = 0; c < m; ++c) {
        const float x = (*probs)[v * m + c];
        if (c >= chips) {
          EXPECT_EQ(x, 0.0f) << "chip " << c << " of " << chips;
        }
        sum += x;
      }
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
  Problem too_many = MakeProblem(Diamond(), Uniform(33, 1e6));
  absl::StatusOr<std::vector<float>> probs = (*policy)->Probabilities(too_many);
  EXPECT_EQ(probs.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(probs.status().message(), HasSubstr("33 chips"));
}

TEST(PolicyTest, LargeGraphRunsInLinearMemory) {
  // 7,000 nodes: the attention is windowed, so this is cheap.
  v1::Graph g = SyntheticGraph(SyntheticFamily::kLayered, 7000, 3);
  v1::Hardware hw = RandomHardware(g, 16, 2.0, 3);
  Problem p = MakeProblem(g, hw);
  auto policy = Policy::Create(PolicyConfig{}, 1);
  ASSERT_TRUE(policy.ok());
  absl::StatusOr<Assignment> a = (*policy)->Greedy(p);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->size(), 7000u);
  for (int c : *a) EXPECT_LT(c, 16);
}

TEST(CheckpointTest, RoundTripGivesIdenticalOutputs) {
  auto policy = Policy::Create(SmallConfig(), 7);
  ASSERT_TRUE(policy.ok());
  std::unique_ptr<Policy> tagged =
      (*policy)->WithMetadataText("unit test", 12, "round trip");
  const std::string dir = TempDir("roundtrip");
  ASSERT_TRUE(tagged->Save(dir).ok());
  auto loaded = Policy::Load(dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->metadata().steps, 12);
  EXPECT_EQ((*loaded)->metadata().corpus, "unit test");
  EXPECT_EQ((*loaded)->metadata().config.hidden, 32);
  Problem p = MakeProblem(Diamond(), Uniform(3, 1e6));
  auto a = (*policy)->Probabilities(p);
  auto b = (*loaded)->Probabilities(p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
  // A clone is identical too.
  auto c = (*policy)->Clone()->Probabilities(p);
  EXPECT_EQ(*a, *c);
  fs::remove_all(dir);
}

TEST(CheckpointTest, WithMetadataTextCopiesAndLeavesTheOriginal) {
  auto policy = Policy::Create(SmallConfig(), 7);
  ASSERT_TRUE(policy.ok());
  const PolicyMetadata before = (*policy)->metadata();
  std::unique_ptr<Policy> tagged =
      (*policy)->WithMetadataText("corpus", 5, "notes");
  EXPECT_EQ(tagged->metadata().corpus, "corpus");
  EXPECT_EQ(tagged->metadata().steps, 5);
  EXPECT_EQ(tagged->metadata().notes, "notes");
  EXPECT_EQ(tagged->metadata().seed, before.seed);
  EXPECT_EQ(tagged->metadata().config.hidden, before.config.hidden);
  EXPECT_EQ((*policy)->metadata().corpus, before.corpus);
  EXPECT_EQ((*policy)->metadata().steps, before.steps);
  EXPECT_EQ((*policy)->metadata().notes, before.notes);
  Problem p = MakeProblem(Diamond(), Uniform(3, 1e6));
  auto a = (*policy)->Probabilities(p);
  auto b = tagged->Probabilities(p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(CheckpointTest, MismatchesAreCleanErrors) {
  auto policy = Policy::Create(SmallConfig(), 7);
  ASSERT_TRUE(policy.ok());
  const std::string dir = TempDir("mismatch");
  ASSERT_TRUE((*policy)->Save(dir).ok());
  const std::string meta = dir + "/policy.meta";
  std::string text;
  {
    std::ifstream in(meta);
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto rewrite = [&](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    std::ofstream(meta) << t;
  };

  rewrite("hidden: 32", "hidden: 64");
  auto r = Policy::Load(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("shape"));

  rewrite("gnn_layers: 2", "gnn_layers: 3");
  r = Policy::Load(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();

  rewrite(absl::StrCat("feature_version: ", kFeatureVersion),
          "feature_version: 999");
  r = Policy::Load(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("999"));

  rewrite("heads: 4", "heads: 5");  // 32 % 5 != 0
  r = Policy::Load(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  std::ofstream(meta) << "garbage";
  r = Policy::Load(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  std::ofstream(meta) << text;
  std::ofstream(dir + "/model.pt") << "not a torch archive";
  r = Policy::Load(dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);

  r = Policy::Load(dir + "/nowhere");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mcmpart::policy
