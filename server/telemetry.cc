#include "server/telemetry.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/support/status_code_enum.h"
#include "prometheus/text_serializer.h"
#include "server/log.h"

namespace mcmpart::server {
namespace {

constexpr char kService[] = "mcmpart.v1.Partitioner";

// Seconds from 1 ms to 5 min: RPCs range from an Evaluate (ms) to a long
// search (minutes).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* b = new prometheus::Histogram::BucketBoundaries{
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
      1,     2.5,    5,     10,   30,    60,   120, 300};
  return *b;
}

const char* CodeName(int code) {
  static const char* const kNames[] = {"OK",
                                       "Canceled",
                                       "Unknown",
                                       "InvalidArgument",
                                       "DeadlineExceeded",
                                       "NotFound",
                                       "AlreadyExists",
                                       "PermissionDenied",
                                       "ResourceExhausted",
                                       "FailedPrecondition",
                                       "Aborted",
                                       "OutOfRange",
                                       "Unimplemented",
                                       "Internal",
                                       "Unavailable",
                                       "DataLoss",
                                       "Unauthenticated"};
  return code >= 0 && code <= 16 ? kNames[code] : "Unknown";
}

}  // namespace

// Long, and a table: one registration per metric family, in the order
// docs/server.md lists them; splitting it would only scatter the list.
Telemetry::Telemetry(bool log_jobs)
    : log_jobs_(log_jobs),
      registry_(std::make_shared<prometheus::Registry>()),
      started_(prometheus::BuildCounter()
                   .Name("grpc_server_started_total")
                   .Help("RPCs started on the server.")
                   .Register(*registry_)),
      handled_(prometheus::BuildCounter()
                   .Name("grpc_server_handled_total")
                   .Help("RPCs completed on the server, by status code.")
                   .Register(*registry_)),
      handling_seconds_(
          prometheus::BuildHistogram()
              .Name("grpc_server_handling_seconds")
              .Help("Time from the start of an RPC to its status, seconds.")
              .Register(*registry_)),
      jobs_running_(prometheus::BuildGauge()
                        .Name("mcmpart_jobs_running")
                        .Help("Searches running on a worker.")
                        .Register(*registry_)
                        .Add({})),
      jobs_queued_(prometheus::BuildGauge()
                       .Name("mcmpart_jobs_queued")
                       .Help("Searches waiting for a worker.")
                       .Register(*registry_)
                       .Add({})),
      jobs_rejected_(prometheus::BuildCounter()
                         .Name("mcmpart_jobs_rejected_total")
                         .Help("Searches refused because the queue was full "
                               "(RESOURCE_EXHAUSTED).")
                         .Register(*registry_)
                         .Add({})),
      jobs_finished_(prometheus::BuildCounter()
                         .Name("mcmpart_jobs_finished_total")
                         .Help("Searches ended, by state and end reason.")
                         .Register(*registry_)),
      queue_wait_seconds_(prometheus::BuildHistogram()
                              .Name("mcmpart_queue_wait_seconds")
                              .Help("Time a search waited for a worker.")
                              .Register(*registry_)
                              .Add({}, LatencyBuckets())),
      job_seconds_(prometheus::BuildHistogram()
                       .Name("mcmpart_job_seconds")
                       .Help("Time a search ran on its worker.")
                       .Register(*registry_)
                       .Add({}, LatencyBuckets())),
      samples_(prometheus::BuildCounter()
                   .Name("mcmpart_samples_total")
                   .Help("Candidate placements tried by searches "
                         "(rate() gives samples per second).")
                   .Register(*registry_)
                   .Add({})),
      cache_hits_(prometheus::BuildCounter()
                      .Name("mcmpart_cache_hits_total")
                      .Help("Searches answered at once from the result "
                            "cache.")
                      .Register(*registry_)
                      .Add({})),
      repairs_(prometheus::BuildCounter()
                   .Name("mcmpart_repairs_total")
                   .Help("Repair calls (rate() gives repairs per second).")
                   .Register(*registry_)
                   .Add({})),
      repair_failures_(prometheus::BuildCounter()
                           .Name("mcmpart_repair_failures_total")
                           .Help("Repairs that found no valid placement.")
                           .Register(*registry_)
                           .Add({})),
      repairs_rejected_(prometheus::BuildCounter()
                            .Name("mcmpart_repairs_rejected_total")
                            .Help("Repair calls refused because --max-repairs "
                                  "were running (RESOURCE_EXHAUSTED).")
                            .Register(*registry_)
                            .Add({})),
      repair_seconds_(prometheus::BuildHistogram()
                          .Name("mcmpart_repair_seconds")
                          .Help("Repair latency.")
                          .Register(*registry_)
                          .Add({}, LatencyBuckets())),
      quality_(prometheus::BuildHistogram()
                   .Name("mcmpart_placement_quality")
                   .Help("Quality (throughput / upper bound) of the best "
                         "placement each search returned.")
                   .Register(*registry_)
                   .Add({},
                        prometheus::Histogram::BucketBoundaries{
                            0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9,
                            0.95, 0.98, 1.0})),
      fine_tune_seconds_(prometheus::BuildHistogram()
                             .Name("mcmpart_fine_tune_seconds")
                             .Help("Time spent fine-tuning a policy copy per "
                                   "request.")
                             .Register(*registry_)
                             .Add({}, LatencyBuckets())),
      malformed_(prometheus::BuildCounter()
                     .Name("mcmpart_requests_malformed_total")
                     .Help("Requests whose bytes did not parse as their "
                           "message (INVALID_ARGUMENT), by method.")
                     .Register(*registry_)),
      refused_(prometheus::BuildCounter()
                   .Name("mcmpart_requests_refused_total")
                   .Help("Calls refused for load before any work, by "
                         "reason: streams, streams_per_client, pool, nodes.")
                   .Register(*registry_)),
      streams_open_(prometheus::BuildGauge()
                        .Name("mcmpart_streams_open")
                        .Help("Partition and WatchJob streams open.")
                        .Register(*registry_)
                        .Add({})),
      handlers_busy_(prometheus::BuildGauge()
                         .Name("mcmpart_handlers_busy")
                         .Help("Request handler threads running work.")
                         .Register(*registry_)
                         .Add({})),
      handlers_queued_(prometheus::BuildGauge()
                           .Name("mcmpart_handlers_queued")
                           .Help("Requests waiting for a handler thread.")
                           .Register(*registry_)
                           .Add({})),
      request_bytes_(prometheus::BuildGauge()
                         .Name("mcmpart_request_bytes_in_flight")
                         .Help("Bytes of requests admitted and not yet "
                               "handled.")
                         .Register(*registry_)
                         .Add({})),
      saturated_(prometheus::BuildGauge()
                     .Name("mcmpart_saturated")
                     .Help("1 while new work would be refused for load "
                           "(health then says NOT_SERVING for the "
                           "service).")
                     .Register(*registry_)
                     .Add({})),
      store_healthy_(prometheus::BuildGauge()
                         .Name("mcmpart_store_healthy")
                         .Help("1 while the state store answers (or none is "
                               "used); 0 while it is unreachable and the "
                               "server serves from memory.")
                         .Register(*registry_)
                         .Add({})),
      jobs_resumed_(prometheus::BuildCounter()
                        .Name("mcmpart_jobs_resumed_total")
                        .Help("Jobs of a dead or drained replica resumed "
                              "here.")
                        .Register(*registry_)
                        .Add({})),
      leases_expired_(prometheus::BuildCounter()
                          .Name("mcmpart_leases_expired_total")
                          .Help("Unfinished jobs found with their lease "
                                "lapsed and claimed here.")
                          .Register(*registry_)
                          .Add({})),
      shared_cache_hits_(prometheus::BuildCounter()
                             .Name("mcmpart_shared_cache_hits_total")
                             .Help("Searches answered from the store's "
                                   "result cache, shared by the replicas "
                                   "(per replica: this server's).")
                             .Register(*registry_)
                             .Add({})),
      joins_(prometheus::BuildCounter()
                 .Name("mcmpart_inflight_joins_total")
                 .Help("Requests (Partition calls and submitted jobs) "
                       "that joined the search another request was already "
                       "running for their problem, here or on another "
                       "replica.")
                 .Register(*registry_)
                 .Add({})),
      store_calls_(prometheus::BuildGauge()
                       .Name("mcmpart_store_calls")
                       .Help("State store calls since start, by operation.")
                       .Register(*registry_)),
      store_errors_(prometheus::BuildGauge()
                        .Name("mcmpart_store_call_errors")
                        .Help("State store calls that failed, by operation.")
                        .Register(*registry_)),
      store_seconds_(prometheus::BuildGauge()
                         .Name("mcmpart_store_call_seconds_sum")
                         .Help("Time spent in state store calls, by "
                               "operation (divide by mcmpart_store_calls "
                               "for the mean).")
                         .Register(*registry_)),
      store_max_seconds_(prometheus::BuildGauge()
                             .Name("mcmpart_store_call_max_seconds")
                             .Help("Slowest state store call, by operation.")
                             .Register(*registry_)) {
  store_healthy_.Set(1);
}

