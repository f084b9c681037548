#include "server/service.h"

#include <chrono>
#include <exception>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "server/status.h"
#include "solver/strategy.h"

namespace mcmpart::server {
namespace {

constexpr char kUnary[] = "unary";
constexpr char kServerStream[] = "server_stream";

double UnixSeconds(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

absl::Time Deadline(const grpc::ServerContext& context) {
  const std::chrono::system_clock::time_point d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  const absl::Time t = absl::FromChrono(d);
  // gRPC reports "no deadline" as a far-future time on some paths.
  return t > absl::Now() + absl::Hours(24 * 365) ? absl::InfiniteFuture() : t;
}

v1::Job::State StateToProto(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return v1::Job::QUEUED;
    case JobState::kRunning:
      return v1::Job::RUNNING;
    case JobState::kSucceeded:
      return v1::Job::SUCCEEDED;
    case JobState::kFailed:
      return v1::Job::FAILED;
    case JobState::kCancelled:
      return v1::Job::CANCELLED;
  }
  return v1::Job::STATE_UNSPECIFIED;
}

// Counts the call and keeps every exception inside the handler: one would
// otherwise end the process and every job in it.
template <typename Body>
grpc::Status Handle(Telemetry* telemetry, absl::string_view method,
                    absl::string_view type, Body&& body) {
  const absl::Time start = absl::Now();
  if (telemetry) telemetry->RpcStarted(method, type);
  grpc::Status status;
  try {
    status = body();
  } catch (const std::exception& e) {
    status = grpc::Status(grpc::StatusCode::INTERNAL,
                          absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    status = grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
  if (telemetry) {
    telemetry->RpcHandled(method, type, status.error_code(),
                          absl::Now() - start);
  }
  return status;
}

// Stops a unary handler's work when its client goes away. gRPC's synchronous
// API tells a handler nothing while it computes on its own thread, so a
// cancelled or disconnected call would otherwise run to its time limit. A
// small thread checks the call every `interval` and, once it is cancelled,
// requests stop() (which the work polls). Call Finish when the work returns.
class CancelWatcher {
 public:
  // `work` names the work in the status ("repair").
  CancelWatcher(grpc::ServerContext* context, absl::string_view work,
                absl::Duration interval)
      : work_(work), thread_([this, context, interval] {
          while (!done_.WaitForNotificationWithTimeout(interval)) {
            if (context->IsCancelled()) {
              deadline_passed_ = absl::Now() >= Deadline(*context);
              stop_.RequestStop();
              return;
            }
          }
        }) {}
  ~CancelWatcher() { Finish(); }
  CancelWatcher(const CancelWatcher&) = delete;
  CancelWatcher& operator=(const CancelWatcher&) = delete;

  const StopToken* stop() const { return &stop_; }

  // Ends the watch. OK unless the call was cancelled and the work stopped:
  // then CANCELLED, or DEADLINE_EXCEEDED when the call's deadline ended it.
  grpc::Status Finish() {
    if (thread_.joinable()) {
      done_.Notify();
      thread_.join();
    }
    if (!stop_.stop_requested()) return grpc::Status::OK;
    if (deadline_passed_) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED,
                          absl::StrCat("the call's deadline passed; the ",
                                       work_, " was stopped"));
    }
    return grpc::Status(
        grpc::StatusCode::CANCELLED,
        absl::StrCat("the client cancelled the call or went away; the ", work_,
                     " was stopped"));
  }

 private:
  const std::string work_;
  absl::Notification done_;
  StopToken stop_;
  bool deadline_passed_ = false;  // read only after the join
  std::thread thread_;            // last: starts once the rest exists
};

grpc::Status Draining() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                      "the server is shutting down and accepts no new work; "
                      "retry on another replica");
}

}  // namespace

