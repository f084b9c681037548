// Tests of the policy registry (policy/registry.h).
#include "policy/registry.h"

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "policy/policy.h"
#include "tests/policy/test_util.h"

namespace mcmpart::policy {
namespace {

namespace fs = std::filesystem;
using ::mcmpart::policy::testing::SmallConfig;
using ::mcmpart::policy::testing::TempDir;

TEST(RegistryTest, LoadsEverySubdirectoryOnce) {
  const std::string dir = TempDir("registry");
  auto policy = Policy::Create(SmallConfig(), 7);
  ASSERT_TRUE((*policy)->Save(dir + "/default").ok());
  ASSERT_TRUE((*policy)->Save(dir + "/other").ok());
  fs::create_directories(dir + "/not_a_checkpoint");
  auto reg = PolicyRegistry::Load(dir);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ((*reg)->Names(), (std::vector<std::string>{"default", "other"}));
  auto d1 = (*reg)->Default();
  auto d2 = (*reg)->Get("default");
  ASSERT_TRUE(d1.ok());
  EXPECT_EQ(d1->get(), d2->get());  // loaded once, shared
  EXPECT_EQ((*reg)->Get("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(PolicyRegistry::Load(dir + "/missing").status().code(),
            absl::StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST(RegistryTest, ShippedDefaultLoadsWhenPresent) {
  const std::string dir = DefaultPolicyDirectory();
  if (!fs::exists(dir + "/default/policy.meta")) {
    GTEST_SKIP() << "no shipped policy in " << dir;
  }
  auto reg = PolicyRegistry::Load(dir);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_TRUE((*reg)->Default().ok());
}

}  // namespace
}  // namespace mcmpart::policy
