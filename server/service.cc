#include "server/service.h"

#include <grpcpp/support/proto_buffer_reader.h>

#include <chrono>
#include <exception>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/status.h"
#include "server/wire_scan.h"
#include "solver/strategy.h"

namespace mcmpart::server {
namespace {

constexpr char kUnary[] = "unary";
constexpr char kServerStream[] = "server_stream";

// Field paths from each request message to its ProblemSpec (wire_scan.h).
constexpr int kProblemOfRequest[] = {1};  // Partition, Evaluate, Repair
constexpr int kProblemOfSubmit[] = {1, 1};

double UnixSeconds(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToDoubleSeconds(t - absl::UnixEpoch());
}

absl::Time Deadline(const grpc::CallbackServerContext& context) {
  const std::chrono::system_clock::time_point d = context.deadline();
  if (d == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  const absl::Time t = absl::FromChrono(d);
  // gRPC reports "no deadline" as a far-future time on some paths.
  return t > absl::Now() + absl::Hours(24 * 365) ? absl::InfiniteFuture() : t;
}

absl::Status Draining() {
  return absl::UnavailableError(
      "the server is shutting down and accepts no new work; retry on another "
      "replica");
}

// Keeps every exception inside the call: one would otherwise end the
// process and every job in it.
template <typename Body>
grpc::Status Guarded(Body&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    return grpc::Status(grpc::StatusCode::INTERNAL,
                        absl::StrCat("internal error: ", e.what()));
  } catch (...) {
    return grpc::Status(grpc::StatusCode::INTERNAL, "internal error");
  }
}

}  // namespace

// One unary call: counts it and finishes it once. The request and reply
// buffers stay valid until OnDone, which comes after Finish.
class PartitionerService::UnaryCall : public grpc::ServerUnaryReactor {
 public:
  // `trim` (may be null) is set when the call is done.
  UnaryCall(ServiceEvents* events, absl::string_view method,
            absl::Time deadline, std::atomic<bool>* trim)
      : trim_(trim),
        events_(events),
        method_(method),
        deadline_(deadline),
        start_(absl::Now()) {
    if (events_) events_->RpcStarted(method_, kUnary);
  }

  const StopToken* stop() const { return &stop_; }
  absl::Time deadline() const { return deadline_; }
  bool cancelled() const { return stop_.stop_requested(); }

  void Done(const grpc::Status& status) {
    if (events_) {
      events_->RpcHandled(method_, kUnary, status.error_code(),
                          absl::Now() - start_);
    }
    Finish(status);
  }

  // The client cancelled or its deadline passed: work that polls the stop
  // token (Repair) ends within its 100 ms.
  void OnCancel() override { stop_.RequestStop(); }
  void OnDone() override {
    if (trim_) *trim_ = true;
    delete this;
  }

 private:
  std::atomic<bool>* const trim_;
  ServiceEvents* const events_;
  const std::string method_;
  const absl::Time deadline_;
  const absl::Time start_;
  StopToken stop_;
};

v1::Job JobToProto(const JobSnapshot& job, bool include_placement) {
  v1::Job out;
  out.set_id(job.id);
  out.set_state(JobStateToProto(job.state));
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
                                       ServiceEvents* events)
    : options_(options),
      engine_(engine),
      jobs_(jobs),
      events_(events),
      hub_(jobs, options.poll_interval, options.streams),
      pool_(options.pool) {}

PartitionerService::~PartitionerService() = default;

ServiceLoad PartitionerService::load() const {
  return ServiceLoad{pool_.load(), hub_.open_streams()};
}

bool PartitionerService::saturated() const {
  const ServiceLoad now = load();
  return now.pool.queued >= pool_.options().max_queue ||
         now.streams >= hub_.limits().max_streams || jobs_->queue_full();
}

grpc::Status PartitionerService::CheckNodes(const grpc::ByteBuffer& bytes,
                                            absl::Span<const int> spec_path) {
  if (spec_path.empty()) return grpc::Status::OK;
  // ProtoBufferReader only reads the buffer; it wants a mutable pointer.
  grpc::ProtoBufferReader scan(const_cast<grpc::ByteBuffer*>(&bytes));
  const int64_t nodes = CountGraphNodes(&scan, spec_path);
  const int max_nodes = engine_->options().max_nodes;
  if (nodes <= max_nodes) return grpc::Status::OK;
  if (events_) events_->OnRefused("nodes");
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      absl::StrFormat("the graph has %d nodes; this server "
                                      "accepts at most %d (--max-nodes)",
                                      nodes, max_nodes));
}