v1::Job JobToProto(const JobSnapshot& job, bool include_placement) {
  v1::Job out;
  out.set_id(job.id);
  out.set_state(StateToProto(job.state));
  out.set_strategy(job.strategy);
  out.set_graph_name(job.graph_name);
  out.set_hardware_name(job.hardware_name);
  out.set_num_nodes(job.num_nodes);
  out.set_create_time(UnixSeconds(job.create_time));
  out.set_start_time(UnixSeconds(job.start_time));
  out.set_end_time(UnixSeconds(job.end_time));
  const std::shared_ptr<const v1::PartitionUpdate>& best =
      job.done() ? job.final_update : job.best;
  if (best) {
    *out.mutable_best() = *best;
    if (!include_placement) out.mutable_best()->clear_placement();
  }
  if (!job.status.ok()) {
    out.set_error_code(static_cast<int>(job.status.code()));
    out.set_error_message(std::string(job.status.message()));
  }
  out.set_end_reason(job.end_reason);
  return out;
}

PartitionerService::PartitionerService(const ServiceOptions& options,
                                       Engine* engine, JobManager* jobs,
                                       Telemetry* telemetry)
    : options_(options), engine_(engine), jobs_(jobs), telemetry_(telemetry) {}

grpc::Status PartitionerService::StreamJob(
    grpc::ServerContext* context, Job& job,
    grpc::ServerWriter<v1::PartitionUpdate>* writer, bool owns_job) {
  uint64_t seen = 0;
  uint64_t sent_best = 0;
  while (true) {
    const JobSnapshot snap = job.WaitForChange(seen, options_.poll_interval);
    seen = snap.version;
    if (context->IsCancelled()) {
      // The client is gone (cancel, deadline or disconnect). A plain call's
      // work is worth nothing now; a job's lives on for WatchJob.
      if (owns_job) {
        jobs_->Cancel(job, absl::Now() >= Deadline(*context)
                               ? StopCause::kDeadline
                               : StopCause::kCancelled);
      }
      return grpc::Status(grpc::StatusCode::CANCELLED,
                          "the client cancelled the call or its deadline "
                          "passed");
    }
    if (snap.done()) {
      // A failed job without a placement has nothing to send but its status.
      if (snap.status.ok() || snap.best) writer->Write(*snap.final_update);
      return ToGrpcStatus(snap.status);
    }
    if (snap.best && snap.best_version > sent_best) {
      sent_best = snap.best_version;
      if (!writer->Write(*snap.best)) {
        if (owns_job) jobs_->Cancel(job, StopCause::kCancelled);
        return grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client went away");
      }
    }
  }
}

grpc::Status PartitionerService::Partition(
    grpc::ServerContext* context, const v1::PartitionRequest* request,
    grpc::ServerWriter<v1::PartitionUpdate>* writer) {
  return Handle(telemetry_, "Partition", kServerStream, [&] {
    if (jobs_->draining()) return Draining();
    absl::StatusOr<JobSpec> spec = engine_->PrepareSearch(*request);
    if (!spec.ok()) return ToGrpcStatus(spec.status());
    spec->retained = false;
    spec->deadline = Deadline(*context);
    absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Submit(*std::move(spec));
    if (!job.ok()) return ToGrpcStatus(job.status());
    return StreamJob(context, **job, writer, /*owns_job=*/true);
  });
}

grpc::Status PartitionerService::SubmitJob(grpc::ServerContext* context,
                                           const v1::SubmitJobRequest* request,
                                           v1::Job* reply) {
  return Handle(telemetry_, "SubmitJob", kUnary, [&] {
    if (jobs_->draining()) return Draining();
    absl::StatusOr<JobSpec> spec = engine_->PrepareSearch(request->request());
    if (!spec.ok()) return ToGrpcStatus(spec.status());
    spec->retained = true;
    absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Submit(*std::move(spec));
    if (!job.ok()) return ToGrpcStatus(job.status());
    *reply = JobToProto((*job)->Snapshot(), /*include_placement=*/true);
    return grpc::Status::OK;
  });
}

grpc::Status PartitionerService::WatchJob(
    grpc::ServerContext* context, const v1::WatchJobRequest* request,
    grpc::ServerWriter<v1::PartitionUpdate>* writer) {
  return Handle(telemetry_, "WatchJob", kServerStream, [&] {
    absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Find(request->id());
    if (!job.ok()) return ToGrpcStatus(job.status());
    return StreamJob(context, **job, writer, /*owns_job=*/false);
  });
}

