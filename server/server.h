// The gRPC server around the Partitioner service: listening address,
// transport security, keepalive and connection-age settings, health,
// reflection, and the drain on shutdown.
#ifndef MCMPART_SERVER_SERVER_H_
#define MCMPART_SERVER_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/service.h"
#include "server/telemetry.h"

namespace mcmpart::server {

struct ServerOptions {
  // host:port; port 0 picks a free one (see PartitionServer::port()).
  std::string address = "0.0.0.0:50051";
  // Largest request or reply message, in bytes; larger requests fail with
  // RESOURCE_EXHAUSTED before any handler runs. Requests are further capped
  // at kMaxBytesPerNode per --max-nodes (MaxRequestBytes), so that a small
  // node limit also bounds what a request may cost to receive.
  int max_message_bytes = 64 << 20;
  // Threads for gRPC's synchronous services (health, reflection); the
  // Partitioner service holds no thread per call (service.h).
  int max_threads = 256;
  // The state store's health (null: none used). While it returns false the
  // health service reports NOT_SERVING for kStoreHealthName; the server's
  // own ("") and the Partitioner's stay as they are, since the server keeps
  // serving from memory.
  std::function<bool()> store_healthy;
  // How often health and the load metrics are refreshed.
  absl::Duration load_period = absl::Milliseconds(100);
  // PEM files. With cert and key the server speaks TLS; with a client CA as
  // well it requires and verifies client certificates (mTLS).
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // HTTP/2 keepalive pings from the server, and the rate of client pings
  // it tolerates.
  absl::Duration keepalive_time = absl::Minutes(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  absl::Duration keepalive_min_client_interval = absl::Seconds(10);
  // Connections are closed gracefully after this age (plus the grace for
  // calls in flight), so that clients re-resolve and load balancers
  // spread them; InfiniteDuration keeps them.
  absl::Duration max_connection_age = absl::InfiniteDuration();
  absl::Duration max_connection_age_grace = absl::InfiniteDuration();
  absl::Duration max_connection_idle = absl::InfiniteDuration();
  bool reflection = true;
  ServiceOptions service;
};

// The health service name that tells whether the state store answers.
inline constexpr char kStoreHealthName[] = "mcmpart.store";

// Bytes a request may take per node of --max-nodes (a graph node is about
// 100 bytes on the wire, an ONNX node with its stripped initializers a few
// hundred), and the floor of the request limit.
inline constexpr int64_t kMaxBytesPerNode = 2048;
inline constexpr int64_t kMinRequestBytes = 4 << 20;
// The largest request accepted: min(max_message_bytes,
// max(kMinRequestBytes, max_nodes * kMaxBytesPerNode)).
int MaxRequestBytes(int max_message_bytes, int max_nodes);

// Owns the grpc::Server and the service; the engine, job manager and
// telemetry are the caller's and must outlive it.
class PartitionServer {
 public:
  // Builds and starts the server. Errors: INVALID_ARGUMENT for unreadable
  // TLS files or bad options, UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<PartitionServer>> Start(
      const ServerOptions& options, Engine* engine, JobManager* jobs,
      Telemetry* telemetry);
  ~PartitionServer();

  // The bound port.
  int port() const { return port_; }

  // The drain: health goes NOT_SERVING, new work is refused (UNAVAILABLE),
  // queued jobs end, running jobs get half of `grace` and then end with
  // their best placement, which streams still deliver; after `grace` the
  // remaining calls are cancelled. Returns when the server has stopped.
  // Idempotent and thread-safe.
  void Shutdown(absl::Duration grace);

  // Blocks until Shutdown has completed.
  void Wait();

  // NOT_SERVING after Shutdown began.
  bool serving() const;

  // The service's load now.
  ServiceLoad load() const { return service_->load(); }

 private:
  PartitionServer() = default;

  // Sets the service's health (NOT_SERVING while saturated, so that
  // readiness probes send new work elsewhere; the overall "" status stays
  // SERVING, so liveness does not restart a busy server) and reports the
  // load, every load_period until Shutdown.
  void MonitorLoad(absl::Duration period, std::function<bool()> store_healthy);

  JobManager* jobs_ = nullptr;
  Telemetry* telemetry_ = nullptr;
  std::unique_ptr<PartitionerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::thread monitor_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_SERVER_H_
