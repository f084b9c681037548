// The gRPC service adapter: mcmpart.v1.Partitioner over the engine and the
// job manager. Each handler validates, calls the core, maps the status with
// ToGrpcStatus and replies; nothing here decides anything about placements.
#ifndef MCMPART_SERVER_SERVICE_H_
#define MCMPART_SERVER_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/telemetry.h"

namespace mcmpart::server {

struct ServiceOptions {
  // How often a streaming handler (while no update arrives) and a Repair
  // call (while it repairs) check whether the client went away or the
  // deadline passed. Bounds the time from a cancel to the stop request (the
  // work then stops within 100 ms).
  absl::Duration poll_interval = absl::Milliseconds(20);
  // CancelJob waits this long for the job to end so that its reply usually
  // shows the final state.
  absl::Duration cancel_wait = absl::Milliseconds(250);
};

// Thread-safe (gRPC calls handlers from many threads). Does not own its
// dependencies; they must outlive the service. `telemetry` may be null.
class PartitionerService final : public v1::Partitioner::Service {
 public:
  PartitionerService(const ServiceOptions& options, Engine* engine,
                     JobManager* jobs, Telemetry* telemetry);

  grpc::Status Partition(
      grpc::ServerContext* context, const v1::PartitionRequest* request,
      grpc::ServerWriter<v1::PartitionUpdate>* writer) override;
  grpc::Status SubmitJob(grpc::ServerContext* context,
                         const v1::SubmitJobRequest* request,
                         v1::Job* reply) override;
  grpc::Status WatchJob(
      grpc::ServerContext* context, const v1::WatchJobRequest* request,
      grpc::ServerWriter<v1::PartitionUpdate>* writer) override;
  grpc::Status GetJob(grpc::ServerContext* context,
                      const v1::GetJobRequest* request,
                      v1::Job* reply) override;
  grpc::Status ListJobs(grpc::ServerContext* context,
                        const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* reply) override;
  grpc::Status CancelJob(grpc::ServerContext* context,
                         const v1::CancelJobRequest* request,
                         v1::Job* reply) override;
  grpc::Status Evaluate(grpc::ServerContext* context,
                        const v1::EvaluateRequest* request,
                        v1::Evaluation* reply) override;
  grpc::Status Repair(grpc::ServerContext* context,
                      const v1::RepairRequest* request,
                      v1::RepairReport* reply) override;
  grpc::Status ListPolicies(grpc::ServerContext* context,
                            const v1::ListPoliciesRequest* request,
                            v1::ListPoliciesResponse* reply) override;

 private:
  // Writes a job's updates until it ends or the client goes away. With
  // `owns_job` (Partition) a client that goes away cancels the job.
  grpc::Status StreamJob(grpc::ServerContext* context, Job& job,
                         grpc::ServerWriter<v1::PartitionUpdate>* writer,
                         bool owns_job);

  const ServiceOptions options_;
  Engine* const engine_;
  JobManager* const jobs_;
  Telemetry* const telemetry_;
};

// A job snapshot as the API shows it.
v1::Job JobToProto(const JobSnapshot& job, bool include_placement);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_SERVICE_H_
