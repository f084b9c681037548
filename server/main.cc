// mcmpart-server: the long-running partitioning service. Wiring only: every
// behaviour lives in the library (server/*.h).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "server/config.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/job_recorder.h"
#include "server/log.h"
#include "server/metrics_http.h"
#include "server/rl_strategy_factory.h"
#include "server/server.h"
#include "server/store/store.h"
#include "server/strategy_factory.h"
#include "server/telemetry.h"

namespace mcmpart::server {
namespace {

int g_signal_pipe[2] = {-1, -1};

void OnSignal(int sig) {
  // Async-signal-safe: one write. A second signal while draining is
  // harmless (the drain is idempotent; the reader takes only the first).
  const int saved = errno;
  (void)!write(g_signal_pipe[1], &sig, sizeof(sig));
  errno = saved;
}

// The state store and its recorder; both null for --store memory (jobs in
// this process only, as without a store).
struct StoreSetup {
  std::unique_ptr<store::StateStore> store;
  std::unique_ptr<JobRecorder> recorder;
};

std::string DefaultReplica() {
  const char* host = std::getenv("HOSTNAME");
  char name[256] = {};
  if (host == nullptr || *host == '\0') {
    gethostname(name, sizeof(name) - 1);
    host = name;
  }
  return absl::StrCat(host, ":", getpid());
}

absl::StatusOr<StoreSetup> OpenStore(const ServerConfig& config,
                                     JobManager& jobs, const Engine& engine,
                                     Telemetry& telemetry) {
  StoreSetup out;
  if (config.store == "memory") return out;
  store::StoreOptions options;
  options.cache_entries = config.jobs.cache_entries;
  absl::StatusOr<std::unique_ptr<store::StateStore>> opened =
      store::OpenStore(config.store, options);
  if (!opened.ok()) return opened.status();
  out.store = *std::move(opened);
  JobRecorderOptions recorder;
  recorder.replica = config.replica.empty() ? DefaultReplica() : config.replica;
  recorder.lease_ttl = config.lease_ttl;
  recorder.retention = config.jobs.retention;
  recorder.max_finished_jobs = config.jobs.max_finished_jobs;
  out.recorder = std::make_unique<JobRecorder>(
      recorder, out.store.get(), &jobs,
      [&engine](const store::JobRecord& r) { return engine.PrepareResume(r); },
      &telemetry);
  jobs.SetRecorder(out.recorder.get());
  return out;
}

// SIGTERM/SIGINT start the drain. A handler that writes to a pipe works
// whichever thread the signal lands on: libraries (Torch, gRPC) start
// threads of their own, some before main, so masking is not enough.
bool InstallSignalPipe() {
  if (pipe2(g_signal_pipe, O_CLOEXEC) != 0) {
    std::cerr << "mcmpart-server: pipe: " << std::strerror(errno) << "\n";
    return false;
  }
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  return true;
}

// Policies are loaded once, here, and stay warm for the process's life.
// Without an explicit --policy-dir a missing checkpoint directory is not
// fatal: the server runs the classical strategies and says so (null).
absl::StatusOr<std::unique_ptr<RlStrategyFactory>> LoadPolicies(
    const ServerConfig& config, Telemetry& telemetry) {
  absl::StatusOr<std::unique_ptr<RlStrategyFactory>> loaded =
      RlStrategyFactory::Load(config.policy_dir, [&](absl::Duration d) {
        telemetry.RecordFineTune(d);
      });
  if (loaded.ok()) {
    std::vector<std::string> names;
    for (const v1::PolicyInfo& p : (*loaded)->Policies()) {
      names.push_back(p.name());
    }
    LogLine("info", "policies_loaded",
            {{"dir", (*loaded)->directory()},
             {"policies", absl::StrJoin(names, ",")}});
    return loaded;
  }
  if (!config.policy_dir.empty()) {
    return absl::Status(loaded.status().code(),
                        absl::StrCat("--policy-dir ", config.policy_dir, ": ",
                                     loaded.status().message()));
  }
  LogLine("warning", "policies_unavailable",
          {{"message", std::string(loaded.status().message())},
           {"effect", "the rl strategy is off; classical strategies only"}});
  return nullptr;
}

// The /metrics endpoint; null with --metrics-port 0.
absl::StatusOr<std::unique_ptr<MetricsEndpoint>> StartMetrics(
    const ServerConfig& config, const Telemetry& telemetry) {
  if (config.metrics_port == 0) return nullptr;
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> started =
      MetricsEndpoint::Start(config.metrics_host, config.metrics_port,
                             telemetry.registry(), config.metrics);
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("metrics: ", started.status().message(),
                                     " (--metrics-port 0 turns it off)"));
  }
  return started;
}