grpc::Status PartitionerService::Parse(
    absl::string_view method, const grpc::ByteBuffer& bytes,
    google::protobuf::Message* message) const {
  grpc::ProtoBufferReader reader(const_cast<grpc::ByteBuffer*>(&bytes));
  if (!message->ParseFromZeroCopyStream(&reader)) {
    if (events_) events_->OnMalformedRequest(method);
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        absl::StrFormat("the request (%d bytes) could not be parsed as %s: "
                        "it is truncated, not protobuf, or has a string "
                        "field that is not UTF-8",
                        bytes.Length(), message->GetTypeName()));
  }
  return grpc::Status::OK;
}

bool PartitionerService::TakeTrimRequest() {
  return trim_pending_.exchange(false);
}

template <typename Request, typename Body>
grpc::ServerUnaryReactor* PartitionerService::Unary(
    absl::string_view method, grpc::CallbackServerContext* context,
    const grpc::ByteBuffer* request, grpc::ByteBuffer* reply, Where where,
    absl::Span<const int> spec_path, Body body) {
  auto* call = new UnaryCall(
      events_, method, Deadline(*context),
      request->Length() >= kTrimAfterBytes ? &trim_pending_ : nullptr);
  // The scan is one pass over bytes already received, without allocation:
  // cheap enough for gRPC's thread, and it must come before admission so
  // that an oversized graph is refused for what it is.
  if (grpc::Status s = CheckNodes(*request, spec_path); !s.ok()) {
    call->Done(s);
    return call;
  }
  auto run = [this, call, request, reply, method, body = std::move(body)]() {
    const grpc::Status status = Guarded([&]() -> grpc::Status {
      if (call->cancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client cancelled the call before it ran");
      }
      Request parsed;
      if (grpc::Status s = Parse(method, *request, &parsed); !s.ok()) {
        return s;
      }
      absl::StatusOr<std::unique_ptr<google::protobuf::Message>> out =
          body(parsed, *call);
      if (!out.ok()) return ToGrpcStatus(out.status());
      if (!SerializeTo(**out, reply)) {
        return grpc::Status(grpc::StatusCode::INTERNAL,
                            "the reply could not be serialized");
      }
      return grpc::Status::OK;
    });
    call->Done(status);
  };
  if (where == Where::kInline) {
    run();
    return call;
  }
  if (absl::Status s = pool_.Schedule(std::move(run), request->Length());
      !s.ok()) {
    if (events_) events_->OnRefused("pool");
    call->Done(ToGrpcStatus(s));
  }
  return call;
}

