// mcmpart-server's settings: one table of flags, each with an environment
// variable (MCMPART_SERVER_<FLAG>, dashes as underscores) and a default.
// Precedence: command line, then environment, then default.
#ifndef MCMPART_SERVER_CONFIG_H_
#define MCMPART_SERVER_CONFIG_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/metrics_http.h"
#include "server/server.h"

namespace mcmpart::server {

struct ServerConfig {
  std::string host = "0.0.0.0";
  int port = 50051;
  // Empty in a parsed config only when --host is empty: unless given,
  // ParseConfig sets it to `host` (brackets removed), so that a server
  // listening on loopback does not expose its metrics on every interface.
  std::string metrics_host;
  int metrics_port = 9464;  // 0 = no metrics endpoint
  MetricsOptions metrics;
  std::string strategy;    // default strategy; empty = rl when available
  std::string policy_dir;  // empty = the shipped policies
  absl::Duration shutdown_grace = absl::Seconds(10);
  bool log_jobs = true;
  // The state store (server/store/store.h): "memory" (none: jobs in this
  // process only), "sqlite:PATH" or "redis://HOST:PORT[/DB]".
  std::string store = "memory";
  // This replica's name in the store; empty = $HOSTNAME (the pod name in
  // Kubernetes) or the host name, with the process id.
  std::string replica;
  absl::Duration lease_ttl = absl::Seconds(10);
  ServerOptions server;
  EngineOptions engine;
  JobManagerOptions jobs;
};

// Returns the variable's value, or nullopt when unset. Tests pass their own.
using EnvLookup = std::function<std::optional<std::string>(const char*)>;
EnvLookup ProcessEnv();

// Parses `args` (without the program name). Sets *help when --help/-h is
// given (the config is then the defaults). Errors (INVALID_ARGUMENT): an
// unknown flag, a missing or malformed value (the message names the flag or
// the variable).
absl::StatusOr<ServerConfig> ParseConfig(const std::vector<std::string>& args,
                                         const EnvLookup& env, bool* help);

// The --help text: every flag, its variable, default and meaning.
std::string ConfigHelp();

// The CPUs this process may use, the default of --workers: the smallest of
// the machine's cores, the scheduler affinity mask and the cgroup CPU quota
// (v2 /sys/fs/cgroup/cpu.max, else v1 cpu.cfs_quota_us / cpu.cfs_period_us),
// at least 1. In a Kubernetes pod with a CPU limit this is the limit rounded
// up, not the node's cores. `cgroup_root` is where the cgroup files are
// read (tests pass their own). Only the process's own cgroup namespace root
// is read: a limit set on a parent cgroup outside it is not seen.
int AvailableCpus(const std::string& cgroup_root = "/sys/fs/cgroup");

// The CPUs a cgroup quota allows, rounded up: `quota` and `period` as in
// cpu.max ("max" or a negative quota = no limit -> nullopt). Malformed
// numbers -> nullopt.
std::optional<int> CpusFromQuota(absl::string_view quota,
                                 absl::string_view period);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_CONFIG_H_