void LogStart(const ServerConfig& config, const PartitionServer& server,
              const MetricsEndpoint* metrics,
              const StrategyRegistry& strategies, const StoreSetup& store) {
  LogLine("info", "server_start",
          {{"address", config.server.address},
           {"port", server.port()},
           {"metrics_host", metrics ? config.metrics_host : std::string()},
           {"metrics_port", metrics ? metrics->port() : 0},
           {"workers", config.jobs.workers},
           {"max_queue", config.jobs.max_queue},
           {"default_strategy", strategies.default_name()},
           {"strategies", absl::StrJoin(strategies.Names(), ",")},
           {"store", store.store ? std::string(store.store->backend())
                                 : std::string("memory")},
           {"replica", store.recorder ? store.recorder->replica() : ""},
           {"tls", !config.server.tls_cert_file.empty()},
           {"mtls", !config.server.tls_client_ca_file.empty()}});
}

// Serves until SIGTERM or SIGINT, then drains.
void ServeUntilSignal(const ServerConfig& config, PartitionServer& server,
                      const JobManager& jobs) {
  std::thread waiter([&] {
    int sig = 0;
    while (read(g_signal_pipe[0], &sig, sizeof(sig)) < 0 && errno == EINTR) {
    }
    LogLine("info", "server_drain",
            {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
             {"grace_s", absl::ToDoubleSeconds(config.shutdown_grace)},
             {"running", jobs.running()},
             {"queued", jobs.queued()}});
    server.Shutdown(config.shutdown_grace);
  });
  server.Wait();
  waiter.join();
}

int Fatal(const absl::Status& s) {
  std::cerr << "mcmpart-server: " << s.message() << "\n";
  return 2;
}

int Run(const std::vector<std::string>& args) {
  bool help = false;
  absl::StatusOr<ServerConfig> config = ParseConfig(args, ProcessEnv(), &help);
  if (help) {
    std::cout << ConfigHelp();
    return 0;
  }
  if (!config.ok()) return Fatal(config.status());
  RouteProtobufLogs();
  if (!InstallSignalPipe()) return 1;
  Telemetry telemetry(config->log_jobs);
  absl::StatusOr<std::unique_ptr<RlStrategyFactory>> rl =
      LoadPolicies(*config, telemetry);
  if (!rl.ok()) return Fatal(rl.status());
  // auto runs the learned policy after annealing when one is loaded.
  ClassicalStrategyFactory classical(rl->get());
  std::vector<const StrategyFactory*> factories;
  if (*rl) factories.push_back(rl->get());
  factories.push_back(&classical);
  StrategyRegistry strategies(factories, config->strategy);
  if (!config->strategy.empty() &&
      strategies.default_name() != config->strategy) {
    return Fatal(absl::InvalidArgumentError(absl::StrCat(
        "--strategy is '", config->strategy, "'; this server runs ",
        absl::StrJoin(strategies.Names(), ", "))));
  }
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> metrics =
      StartMetrics(*config, telemetry);
  if (!metrics.ok()) return Fatal(metrics.status());

  JobManager jobs(config->jobs, &telemetry);
  Engine engine(config->engine, &strategies, &telemetry);
  absl::StatusOr<StoreSetup> store =
      OpenStore(*config, jobs, engine, telemetry);
  if (!store.ok()) {
    return Fatal(
        absl::Status(store.status().code(),
                     absl::StrCat("--store: ", store.status().message())));
  }
  ServerOptions server_options = config->server;
  if (JobRecorder* recorder = store->recorder.get()) {
    server_options.store_healthy = [recorder] { return recorder->healthy(); };
  }
  absl::StatusOr<std::unique_ptr<PartitionServer>> server =
      PartitionServer::Start(server_options, &engine, &jobs, &telemetry);
  if (!server.ok()) return Fatal(server.status());
  LogStart(*config, **server, metrics->get(), strategies, *store);
  ServeUntilSignal(*config, **server, jobs);
  if (store->recorder) {
    // Handed-back and ended jobs reach the store before the process ends.
    store->recorder->Flush();
    jobs.SetRecorder(nullptr);
  }
  LogLine("info", "server_stop", {});
  return 0;
}

}  // namespace
}  // namespace mcmpart::server

int main(int argc, char** argv) {
  try {
    return mcmpart::server::Run(
        std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    std::cerr << "mcmpart-server: fatal: " << e.what() << "\n";
    return 1;
  }
}
