#include "server/config.h"

#include <sched.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mcmpart::server {
namespace {

using Setter = std::function<absl::Status(absl::string_view, ServerConfig*)>;

struct FlagDef {
  const char* name;
  const char* value_name;  // "" for booleans
  const char* default_text;
  const char* help;
  Setter set;
};

absl::Status Bad(absl::string_view what, absl::string_view value,
                 absl::string_view expected) {
  return absl::InvalidArgumentError(
      absl::StrCat(what, " is '", value, "'; expected ", expected));
}

Setter Int(int ServerConfig::*field, int lo, int hi) {
  return [=](absl::string_view v, ServerConfig* c) {
    int x;
    if (!absl::SimpleAtoi(v, &x) || x < lo || x > hi) {
      return Bad("", v, absl::StrCat("an integer in ", lo, "..", hi));
    }
    c->*field = x;
    return absl::OkStatus();
  };
}

// For int and int64_t fields alike.
template <typename Get>
Setter IntAt(Get get, int64_t lo, int64_t hi) {
  return [=](absl::string_view v, ServerConfig* c) {
    std::remove_pointer_t<decltype(get(c))> x;
    if (!absl::SimpleAtoi(v, &x) || x < lo || x > hi) {
      return Bad("", v, absl::StrCat("an integer in ", lo, "..", hi));
    }
    *get(c) = x;
    return absl::OkStatus();
  };
}

// "10s", "250ms", "1h30m", or a bare number of seconds; "0" or "inf" as
// the flag documents.
absl::StatusOr<absl::Duration> ParseDurationValue(absl::string_view v) {
  double seconds;
  if (absl::SimpleAtod(v, &seconds) && seconds >= 0) {
    return absl::Seconds(seconds);
  }
  absl::Duration d;
  if (absl::ParseDuration(v, &d) && d >= absl::ZeroDuration()) return d;
  return Bad("", v, "a duration such as 10s, 250ms or 1h");
}

template <typename Get>
Setter DurationAt(Get get, bool zero_is_infinite = false) {
  return [=](absl::string_view v, ServerConfig* c) -> absl::Status {
    absl::StatusOr<absl::Duration> d = ParseDurationValue(v);
    if (!d.ok()) return d.status();
    *get(c) = zero_is_infinite && *d == absl::ZeroDuration()
                  ? absl::InfiniteDuration()
                  : *d;
    return absl::OkStatus();
  };
}

template <typename Get>
Setter StringAt(Get get) {
  return [=](absl::string_view v, ServerConfig* c) {
    *get(c) = std::string(v);
    return absl::OkStatus();
  };
}

template <typename Get>
Setter BoolAt(Get get) {
  return [=](absl::string_view v, ServerConfig* c) {
    const std::string s = absl::AsciiStrToLower(v);
    if (s == "true" || s == "1" || s == "yes" || s.empty()) {
      *get(c) = true;
    } else if (s == "false" || s == "0" || s == "no") {
      *get(c) = false;
    } else {
      return Bad("", v, "true or false");
    }
    return absl::OkStatus();
  };
}

// Long, and a table: one entry per flag, in --help order; the help text,
// the environment variables and the parser all come from it.
const std::vector<FlagDef>& Flags() {
  static const auto* flags = new std::vector<FlagDef>{
      {"host", "ADDR", "0.0.0.0", "address the gRPC server listens on",
       StringAt([](ServerConfig* c) { return &c->host; })},
      {"port", "N", "50051", "gRPC port (0 picks a free one)",
       Int(&ServerConfig::port, 0, 65535)},
      {"metrics-host", "ADDR", "the --host address",
       "address the Prometheus endpoint listens on",
       StringAt([](ServerConfig* c) { return &c->metrics_host; })},
      {"metrics-port", "N", "9464",
       "HTTP port serving /metrics (0 = no metrics endpoint)",
       Int(&ServerConfig::metrics_port, 0, 65535)},
      {"metrics-max-connections", "N", "16",
       "metrics connections served at once; beyond, 503 and closed at once",
       IntAt([](ServerConfig* c) { return &c->metrics.max_connections; }, 1,
             1 << 16)},
      {"metrics-deadline", "DURATION", "2s",
       "whole life of a metrics connection (reading the request and writing "
       "the answer); then it is closed",
       DurationAt([](ServerConfig* c) { return &c->metrics.deadline; })},
      {"strategy", "NAME", "auto", "strategy for requests that name none",
       StringAt([](ServerConfig* c) { return &c->strategy; })},
      {"policy-dir", "DIR", "the shipped policies",
       "directory of pre-trained policy checkpoints, loaded once at start-up",
       StringAt([](ServerConfig* c) { return &c->policy_dir; })},
      {"workers", "N", "the CPUs the process may use (cgroup limit)",
       "searches running at once (worker threads)",
       IntAt([](ServerConfig* c) { return &c->jobs.workers; }, 1, 1024)},
      {"max-queue", "N", "16",
       "searches waiting for a worker; beyond, calls get RESOURCE_EXHAUSTED",
       IntAt([](ServerConfig* c) { return &c->jobs.max_queue; }, 0, 1 << 20)},
      {"max-repairs", "N", "as many as --workers",
       "Repair calls running at once; beyond, calls get RESOURCE_EXHAUSTED",
       IntAt([](ServerConfig* c) { return &c->engine.max_repairs; }, 1,
             1 << 20)},
      {"job-retention", "DURATION", "1h",
       "how long ended jobs stay visible to WatchJob/GetJob/ListJobs",
       DurationAt([](ServerConfig* c) { return &c->jobs.retention; })},
      {"max-finished-jobs", "N", "1000", "ended jobs kept at most",
       IntAt([](ServerConfig* c) { return &c->jobs.max_finished_jobs; }, 0,
             1 << 24)},
      {"cache-entries", "N", "256",
       "problems the result cache remembers (0 disables it)",
       IntAt([](ServerConfig* c) { return &c->jobs.cache_entries; }, 0,
             1 << 24)},
      {"cache-keep-improving", "", "false",
       "on a cache hit, search on for better placements unless the request "
       "says otherwise",
       BoolAt([](ServerConfig* c) { return &c->engine.keep_improving; })},
      {"default-time-budget", "DURATION", "10s",
       "search time for requests that give none",
       DurationAt(
           [](ServerConfig* c) { return &c->engine.default_time_budget; })},
      {"max-time-budget", "DURATION", "5m",
       "longest search (and repair) a request may ask for",
       DurationAt([](ServerConfig* c) { return &c->engine.max_time_budget; })},
      {"repair-time-limit", "DURATION", "2s",
       "Repair's time limit for requests that give none",
       DurationAt(
           [](ServerConfig* c) { return &c->engine.default_repair_time; })},
      {"max-nodes", "N", "100000",
       "largest graph accepted, in nodes (INVALID_ARGUMENT beyond)",
       IntAt([](ServerConfig* c) { return &c->engine.max_nodes; }, 1,
             1'000'000)},
      {"max-message-bytes", "N", "67108864",
       "largest request message (RESOURCE_EXHAUSTED beyond)",
       IntAt([](ServerConfig* c) { return &c->server.max_message_bytes; }, 1,
             (1 << 30) + ((1 << 30) - 1))},
      {"max-threads", "N", "256",
       "threads for gRPC's health and reflection services (Partitioner calls "
       "hold none while they wait)",
       IntAt([](ServerConfig* c) { return &c->server.max_threads; }, 2,
             1 << 16)},
      {"handler-threads", "N", "twice --workers, at least 4",
       "threads that parse requests, import graphs, evaluate and repair",
       IntAt([](ServerConfig* c) { return &c->server.service.pool.threads; }, 1,
             1024)},
      {"max-pending-requests", "N", "64",
       "requests waiting for a handler thread; beyond, RESOURCE_EXHAUSTED",
       IntAt([](ServerConfig* c) { return &c->server.service.pool.max_queue; },
             0, 1 << 20)},
      {"max-inflight-bytes", "N", "134217728",
       "request bytes held by requests being handled (a parsed graph takes "
       "about 6x its bytes); beyond, RESOURCE_EXHAUSTED",
       IntAt([](ServerConfig* c) { return &c->server.service.pool.max_bytes; },
             1, int64_t{1} << 40)},
      {"max-streams", "N", "4096",
       "Partition and WatchJob streams open at once; beyond, "
       "RESOURCE_EXHAUSTED",
       IntAt(
           [](ServerConfig* c) {
             return &c->server.service.streams.max_streams;
           },
           1, 1 << 24)},
      {"max-streams-per-client", "N", "1024",
       "streams one client host may hold open; beyond, RESOURCE_EXHAUSTED",
       IntAt(
           [](ServerConfig* c) {
             return &c->server.service.streams.max_streams_per_client;
           },
           1, 1 << 24)},
      {"store", "SPEC", "memory",
       "where jobs and the result cache live: memory (this process), "
       "sqlite:PATH (kept across restarts) or redis://HOST:PORT[/DB] (shared "
       "by every replica)",
       StringAt([](ServerConfig* c) { return &c->store; })},
      {"replica-id", "NAME", "$HOSTNAME or the host name, and the pid",
       "this replica's name in the store (unique among the replicas)",
       StringAt([](ServerConfig* c) { return &c->replica; })},
      {"lease-ttl", "DURATION", "10s",
       "how long a job stays this replica's without a renewal; a dead "
       "replica's jobs resume elsewhere after it",
       DurationAt([](ServerConfig* c) { return &c->lease_ttl; })},
      {"tls-cert", "FILE", "none (plaintext)",
       "PEM certificate chain; with --tls-key the server speaks TLS",
       StringAt([](ServerConfig* c) { return &c->server.tls_cert_file; })},
      {"tls-key", "FILE", "none", "PEM private key for --tls-cert",
       StringAt([](ServerConfig* c) { return &c->server.tls_key_file; })},
      {"tls-client-ca", "FILE", "none",
       "PEM CA bundle; clients must present a certificate it signed (mTLS)",
       StringAt([](ServerConfig* c) { return &c->server.tls_client_ca_file; })},
      {"keepalive-time", "DURATION", "2m",
       "idle time before the server pings a connection",
       DurationAt([](ServerConfig* c) { return &c->server.keepalive_time; })},
      {"keepalive-timeout", "DURATION", "20s",
       "ping acknowledgement wait before the connection is closed",
       DurationAt(
           [](ServerConfig* c) { return &c->server.keepalive_timeout; })},
      {"keepalive-min-client-interval", "DURATION", "10s",
       "shortest client ping interval tolerated",
       DurationAt([](ServerConfig* c) {
         return &c->server.keepalive_min_client_interval;
       })},
      {"max-connection-age", "DURATION", "0 (unlimited)",
       "close connections after this age so clients rebalance",
       DurationAt([](ServerConfig* c) { return &c->server.max_connection_age; },
                  true)},
      {"max-connection-age-grace", "DURATION", "0 (unlimited)",
       "time calls in flight get after --max-connection-age",
       DurationAt(
           [](ServerConfig* c) { return &c->server.max_connection_age_grace; },
           true)},
      {"max-connection-idle", "DURATION", "0 (unlimited)",
       "close connections without calls for this long",
       DurationAt(
           [](ServerConfig* c) { return &c->server.max_connection_idle; },
           true)},
      {"reflection", "", "true", "serve gRPC server reflection",
       BoolAt([](ServerConfig* c) { return &c->server.reflection; })},
      {"shutdown-grace", "DURATION", "10s",
       "on SIGTERM/SIGINT: running jobs get half of it, then end with their "
       "best placement; the process exits within it",
       DurationAt([](ServerConfig* c) { return &c->shutdown_grace; })},
      {"log-jobs", "", "true",
       "write a JSON log line to stderr at each job start and end",
       BoolAt([](ServerConfig* c) { return &c->log_jobs; })},
  };
  return *flags;
}

std::string EnvName(absl::string_view flag) {
  return absl::StrCat(
      "MCMPART_SERVER_",
      absl::AsciiStrToUpper(absl::StrReplaceAll(flag, {{"-", "_"}})));
}

const FlagDef* FindFlag(absl::string_view name) {
  for (const FlagDef& f : Flags()) {
    if (name == f.name) return &f;
  }
  return nullptr;
}

absl::Status Apply(const FlagDef& f, absl::string_view value,
                   absl::string_view source, ServerConfig* config) {
  absl::Status s = f.set(value, config);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(source, s.message()));
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* v = std::getenv(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

absl::StatusOr<ServerConfig> ParseConfig(const std::vector<std::string>& args,
                                         const EnvLookup& env, bool* help) {
  ServerConfig config;
  config.jobs.workers = AvailableCpus();
  config.engine.max_repairs = 0;           // unset: as many as workers (below)
  config.server.service.pool.threads = 0;  // unset: from workers (below)
  config.server.service.pool.max_bytes = int64_t{128} << 20;
  *help = false;
  for (const FlagDef& f : Flags()) {
    const std::string var = EnvName(f.name);
    if (std::optional<std::string> v = env(var.c_str())) {
      absl::Status s = Apply(f, *v, var, &config);
      if (!s.ok()) return s;
    }
  }
  for (size_t i = 0; i < args.size(); ++i) {
    absl::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return ServerConfig();
    }
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected argument '", arg, "'; see --help"));
    }
    std::optional<std::string> value;
    if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
    }
    const FlagDef* f = FindFlag(arg);
    if (f == nullptr && absl::ConsumePrefix(&arg, "no-")) {
      f = FindFlag(arg);
      if (f != nullptr && *f->value_name == '\0' && !value.has_value()) {
        value = "false";
      } else {
        f = nullptr;
      }
    }
    if (f == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag '", args[i], "'; see --help"));
    }
    if (!value.has_value()) {
      if (*f->value_name == '\0') {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "--", f->name, " needs a value (", f->value_name, ")"));
      }
    }
    absl::Status s = Apply(*f, *value, absl::StrCat("--", f->name), &config);
    if (!s.ok()) return s;
  }
  if (config.metrics.deadline <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--metrics-deadline is 0; expected a positive duration such as 2s");
  }
  if (config.metrics_host.empty()) {
    absl::string_view host = config.host;
    if (absl::ConsumePrefix(&host, "[")) absl::ConsumeSuffix(&host, "]");
    config.metrics_host = std::string(host);
  }
  if (config.engine.max_repairs == 0) {
    config.engine.max_repairs = config.jobs.workers;
  }
  if (config.server.service.pool.threads == 0) {
    config.server.service.pool.threads = std::max(4, 2 * config.jobs.workers);
  }
  config.server.address = absl::StrCat(
      config.host.find(':') != std::string::npos && config.host.front() != '['
          ? absl::StrCat("[", config.host, "]")
          : config.host,
      ":", config.port);
  return config;
}

