// The gRPC service adapter: mcmpart.v1.Partitioner over the engine and the
// job manager. Each handler validates, calls the core, maps the status with
// ToGrpcStatus and replies; nothing here decides anything about placements.
//
// Built on gRPC's callback API with raw (ByteBuffer) methods, for three
// reasons found under hostile load:
// - no call holds a thread while it waits: streams are reactors served by
//   one pump thread (stream_hub.h), blocking work runs on a bounded pool
//   (request_pool.h), quick lookups run inline;
// - the service parses requests itself, so malformed bytes get
//   INVALID_ARGUMENT saying so (gRPC's own deserializer answered INTERNAL
//   with an empty message) and are counted;
// - a request's size and node count are known before it is parsed, so an
//   oversized graph costs one scan, not a parse (wire_scan.h).
#ifndef MCMPART_SERVER_SERVICE_H_
#define MCMPART_SERVER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/request_pool.h"
#include "server/stream_hub.h"

namespace mcmpart::server {

struct ServiceOptions {
  // How often a stream looks at its job while nothing else wakes it: bounds
  // the delay of an update.
  absl::Duration poll_interval = absl::Milliseconds(20);
  // CancelJob waits this long for the job to end so that its reply usually
  // shows the final state.
  absl::Duration cancel_wait = absl::Milliseconds(250);
  // Blocking request work (parsing, import, evaluate, repair).
  RequestPoolOptions pool;
  StreamLimits streams;
};

// The service's load, for health and metrics.
struct ServiceLoad {
  RequestPoolLoad pool;
  int streams = 0;
};

// Observes the service for metrics. Thread-safe and quick; called from gRPC
// and pool threads.
class ServiceEvents {
 public:
  virtual ~ServiceEvents() = default;
  // `type` is "unary" or "server_stream"; `code` a grpc::StatusCode value.
  virtual void RpcStarted(absl::string_view method, absl::string_view type) {}
  virtual void RpcHandled(absl::string_view method, absl::string_view type,
                          int code, absl::Duration latency) {}
  // A request whose bytes did not parse as its message.
  virtual void OnMalformedRequest(absl::string_view method) {}
  // A call refused for load before any work: "streams",
  // "streams_per_client", "pool" (queue or bytes) or "nodes" (a graph
  // over --max-nodes, found before the parse).
  virtual void OnRefused(absl::string_view reason) {}
  // The load, sampled periodically by the server (it also sets health).
  virtual void OnServiceLoad(const ServiceLoad& load, bool saturated) {}
};

using RawPartitionerService = v1::Partitioner::WithRawCallbackMethod_Partition<
    v1::Partitioner::WithRawCallbackMethod_SubmitJob<
        v1::Partitioner::WithRawCallbackMethod_WatchJob<
            v1::Partitioner::WithRawCallbackMethod_GetJob<
                v1::Partitioner::WithRawCallbackMethod_ListJobs<
                    v1::Partitioner::WithRawCallbackMethod_CancelJob<
                        v1::Partitioner::WithRawCallbackMethod_Evaluate<
                            v1::Partitioner::WithRawCallbackMethod_Repair<
                                v1::Partitioner::
                                    WithRawCallbackMethod_ListPolicies<
                                        v1::Partitioner::Service>>>>>>>>>;

// Thread-safe. Does not own `engine`, `jobs` or `events` (may be null);
// they must outlive the service. The service must outlive the gRPC server
// it is registered with (its streams and pool work end with the server).
class PartitionerService final : public RawPartitionerService {
 public:
  PartitionerService(const ServiceOptions& options, Engine* engine,
                     JobManager* jobs, ServiceEvents* events);
  ~PartitionerService() override;

  grpc::ServerWriteReactor<grpc::ByteBuffer>* Partition(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* SubmitJob(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* reply) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* WatchJob(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* reply) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* reply) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* reply) override;
  grpc::ServerUnaryReactor* Evaluate(grpc::CallbackServerContext* context,
                                     const grpc::ByteBuffer* request,
                                     grpc::ByteBuffer* reply) override;
  grpc::ServerUnaryReactor* Repair(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* reply) override;
  grpc::ServerUnaryReactor* ListPolicies(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* reply) override;

  ServiceLoad load() const;
  // True once after a call with a request of kTrimAfterBytes or more ended:
  // the
  // server then returns freed memory to the system (malloc_trim), which
  // glibc keeps otherwise (1.8 GB stayed after eight 44 MB requests).
  bool TakeTrimRequest();
  static constexpr int64_t kTrimAfterBytes = 8 << 20;
  // True when new work would be refused for load: the request pool's queue
  // or the job queue is full, or every stream slot is taken.
  bool saturated() const;

 private:
  class UnaryCall;
  enum class Where { kInline, kPool };
  template <typename Request, typename Body>
  grpc::ServerUnaryReactor* Unary(absl::string_view method,
                                  grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* reply, Where where,
                                  absl::Span<const int> spec_path, Body body);
  // With a spec path (wire_scan.h), INVALID_ARGUMENT for a graph over
  // --max-nodes, found without parsing.
  grpc::Status CheckNodes(const grpc::ByteBuffer& bytes,
                          absl::Span<const int> spec_path);
  // Parses `bytes` into `message`; INVALID_ARGUMENT (counted) when they are
  // not its encoding.
  grpc::Status Parse(absl::string_view method, const grpc::ByteBuffer& bytes,
                     google::protobuf::Message* message) const;
  // A stream for `method`, counted and under the stream limits; when
  // `*opened` is false it is already finished (refused) and must only be
  // returned to gRPC.
  JobStream* NewStream(absl::string_view method,
                       grpc::CallbackServerContext* context,
                       int64_t request_bytes, bool* opened);

  const ServiceOptions options_;
  Engine* const engine_;
  JobManager* const jobs_;
  ServiceEvents* const events_;
  std::atomic<bool> trim_pending_{false};
  StreamHub hub_;
  RequestPool pool_;
};

// A job snapshot as the API shows it.
v1::Job JobToProto(const JobSnapshot& job, bool include_placement);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_SERVICE_H_
