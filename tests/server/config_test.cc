#include "server/config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcmpart::server {
namespace {

using ::testing::HasSubstr;

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ConfigTest, DefaultsMatchTheDocumentedOnes) {
  bool help = true;
  absl::StatusOr<ServerConfig> c = ParseConfig({}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(help);
  EXPECT_EQ(c->port, 50051);
  EXPECT_EQ(c->metrics_port, 9464);
  EXPECT_EQ(c->metrics_host, "0.0.0.0");
  EXPECT_EQ(c->metrics.max_connections, 16);
  EXPECT_EQ(c->metrics.deadline, absl::Seconds(2));
  EXPECT_EQ(c->server.address, "0.0.0.0:50051");
  EXPECT_EQ(c->jobs.max_queue, 16);
  EXPECT_EQ(c->engine.default_time_budget, absl::Seconds(10));
  EXPECT_EQ(c->server.max_connection_age, absl::InfiniteDuration());
  EXPECT_TRUE(c->server.reflection);
}

TEST(ConfigTest, WorkersDefaultToTheAvailableCpus) {
  bool help = false;
  absl::StatusOr<ServerConfig> c = ParseConfig({}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->jobs.workers, AvailableCpus());
  EXPECT_EQ(c->engine.max_repairs, AvailableCpus());
}

TEST(ConfigTest, MaxRepairsFollowsTheWorkersUnlessGiven) {
  bool help = false;
  absl::StatusOr<ServerConfig> c = ParseConfig({"--workers=3"}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->engine.max_repairs, 3);
  c = ParseConfig({"--workers=3", "--max-repairs=1"}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->engine.max_repairs, 1);
  c = ParseConfig({}, Env({{"MCMPART_SERVER_MAX_REPAIRS", "5"}}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->engine.max_repairs, 5);
  EXPECT_FALSE(ParseConfig({"--max-repairs=0"}, Env({}), &help).ok());
}

TEST(ConfigTest, AvailableCpusFollowsTheCgroupQuota) {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() /
                        ("mcmpart_cgroup_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "cpu");
  auto write = [](const fs::path& path, const std::string& text) {
    std::ofstream(path) << text;
  };
  // No cgroup files: the cores the scheduler gives the process.
  const int cores = AvailableCpus(root.string());
  EXPECT_GE(cores, 1);
  // cgroup v1: half a CPU is one worker.
  write(root / "cpu" / "cpu.cfs_quota_us", "50000\n");
  write(root / "cpu" / "cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(AvailableCpus(root.string()), 1);
  write(root / "cpu" / "cpu.cfs_quota_us", "-1\n");
  EXPECT_EQ(AvailableCpus(root.string()), cores);
  // cgroup v2 takes precedence.
  write(root / "cpu.max", "50000 100000\n");
  EXPECT_EQ(AvailableCpus(root.string()), 1);
  write(root / "cpu.max", "max 100000\n");
  EXPECT_EQ(AvailableCpus(root.string()), cores);
  // A quota above the cores does not add workers.
  write(root / "cpu.max", "100000000 1000\n");  // 100,000 CPUs
  EXPECT_EQ(AvailableCpus(root.string()), cores);
  fs::remove_all(root);
}

TEST(ConfigTest, CgroupQuotaRoundsUp) {
  EXPECT_EQ(CpusFromQuota("200000", "100000"), 2);
  EXPECT_EQ(CpusFromQuota("150000", "100000"), 2);  // 1.5 CPUs: 2 workers
  EXPECT_EQ(CpusFromQuota("50000", "100000"), 1);
  EXPECT_EQ(CpusFromQuota("400000\n", " 100000\n"), 4);
  EXPECT_EQ(CpusFromQuota("max", "100000"), std::nullopt);
  EXPECT_EQ(CpusFromQuota("-1", "100000"), std::nullopt);  // cgroup v1
  EXPECT_EQ(CpusFromQuota("abc", "100000"), std::nullopt);
  EXPECT_EQ(CpusFromQuota("100000", "0"), std::nullopt);
  EXPECT_EQ(CpusFromQuota("1e300", "1"), 1 << 20);  // capped, no overflow
}

TEST(ConfigTest, FlagsBeatEnvironmentBeatsDefaults) {
  bool help = false;
  absl::StatusOr<ServerConfig> c = ParseConfig(
      {"--port", "7000", "--max-queue=3", "--no-reflection",
       "--default-time-budget", "250ms", "--max-connection-age=30m"},
      Env({{"MCMPART_SERVER_PORT", "6000"},
           {"MCMPART_SERVER_WORKERS", "5"},
           {"MCMPART_SERVER_CACHE_KEEP_IMPROVING", "true"}}),
      &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->port, 7000);
  EXPECT_EQ(c->jobs.workers, 5);
  EXPECT_EQ(c->jobs.max_queue, 3);
  EXPECT_FALSE(c->server.reflection);
  EXPECT_TRUE(c->engine.keep_improving);
  EXPECT_EQ(c->engine.default_time_budget, absl::Milliseconds(250));
  EXPECT_EQ(c->server.max_connection_age, absl::Minutes(30));
}

// A server listening on loopback does not expose its metrics on every
// interface: the metrics host follows --host unless given.
TEST(ConfigTest, MetricsHostFollowsTheGrpcHostUnlessGiven) {
  bool help = false;
  absl::StatusOr<ServerConfig> c =
      ParseConfig({"--host=127.0.0.1"}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_host, "127.0.0.1");
  c = ParseConfig({}, Env({{"MCMPART_SERVER_HOST", "10.1.2.3"}}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_host, "10.1.2.3");
  c = ParseConfig({"--host", "::1"}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.address, "[::1]:50051");
  EXPECT_EQ(c->metrics_host, "::1");
  c = ParseConfig({"--host=[::1]"}, Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_host, "::1");
  // Given, by flag or variable, it wins.
  c = ParseConfig({"--host=127.0.0.1", "--metrics-host=0.0.0.0"}, Env({}),
                  &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_host, "0.0.0.0");
  c = ParseConfig({"--host=127.0.0.1"},
                  Env({{"MCMPART_SERVER_METRICS_HOST", "10.0.0.7"}}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics_host, "10.0.0.7");
}

TEST(ConfigTest, MetricsLimitsAreFlags) {
  bool help = false;
  absl::StatusOr<ServerConfig> c =
      ParseConfig({"--metrics-max-connections=3", "--metrics-deadline=500ms"},
                  Env({}), &help);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->metrics.max_connections, 3);
  EXPECT_EQ(c->metrics.deadline, absl::Milliseconds(500));
  EXPECT_FALSE(
      ParseConfig({"--metrics-max-connections=0"}, Env({}), &help).ok());
  EXPECT_THAT(
      ParseConfig({"--metrics-deadline=0"}, Env({}), &help).status().message(),
      HasSubstr("--metrics-deadline"));
}

TEST(ConfigTest, ErrorsNameTheFlagOrVariable) {
  bool help = false;
  EXPECT_THAT(ParseConfig({"--port", "x"}, Env({}), &help).status().message(),
              HasSubstr("--port is 'x'"));
  EXPECT_THAT(ParseConfig({"--bogus"}, Env({}), &help).status().message(),
              HasSubstr("unknown flag '--bogus'"));
  EXPECT_THAT(ParseConfig({"--workers"}, Env({}), &help).status().message(),
              HasSubstr("--workers needs a value"));
  EXPECT_THAT(
      ParseConfig({}, Env({{"MCMPART_SERVER_SHUTDOWN_GRACE", "soon"}}), &help)
          .status()
          .message(),
      HasSubstr("MCMPART_SERVER_SHUTDOWN_GRACE is 'soon'"));
}

TEST(ConfigTest, HelpListsEveryFlagWithItsVariable) {
  bool help = false;
  ASSERT_TRUE(ParseConfig({"--help"}, Env({}), &help).ok());
  EXPECT_TRUE(help);
  const std::string text = ConfigHelp();
  for (const char* s :
       {"--port N", "$MCMPART_SERVER_PORT", "--metrics-port", "--tls-client-ca",
        "--max-connection-age", "--shutdown-grace", "--policy-dir",
        "--max-message-bytes", "--max-nodes", "--metrics-host ADDR",
        "--metrics-max-connections", "--metrics-deadline"}) {
    EXPECT_THAT(text, HasSubstr(s));
  }
}

}  // namespace
}  // namespace mcmpart::server
