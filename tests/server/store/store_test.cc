// OpenStore: the --store spec and its error messages.
#include "server/store/store.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/net_util.h"
#include "tests/server/store/test_util.h"

namespace mcmpart::store {
namespace {

using ::testing::HasSubstr;

absl::Status OpenError(const std::string& spec) {
  absl::StatusOr<std::unique_ptr<StateStore>> store = OpenStore(spec);
  return store.status();
}

TEST(OpenStoreTest, OpensEachBackend) {
  absl::StatusOr<std::unique_ptr<StateStore>> memory = OpenStore("memory");
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_EQ((*memory)->backend(), "memory");

  testing::TempDir dir;
  absl::StatusOr<std::unique_ptr<StateStore>> sqlite =
      OpenStore(absl::StrCat("sqlite:", dir.File("s.db")));
  ASSERT_TRUE(sqlite.ok()) << sqlite.status();
  EXPECT_EQ((*sqlite)->backend(), "sqlite");

  testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  for (const std::string& spec : {redis.spec(), redis.spec(3), redis.spec(0)}) {
    absl::StatusOr<std::unique_ptr<StateStore>> store = OpenStore(spec);
    ASSERT_TRUE(store.ok()) << spec << ": " << store.status();
    EXPECT_EQ((*store)->backend(), "redis");
  }
}

TEST(OpenStoreTest, BadSpecsSayWhatIsExpected) {
  const std::string expected =
      "; expected memory, sqlite:PATH or redis://HOST:PORT[/DB]";
  EXPECT_EQ(OpenError(""),
            absl::InvalidArgumentError("--store is empty" + expected));
  EXPECT_EQ(OpenError("mem"),
            absl::InvalidArgumentError("unknown --store 'mem'" + expected));
  EXPECT_EQ(OpenError("postgres://db:5432"),
            absl::InvalidArgumentError("unknown --store 'postgres://db:5432'" +
                                       expected));
  EXPECT_EQ(OpenError("sqlite:"),
            absl::InvalidArgumentError(
                "--store 'sqlite:' needs a file path: sqlite:PATH, e.g. "
                "sqlite:/var/lib/mcmpart/state.db"));

  const std::string redis = "; expected redis://HOST:PORT[/DB]";
  EXPECT_EQ(OpenError("redis://"),
            absl::InvalidArgumentError("--store 'redis://': no host" + redis));
  EXPECT_EQ(
      OpenError("redis://:6379"),
      absl::InvalidArgumentError("--store 'redis://:6379': no host" + redis));
  EXPECT_EQ(OpenError("redis://host:0"),
            absl::InvalidArgumentError(
                "--store 'redis://host:0': port '0' is not a number from 1 to "
                "65535" +
                redis));
  EXPECT_EQ(OpenError("redis://host:65536"),
            absl::InvalidArgumentError(
                "--store 'redis://host:65536': port '65536' is not a number "
                "from 1 to 65535" +
                redis));
  EXPECT_EQ(OpenError("redis://host:"),
            absl::InvalidArgumentError(
                "--store 'redis://host:': port '' is not a number from 1 to "
                "65535" +
                redis));
  EXPECT_EQ(OpenError("redis://host:6379/x"),
            absl::InvalidArgumentError(
                "--store 'redis://host:6379/x': database 'x' is not a number "
                "from 0 up" +
                redis));
  EXPECT_EQ(OpenError("redis://host:6379/-1"),
            absl::InvalidArgumentError(
                "--store 'redis://host:6379/-1': database '-1' is not a number "
                "from 0 up" +
                redis));
  EXPECT_EQ(OpenError("redis://[::1:6379"),
            absl::InvalidArgumentError(
                "--store 'redis://[::1:6379': the IPv6 address has no closing "
                "']'" +
                redis));
}

TEST(OpenStoreTest, PasswordsAreRefusedWithoutQuotingThem) {
  absl::Status s = OpenError("redis://user:hunter2@host:6379");
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_THAT(s.message(), HasSubstr("passwords are not supported"));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("hunter2")));
}

TEST(OpenStoreTest, ALongSpecIsQuotedShortly) {
  const std::string spec(100000, 'x');
  absl::Status s = OpenError(spec);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_THAT(s.message(), HasSubstr("...' (100000 bytes)"));
}

TEST(OpenStoreTest, AnUnreachableRedisIsUnavailable) {
  const int port = mcmpart::testing::FreePort();
  const absl::Time start = absl::Now();
  absl::Status s = OpenError(absl::StrCat("redis://127.0.0.1:", port));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(s.message(),
              HasSubstr(absl::StrCat("Redis 127.0.0.1:", port,
                                     " is unreachable: Connection refused")));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

}  // namespace
}  // namespace mcmpart::store