std::string Telemetry::Render() const {
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

void Telemetry::RpcStarted(absl::string_view method, absl::string_view type) {
  started_
      .Add({{"grpc_service", kService},
            {"grpc_method", std::string(method)},
            {"grpc_type", std::string(type)}})
      .Increment();
}

void Telemetry::RpcHandled(absl::string_view method, absl::string_view type,
                           int code, absl::Duration latency) {
  const prometheus::Labels labels{{"grpc_service", kService},
                                  {"grpc_method", std::string(method)},
                                  {"grpc_type", std::string(type)}};
  prometheus::Labels with_code = labels;
  with_code["grpc_code"] = CodeName(code);
  handled_.Add(with_code).Increment();
  handling_seconds_.Add(labels, LatencyBuckets())
      .Observe(absl::ToDoubleSeconds(latency));
}

void Telemetry::OnMalformedRequest(absl::string_view method) {
  malformed_.Add({{"grpc_method", std::string(method)}}).Increment();
}

void Telemetry::OnRefused(absl::string_view reason) {
  refused_.Add({{"reason", std::string(reason)}}).Increment();
}

void Telemetry::OnServiceLoad(const ServiceLoad& load, bool saturated) {
  streams_open_.Set(load.streams);
  handlers_busy_.Set(load.pool.busy);
  handlers_queued_.Set(load.pool.queued);
  request_bytes_.Set(static_cast<double>(load.pool.bytes));
  saturated_.Set(saturated ? 1 : 0);
}

void Telemetry::OnStoreHealth(bool healthy) {
  store_healthy_.Set(healthy ? 1 : 0);
}

void Telemetry::OnJobResumed() { jobs_resumed_.Increment(); }

void Telemetry::OnLeaseExpired() { leases_expired_.Increment(); }

void Telemetry::OnSharedCacheHit() { shared_cache_hits_.Increment(); }

void Telemetry::OnJoined() { joins_.Increment(); }

void Telemetry::OnStoreStats(const store::StoreStats& stats) {
  store_healthy_.Set(stats.healthy ? 1 : 0);
  for (const auto& [op, s] : stats.ops) {
    const prometheus::Labels labels{{"op", op}};
    store_calls_.Add(labels).Set(static_cast<double>(s.calls));
    store_errors_.Add(labels).Set(static_cast<double>(s.errors));
    store_seconds_.Add(labels).Set(s.latency_sum_s);
    store_max_seconds_.Add(labels).Set(s.latency_max_s);
  }
}

void Telemetry::RecordFineTune(absl::Duration time) {
  fine_tune_seconds_.Observe(absl::ToDoubleSeconds(time));
}

void Telemetry::OnRejected() { jobs_rejected_.Increment(); }

void Telemetry::OnCacheHit() { cache_hits_.Increment(); }

void Telemetry::OnLoad(int queued, int running) {
  jobs_queued_.Set(queued);
  jobs_running_.Set(running);
}

void Telemetry::OnStarted(const JobSnapshot& job, absl::Duration waited) {
  queue_wait_seconds_.Observe(absl::ToDoubleSeconds(waited));
  if (!log_jobs_) return;
  LogLine("info", "job_start",
          {{"job", job.id},
           {"strategy", job.strategy},
           {"graph", job.graph_name},
           {"nodes", job.num_nodes},
           {"hardware", job.hardware_name},
           {"queued_s", absl::ToDoubleSeconds(waited)}});
}

void Telemetry::OnFinished(const JobSnapshot& job, int64_t samples,
                           double elapsed_s) {
  jobs_finished_
      .Add({{"state", std::string(JobStateName(job.state))},
            {"end_reason", job.end_reason}})
      .Increment();
  if (samples > 0) samples_.Increment(static_cast<double>(samples));
  if (elapsed_s > 0) job_seconds_.Observe(elapsed_s);
  const double quality = job.best ? job.best->evaluation().quality() : 0;
  const double throughput =
      job.best ? job.best->evaluation().throughput_per_s() : 0;
  if (job.best) quality_.Observe(quality);
  if (!log_jobs_) return;
  LogLine(job.status.ok() ? "info" : "warning", "job_end",
          {{"job", job.id},
           {"strategy", job.strategy},
           {"graph", job.graph_name},
           {"nodes", job.num_nodes},
           {"hardware", job.hardware_name},
           {"state", std::string(JobStateName(job.state))},
           {"end_reason", job.end_reason},
           {"from_cache", job.best != nullptr && job.best->from_cache()},
           {"samples", samples},
           {"elapsed_s", elapsed_s},
           {"throughput_per_s", throughput},
           {"quality", quality},
           {"status", std::string(absl::StatusCodeToString(job.status.code()))},
           {"message", std::string(job.status.message())}});
}

void Telemetry::OnRepair(absl::Duration latency, const absl::Status& status) {
  repairs_.Increment();
  repair_seconds_.Observe(absl::ToDoubleSeconds(latency));
  if (!status.ok()) repair_failures_.Increment();
}

void Telemetry::OnRepairRejected() { repairs_rejected_.Increment(); }

}  // namespace mcmpart::server
