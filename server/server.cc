#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <malloc.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "solver/graph_io.h"

namespace mcmpart::server {
namespace {

constexpr char kServiceName[] = "mcmpart.v1.Partitioner";

int Millis(absl::Duration d) {
  if (d == absl::InfiniteDuration() ||
      d > absl::Milliseconds(std::numeric_limits<int>::max())) {
    return std::numeric_limits<int>::max();
  }
  return static_cast<int>(absl::ToInt64Milliseconds(d));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const ServerOptions& options) {
  const bool tls =
      !options.tls_cert_file.empty() || !options.tls_key_file.empty();
  if (!tls) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-client-ca needs --tls-cert and --tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  if (options.tls_cert_file.empty() || options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both --tls-cert and --tls-key");
  }
  absl::StatusOr<std::string> cert = ReadFile(options.tls_cert_file, 1 << 20);
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadFile(options.tls_key_file, 1 << 20);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(
      options.tls_client_ca_file.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!options.tls_client_ca_file.empty()) {
    absl::StatusOr<std::string> ca =
        ReadFile(options.tls_client_ca_file, 1 << 20);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *std::move(ca);
  }
  ssl.pem_key_cert_pairs.push_back({*std::move(key), *std::move(cert)});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

int MaxRequestBytes(int max_message_bytes, int max_nodes) {
  const int64_t by_nodes =
      std::max(kMinRequestBytes, int64_t{max_nodes} * kMaxBytesPerNode);
  return static_cast<int>(std::min<int64_t>(max_message_bytes, by_nodes));
}

absl::StatusOr<std::unique_ptr<PartitionServer>> PartitionServer::Start(
    const ServerOptions& options, Engine* engine, JobManager* jobs,
    Telemetry* telemetry) {
  if (options.max_message_bytes <= 0 || options.max_threads < 2) {
    return absl::InvalidArgumentError(
        "--max-message-bytes must be > 0 and --max-threads >= 2");
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> creds =
      Credentials(options);
  if (!creds.ok()) return creds.status();

  std::unique_ptr<PartitionServer> server(new PartitionServer());
  server->jobs_ = jobs;
  server->telemetry_ = telemetry;
  server->service_ = std::make_unique<PartitionerService>(
      options.service, engine, jobs, telemetry);

  // Both are process-wide switches read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  if (options.reflection)
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, *creds, &server->port_);
  builder.RegisterService(server->service_.get());
  builder.SetMaxReceiveMessageSize(
      MaxRequestBytes(options.max_message_bytes, engine->options().max_nodes));
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  grpc::ResourceQuota quota("mcmpart-server");
  quota.SetMaxThreads(options.max_threads);
  builder.SetResourceQuota(quota);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             Millis(options.keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             Millis(options.keepalive_timeout));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
      Millis(options.keepalive_min_client_interval));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                             Millis(options.max_connection_age));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             Millis(options.max_connection_age_grace));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             Millis(options.max_connection_idle));
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address,
                     " (address in use, or not a host:port?)"));
  }
  grpc::HealthCheckServiceInterface* health =
      server->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    health->SetServingStatus(kServiceName, true);
  }
  if (health != nullptr && options.store_healthy) {
    health->SetServingStatus(kStoreHealthName, options.store_healthy());
  }
  server->monitor_ = std::thread(
      [p = server.get(), period = options.load_period,
       store = options.store_healthy] { p->MonitorLoad(period, store); });
  return server;
}

PartitionServer::~PartitionServer() { Shutdown(absl::ZeroDuration()); }

void PartitionServer::MonitorLoad(absl::Duration period,
                                  std::function<bool()> store_healthy) {
  bool was_saturated = false;
  bool store_was_healthy = store_healthy ? store_healthy() : true;
  bool trim_next = false;
  absl::MutexLock lock(&mu_);
  while (!shutting_down_) {
    mu_.AwaitWithTimeout(absl::Condition(&shutting_down_), period);
    if (shutting_down_) break;
    const bool saturated = service_->saturated();
    if (saturated != was_saturated) {
      if (grpc::HealthCheckServiceInterface* health =
              server_->GetHealthCheckService()) {
        health->SetServingStatus(kServiceName, !saturated);
      }
      was_saturated = saturated;
    }
    if (store_healthy) {
      const bool healthy = store_healthy();
      if (healthy != store_was_healthy) {
        if (grpc::HealthCheckServiceInterface* health =
                server_->GetHealthCheckService()) {
          health->SetServingStatus(kStoreHealthName, healthy);
        }
        store_was_healthy = healthy;
      }
    }
    if (telemetry_) telemetry_->OnServiceLoad(service_->load(), saturated);
    // A large request's buffers are freed by gRPC after its call ended;
    // trimming one period later returns them to the system.
    if (trim_next) malloc_trim(0);
    trim_next = service_->TakeTrimRequest();
  }
}

bool PartitionServer::serving() const {
  absl::MutexLock lock(&mu_);
  return !shutting_down_;
}

void PartitionServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    shutting_down_ = true;
  }
  if (monitor_.joinable()) monitor_.join();
  if (server_ == nullptr) {  // Start failed before the server existed
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    return;
  }
  const absl::Time start = absl::Now();
  // Load balancers stop sending work first; the health service ignores
  // any later SetServingStatus after this.
  if (grpc::HealthCheckServiceInterface* health =
          server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  jobs_->Drain(grace / 2);
  // Running jobs end by start + grace / 2; their streams then send the
  // final update. Whatever is left at start + grace is cancelled.
  jobs_->WaitIdle(start + grace * 3 / 4);
  server_->Shutdown(absl::ToChronoTime(start + grace));
  server_->Wait();
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

void PartitionServer::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&stopped_));
}

}  // namespace mcmpart::server