std::string ConfigHelp() {
  std::string out =
      "Usage: mcmpart-server [FLAGS]\n\n"
      "Serves mcmpart.v1.Partitioner over gRPC: partitions ML model graphs "
      "across\nthe chips of a multi-chip module, streaming the best valid "
      "placements found.\nHealth (grpc.health.v1) and reflection are served "
      "on the same port; Prometheus\nmetrics on --metrics-port at /metrics. "
      "SIGTERM or SIGINT drains and exits.\n\n"
      "Every flag can also be set by the environment variable shown (the "
      "flag wins).\nDurations: 10s, 250ms, 1h30m, or a number of seconds. "
      "Booleans: --flag,\n--flag=false or --no-flag.\n\nFlags:\n";
  for (const FlagDef& f : Flags()) {
    const std::string head = *f.value_name
                                 ? absl::StrCat("--", f.name, " ", f.value_name)
                                 : absl::StrCat("--", f.name);
    absl::StrAppendFormat(&out, "  %s\n      %s (default: %s)\n      $%s\n",
                          head, f.help, f.default_text, EnvName(f.name));
  }
  return out;
}

std::optional<int> CpusFromQuota(absl::string_view quota,
                                 absl::string_view period) {
  quota = absl::StripAsciiWhitespace(quota);
  period = absl::StripAsciiWhitespace(period);
  double q = 0, p = 0;
  if (quota == "max" || !absl::SimpleAtod(quota, &q) ||
      !absl::SimpleAtod(period, &p) || !(q > 0) || !(p > 0) ||
      !std::isfinite(q / p)) {
    return std::nullopt;
  }
  // Capped before the cast: v1 quotas can be huge, and more workers than
  // this is no limit at all.
  constexpr double kMaxCpus = 1 << 20;
  return std::max(
      1, static_cast<int>(std::min(kMaxCpus, std::ceil(q / p - 1e-9))));
}

namespace {

std::optional<std::string> ReadSmallFile(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

int AvailableCpus(const std::string& cgroup_root) {
  int cpus = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    cpus = std::min(cpus, std::max(1, CPU_COUNT(&set)));
  }
  std::optional<int> quota;
  const std::string v2 = cgroup_root + "/cpu.max";
  if (std::optional<std::string> max = ReadSmallFile(v2.c_str())) {
    std::vector<std::string> parts =
        absl::StrSplit(*max, ' ', absl::SkipWhitespace());
    if (parts.size() == 2) quota = CpusFromQuota(parts[0], parts[1]);
  } else {
    const std::string v1 = cgroup_root + "/cpu/cpu.cfs_";
    std::optional<std::string> q = ReadSmallFile((v1 + "quota_us").c_str());
    std::optional<std::string> p = ReadSmallFile((v1 + "period_us").c_str());
    if (q && p) quota = CpusFromQuota(*q, *p);
  }
  if (quota) cpus = std::min(cpus, *quota);
  return cpus;
}

}  // namespace mcmpart::server