JobStream* PartitionerService::NewStream(absl::string_view method,
                                         grpc::CallbackServerContext* context,
                                         int64_t request_bytes, bool* opened) {
  if (events_) events_->RpcStarted(method, kServerStream);
  const std::string client = StreamHub::ClientOf(context->peer());
  const absl::Status open = hub_.Open(client);
  std::atomic<bool>* trim =
      request_bytes >= kTrimAfterBytes ? &trim_pending_ : nullptr;
  auto on_done = [events = events_, method = std::string(method), trim,
                  start = absl::Now()](const grpc::Status& s) {
    if (trim) *trim = true;
    if (events) {
      events->RpcHandled(method, kServerStream, s.error_code(),
                         absl::Now() - start);
    }
  };
  auto* stream =
      new JobStream(&hub_, open.ok() ? client : std::string(), on_done);
  if (!open.ok()) {
    if (events_) {
      events_->OnRefused(absl::StrContains(open.message(), "per client")
                             ? "streams_per_client"
                             : "streams");
    }
    stream->FinishEarly(ToGrpcStatus(open));
  }
  *opened = open.ok();
  return stream;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* PartitionerService::Partition(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  bool opened = false;
  JobStream* stream =
      NewStream("Partition", context, request->Length(), &opened);
  if (!opened) return stream;
  if (jobs_->draining()) {
    stream->FinishEarly(ToGrpcStatus(Draining()));
    return stream;
  }
  if (grpc::Status s = CheckNodes(*request, kProblemOfRequest); !s.ok()) {
    stream->FinishEarly(s);
    return stream;
  }
  const absl::Time deadline = Deadline(*context);
  auto run = [this, stream, request, deadline] {
    const grpc::Status status = Guarded([&]() -> grpc::Status {
      if (stream->cancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED,
                            "the client cancelled the call before it ran");
      }
      v1::PartitionRequest parsed;
      if (grpc::Status s = Parse("Partition", *request, &parsed); !s.ok()) {
        return s;
      }
      absl::StatusOr<JobSpec> spec = engine_->PrepareSearch(parsed);
      if (!spec.ok()) return ToGrpcStatus(spec.status());
      spec->retained = false;
      spec->deadline = deadline;
      absl::StatusOr<std::shared_ptr<Job>> job =
          jobs_->Submit(*std::move(spec));
      if (!job.ok()) return ToGrpcStatus(job.status());
      // A call that joined a submitted job's search only watches it:
      // going away must not cancel it. Its own job, or its follower of
      // another call's, it holds (JobManager::Release when it goes).
      const bool owns = !(*job)->spec().retained;
      stream->Attach(*std::move(job), owns, deadline);
      return grpc::Status::OK;
    });
    if (!status.ok()) stream->FinishEarly(status);
  };
  if (absl::Status s = pool_.Schedule(std::move(run), request->Length());
      !s.ok()) {
    if (events_) events_->OnRefused("pool");
    stream->FinishEarly(ToGrpcStatus(s));
  }
  return stream;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* PartitionerService::WatchJob(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  bool opened = false;
  JobStream* stream =
      NewStream("WatchJob", context, request->Length(), &opened);
  if (!opened) return stream;
  const grpc::Status status = Guarded([&]() -> grpc::Status {
    v1::WatchJobRequest parsed;
    if (grpc::Status s = Parse("WatchJob", *request, &parsed); !s.ok()) {
      return s;
    }
    absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Find(parsed.id());
    if (!job.ok()) return ToGrpcStatus(job.status());
    stream->Attach(*std::move(job), /*owns_job=*/false, Deadline(*context));
    return grpc::Status::OK;
  });
  if (!status.ok()) stream->FinishEarly(status);
  return stream;
}

using Reply = absl::StatusOr<std::unique_ptr<google::protobuf::Message>>;

grpc::ServerUnaryReactor* PartitionerService::SubmitJob(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  return Unary<v1::SubmitJobRequest>(
      "SubmitJob", context, request, reply, Where::kPool, kProblemOfSubmit,
      [this](const v1::SubmitJobRequest& r, UnaryCall&) -> Reply {
        if (jobs_->draining()) return Draining();
        absl::StatusOr<JobSpec> spec = engine_->PrepareSearch(r.request());
        if (!spec.ok()) return spec.status();
        spec->retained = true;
        absl::StatusOr<std::shared_ptr<Job>> job =
            jobs_->Submit(*std::move(spec));
        if (!job.ok()) return job.status();
        return std::make_unique<v1::Job>(
            JobToProto((*job)->Snapshot(), /*include_placement=*/true));
      });
}

grpc::ServerUnaryReactor* PartitionerService::GetJob(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  return Unary<v1::GetJobRequest>(
      "GetJob", context, request, reply, Where::kInline, {},
      [this](const v1::GetJobRequest& r, UnaryCall&) -> Reply {
        absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Find(r.id());
        if (!job.ok()) return job.status();
        return std::make_unique<v1::Job>(
            JobToProto((*job)->Snapshot(), /*include_placement=*/true));
      });
}

grpc::ServerUnaryReactor* PartitionerService::ListJobs(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  return Unary<v1::ListJobsRequest>(
      "ListJobs", context, request, reply, Where::kInline, {},
      [this](const v1::ListJobsRequest& r, UnaryCall&) -> Reply {
        if (r.limit() < 0) {
          return absl::InvalidArgumentError("limit must be >= 0 (0 = 100)");
        }
        const int limit = r.limit() == 0 ? 100 : r.limit();
        absl::flat_hash_set<int> states(r.states().begin(), r.states().end());
        auto out = std::make_unique<v1::ListJobsResponse>();
        for (const JobSnapshot& job : jobs_->List()) {
          if (out->jobs_size() >= limit) break;
          if (!states.empty() && !states.contains(JobStateToProto(job.state))) {
            continue;
          }
          *out->add_jobs() = JobToProto(job, !r.omit_placements());
        }
        return out;
      });
}

grpc::ServerUnaryReactor* PartitionerService::CancelJob(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  // On the pool: it waits for the job to end.
  return Unary<v1::CancelJobRequest>(
      "CancelJob", context, request, reply, Where::kPool, {},
      [this](const v1::CancelJobRequest& r, UnaryCall&) -> Reply {
        absl::StatusOr<std::shared_ptr<Job>> job = jobs_->Find(r.id());
        if (!job.ok()) return job.status();
        jobs_->Cancel(**job, StopCause::kCancelled);
        // The work stops within 100 ms; waiting that long lets the reply
        // carry the final state in the usual case without holding the
        // caller long.
        const absl::Time until = absl::Now() + options_.cancel_wait;
        JobSnapshot snap = (*job)->Snapshot();
        while (!snap.done() && absl::Now() < until) {
          snap = (*job)->WaitForChange(snap.version, until - absl::Now());
        }
        return std::make_unique<v1::Job>(
            JobToProto(snap, /*include_placement=*/true));
      });
}

grpc::ServerUnaryReactor* PartitionerService::Evaluate(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  return Unary<v1::EvaluateRequest>(
      "Evaluate", context, request, reply, Where::kPool, kProblemOfRequest,
      [this](const v1::EvaluateRequest& r, UnaryCall&) -> Reply {
        if (jobs_->draining()) return Draining();
        absl::StatusOr<v1::Evaluation> e = engine_->Evaluate(r);
        if (!e.ok()) return e.status();
        return std::make_unique<v1::Evaluation>(*std::move(e));
      });
}

grpc::ServerUnaryReactor* PartitionerService::Repair(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  return Unary<v1::RepairRequest>(
      "Repair", context, request, reply, Where::kPool, kProblemOfRequest,
      [this](const v1::RepairRequest& r, UnaryCall& call) -> Reply {
        if (jobs_->draining()) return Draining();
        absl::StatusOr<v1::RepairReport> report =
            engine_->Repair(r, call.deadline(), call.stop());
        // A cancelled call's reply (the best so far, or the solver's
        // CANCELLED) reaches nobody; the status says why the repair ended.
        if (call.cancelled()) {
          if (absl::Now() >= call.deadline()) {
            return absl::DeadlineExceededError(
                "the call's deadline passed; the repair was stopped");
          }
          return absl::CancelledError(
              "the client cancelled the call or went away; the repair was "
              "stopped");
        }
        if (!report.ok()) return report.status();
        return std::make_unique<v1::RepairReport>(*std::move(report));
      });
}

grpc::ServerUnaryReactor* PartitionerService::ListPolicies(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* reply) {
  return Unary<v1::ListPoliciesRequest>(
      "ListPolicies", context, request, reply, Where::kInline, {},
      [this](const v1::ListPoliciesRequest&, UnaryCall&) -> Reply {
        return std::make_unique<v1::ListPoliciesResponse>(
            engine_->ListPolicies());
      });
}

}  // namespace mcmpart::server
