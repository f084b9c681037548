// The /metrics HTTP endpoint: Prometheus text format from a
// prometheus::Registry.
//
// Why not prometheus::Exposer (prometheus-cpp::pull): its embedded
// civetweb fails to start its threads ("Cannot create threads") in a
// process that also links LibTorch, which the `rl` strategy needs. A
// scrape endpoint is one GET, so a small loop over a socket does.
#ifndef MCMPART_SERVER_METRICS_HTTP_H_
#define MCMPART_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace mcmpart::server {

// Serves GET /metrics on its own thread, one connection at a time (scrapes
// are rare and small); any other path gets 404. Thread-safe to destroy.
class MetricsEndpoint {
 public:
  // Listens on host:port (port 0 picks one). Errors: INVALID_ARGUMENT for
  // an unresolvable host, UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& host, int port,
      std::shared_ptr<prometheus::Registry> registry);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

 private:
  MetricsEndpoint() = default;
  void Loop();
  void Serve(int fd);

  int listen_fd_ = -1;
  int port_ = 0;
  std::shared_ptr<prometheus::Registry> registry_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_METRICS_HTTP_H_
