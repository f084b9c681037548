// Prometheus metrics and job log lines for the server.
//
// gRPC per-method figures follow the names of go-grpc-prometheus, which
// dashboards expect: grpc_server_started_total, grpc_server_handled_total
// {grpc_code=...}, grpc_server_handling_seconds (labels grpc_service,
// grpc_method, grpc_type). Domain figures are prefixed mcmpart_ (see
// docs/server.md for the list). Thread-safe.
#ifndef MCMPART_SERVER_TELEMETRY_H_
#define MCMPART_SERVER_TELEMETRY_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/job_recorder.h"
#include "server/service.h"

namespace mcmpart::server {

class Telemetry : public JobEvents,
                  public EngineEvents,
                  public ServiceEvents,
                  public RecorderEvents {
 public:
  // `log_jobs`: write a structured line at each job start and end.
  explicit Telemetry(bool log_jobs);

  // What /metrics serves; register it with a prometheus::Exposer.
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }
  // The text exposition format of every metric (for tests and debugging).
  std::string Render() const;

  // ServiceEvents.
  void RpcStarted(absl::string_view method, absl::string_view type) override;
  void RpcHandled(absl::string_view method, absl::string_view type, int code,
                  absl::Duration latency) override;
  void OnMalformedRequest(absl::string_view method) override;
  void OnRefused(absl::string_view reason) override;
  void OnServiceLoad(const ServiceLoad& load, bool saturated) override;

  // For strategies that fine-tune a policy per request.
  void RecordFineTune(absl::Duration time);

  // JobEvents.
  void OnRejected() override;
  void OnCacheHit() override;
  void OnJoined() override;
  void OnLoad(int queued, int running) override;
  void OnStarted(const JobSnapshot& job, absl::Duration waited) override;
  void OnFinished(const JobSnapshot& job, int64_t samples,
                  double elapsed_s) override;

  // RecorderEvents.
  void OnStoreHealth(bool healthy) override;
  void OnJobResumed() override;
  void OnLeaseExpired() override;
  void OnSharedCacheHit() override;
  void OnStoreStats(const store::StoreStats& stats) override;

  // EngineEvents.
  void OnRepair(absl::Duration latency, const absl::Status& status) override;
  void OnRepairRejected() override;

 private:
  const bool log_jobs_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& started_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& handling_seconds_;
  prometheus::Gauge& jobs_running_;
  prometheus::Gauge& jobs_queued_;
  prometheus::Counter& jobs_rejected_;
  prometheus::Family<prometheus::Counter>& jobs_finished_;
  prometheus::Histogram& queue_wait_seconds_;
  prometheus::Histogram& job_seconds_;
  prometheus::Counter& samples_;
  prometheus::Counter& cache_hits_;
  prometheus::Counter& repairs_;
  prometheus::Counter& repair_failures_;
  prometheus::Counter& repairs_rejected_;
  prometheus::Histogram& repair_seconds_;
  prometheus::Histogram& quality_;
  prometheus::Histogram& fine_tune_seconds_;
  prometheus::Family<prometheus::Counter>& malformed_;
  prometheus::Family<prometheus::Counter>& refused_;
  prometheus::Gauge& streams_open_;
  prometheus::Gauge& handlers_busy_;
  prometheus::Gauge& handlers_queued_;
  prometheus::Gauge& request_bytes_;
  prometheus::Gauge& saturated_;
  prometheus::Gauge& store_healthy_;
  prometheus::Counter& jobs_resumed_;
  prometheus::Counter& leases_expired_;
  prometheus::Counter& shared_cache_hits_;
  prometheus::Counter& joins_;
  prometheus::Family<prometheus::Gauge>& store_calls_;
  prometheus::Family<prometheus::Gauge>& store_errors_;
  prometheus::Family<prometheus::Gauge>& store_seconds_;
  prometheus::Family<prometheus::Gauge>& store_max_seconds_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_TELEMETRY_H_