grpc::Status PartitionerService::GetJob(grpc::ServerContext* context,
                                        const v1::GetJobRequest* request,
                                        v1::Job* reply) {
  return Handle(telemetry_, "GetJob", kUnary, [&] {
    absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Find(request->id());
    if (!job.ok()) return ToGrpcStatus(job.status());
    *reply = JobToProto((*job)->Snapshot(), /*include_placement=*/true);
    return grpc::Status::OK;
  });
}

grpc::Status PartitionerService::ListJobs(grpc::ServerContext* context,
                                          const v1::ListJobsRequest* request,
                                          v1::ListJobsResponse* reply) {
  return Handle(telemetry_, "ListJobs", kUnary, [&] {
    if (request->limit() < 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "limit must be >= 0 (0 = 100)");
    }
    const int limit = request->limit() == 0 ? 100 : request->limit();
    absl::flat_hash_set<int> states(request->states().begin(),
                                    request->states().end());
    for (const JobSnapshot& job : jobs_->List()) {
      if (reply->jobs_size() >= limit) break;
      if (!states.empty() && !states.contains(StateToProto(job.state))) {
        continue;
      }
      *reply->add_jobs() = JobToProto(job, !request->omit_placements());
    }
    return grpc::Status::OK;
  });
}

grpc::Status PartitionerService::CancelJob(grpc::ServerContext* context,
                                           const v1::CancelJobRequest* request,
                                           v1::Job* reply) {
  return Handle(telemetry_, "CancelJob", kUnary, [&] {
    absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Find(request->id());
    if (!job.ok()) return ToGrpcStatus(job.status());
    jobs_->Cancel(**job, StopCause::kCancelled);
    // The work stops within 100 ms; waiting that long lets the reply carry
    // the final state in the usual case without holding the caller long.
    const absl::Time until = absl::Now() + options_.cancel_wait;
    JobSnapshot snap = (*job)->Snapshot();
    while (!snap.done() && absl::Now() < until) {
      snap = (*job)->WaitForChange(snap.version, until - absl::Now());
    }
    *reply = JobToProto(snap, /*include_placement=*/true);
    return grpc::Status::OK;
  });
}

grpc::Status PartitionerService::Evaluate(grpc::ServerContext* context,
                                          const v1::EvaluateRequest* request,
                                          v1::Evaluation* reply) {
  return Handle(telemetry_, "Evaluate", kUnary, [&] {
    if (jobs_->draining()) return Draining();
    absl::StatusOr<v1::Evaluation> e = engine_->Evaluate(*request);
    if (!e.ok()) return ToGrpcStatus(e.status());
    *reply = *std::move(e);
    return grpc::Status::OK;
  });
}

grpc::Status PartitionerService::Repair(grpc::ServerContext* context,
                                        const v1::RepairRequest* request,
                                        v1::RepairReport* reply) {
  return Handle(telemetry_, "Repair", kUnary, [&] {
    if (jobs_->draining()) return Draining();
    CancelWatcher watcher(context, "repair", options_.poll_interval);
    absl::StatusOr<v1::RepairReport> r =
        engine_->Repair(*request, Deadline(*context), watcher.stop());
    // A cancelled call's reply (the best so far, or the solver's CANCELLED)
    // reaches nobody; the status says why the repair ended.
    if (grpc::Status s = watcher.Finish(); !s.ok()) return s;
    if (!r.ok()) return ToGrpcStatus(r.status());
    *reply = *std::move(r);
    return grpc::Status::OK;
  });
}

grpc::Status PartitionerService::ListPolicies(
    grpc::ServerContext* context, const v1::ListPoliciesRequest* request,
    v1::ListPoliciesResponse* reply) {
  return Handle(telemetry_, "ListPolicies", kUnary, [&] {
    *reply = engine_->ListPolicies();
    return grpc::Status::OK;
  });
}

}  // namespace mcmpart::server
