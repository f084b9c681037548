// The /metrics HTTP endpoint: Prometheus text format from a
// prometheus::Registry.
//
// Why not prometheus::Exposer (prometheus-cpp::pull): its embedded
// civetweb fails to start its threads ("Cannot create threads") in a
// process that also links LibTorch, which the `rl` strategy needs. A
// scrape endpoint is one GET, so a small event loop over sockets does.
#ifndef MCMPART_SERVER_METRICS_HTTP_H_
#define MCMPART_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "prometheus/registry.h"

namespace mcmpart::server {

struct MetricsOptions {
  // Connections served at once. One more is answered "503 Service
  // Unavailable" (a best-effort write that never waits) and closed at once.
  int max_connections = 16;
  // Whole life of one connection, from accept to the last byte of the
  // answer: reading the request and writing the answer together, whatever
  // the client's pace. A connection still open then is closed (one still
  // sending its request gets a best-effort "408 Request Timeout" first).
  absl::Duration deadline = absl::Seconds(2);
};

// Serves GET /metrics (200, the registry's text exposition), any other GET
// path (404) and any other method (405), one answer per connection
// ("Connection: close"). Requests are read up to their blank line or 16 KiB,
// whichever comes first. Every connection is served concurrently by one
// thread polling non-blocking sockets, so a slow or silent client delays
// no other: at most options.max_connections are held, each for at most
// options.deadline. Thread-safe to destroy (closes every connection).
class MetricsEndpoint {
 public:
  // Listens on host:port (port 0 picks one). Errors: INVALID_ARGUMENT for
  // an unresolvable host or options out of range (max_connections < 1,
  // deadline not positive and finite), UNAVAILABLE when the port cannot be
  // bound.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& host, int port,
      std::shared_ptr<prometheus::Registry> registry,
      const MetricsOptions& options = MetricsOptions());
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  int port() const { return port_; }

  // Connections held now; those refused because max_connections were held,
  // and those closed at their deadline, since Start (for tests and logs).
  int open_connections() const { return open_.load(); }
  int64_t refused() const { return refused_.load(); }
  int64_t timed_out() const { return timed_out_.load(); }

 private:
  MetricsEndpoint() = default;
  void Loop();
  // The whole answer (status line, headers, body) to `request`.
  std::string Answer(const std::string& request) const;

  int listen_fd_ = -1;
  int port_ = 0;
  MetricsOptions options_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::atomic<bool> stop_{false};
  std::atomic<int> open_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<int64_t> timed_out_{0};
  std::thread thread_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_METRICS_HTTP_H_
