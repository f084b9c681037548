// The engine: turns requests into problems, strategies and job work, and
// runs the core operations (evaluate, repair). Thin over solver/ and,
// through StrategyRegistry, over policy/. No gRPC types: the service layer
// converts statuses and messages at the edge.
#ifndef MCMPART_SERVER_ENGINE_H_
#define MCMPART_SERVER_ENGINE_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "mcmpart/v1/problem.pb.h"
#include "server/job_manager.h"
#include "server/store/store.h"
#include "server/strategy_factory.h"
#include "solver/problem.h"
#include "solver/problem_spec.h"
#include "solver/strategy.h"

namespace mcmpart::server {

struct EngineOptions {
  // Largest graph accepted, in nodes (after ONNX import). Requests are
  // bounded in bytes by the transport; this bounds the work per request.
  int max_nodes = 100'000;
  // A search budget of 0 s means this; larger budgets are capped.
  absl::Duration default_time_budget = absl::Seconds(10);
  absl::Duration max_time_budget = absl::Minutes(5);
  // Repair's time limit when a request gives none.
  absl::Duration default_repair_time = absl::Seconds(2);
  // Repairs running at once (each holds its handler thread and a core for
  // up to max_time_budget, beside the workers' searches). Beyond, Repair
  // fails at once with RESOURCE_EXHAUSTED; there is no wait queue. At
  // least 1; mcmpart-server sets it to --workers unless --max-repairs.
  int max_repairs = 2;
  // On a result-cache hit, search on for a better placement unless the
  // request says otherwise.
  bool keep_improving = false;
  // Improvements closer together than this are coalesced into one update
  // (the latest), so that a fast strategy is not slowed down by building
  // messages; the first one and the best one are always sent.
  absl::Duration publish_interval = absl::Milliseconds(20);
};

// Observes the engine for metrics. Thread-safe, quick; may be called from
// any thread.
class EngineEvents {
 public:
  virtual ~EngineEvents() = default;
  // One Repair call: its wall time and outcome.
  virtual void OnRepair(absl::Duration latency, const absl::Status& status) {}
  // A Repair call refused because max_repairs were running.
  virtual void OnRepairRejected() {}
};

// Thread-safe: every method may be called from many threads at once.
class Engine {
 public:
  // `strategies` and `events` (may be null) must outlive the engine.
  Engine(const EngineOptions& options, const StrategyRegistry* strategies,
         EngineEvents* events);

  // ProblemFromSpec (solver/problem_spec.h) with options().max_nodes; its
  // errors.
  absl::StatusOr<ResolvedProblem> ResolveProblem(
      const v1::ProblemSpec& spec) const;

  // Validates a search request and returns the job that runs it. Errors:
  // those of ResolveProblem; INVALID_ARGUMENT for a negative or non-finite
  // budget; NOT_FOUND for an unknown strategy or policy;
  // FAILED_PRECONDITION when the instance has no valid placement (the
  // solver's explanation).
  // `warm` (may be null): a placement to start from (a resumed job's best).
  absl::StatusOr<JobSpec> PrepareSearch(
      const v1::PartitionRequest& request,
      const v1::Placement* warm = nullptr) const;

  // The job that resumes a stored job another replica left unfinished: its
  // request with the budget it has left, starting from its best placement.
  // Errors: those of PrepareSearch.
  absl::StatusOr<JobSpec> PrepareResume(const store::JobRecord& record) const;

  // Scores and checks one placement. Errors: those of ResolveProblem;
  // INVALID_ARGUMENT for a placement naming unknown nodes or chips or
  // missing nodes.
  absl::StatusOr<v1::Evaluation> Evaluate(
      const v1::EvaluateRequest& request) const;

  // The nearest valid placement to the candidate, within min(the request's
  // time limit, `deadline`). Errors: RESOURCE_EXHAUSTED at once, before
  // the request is even read, when options().max_repairs repairs are
  // running (the message names the limit and --max-repairs); those of
  // ResolveProblem and mcmpart::Repair (FAILED_PRECONDITION when
  // infeasible, DEADLINE_EXCEEDED when the limit ends it before any valid
  // placement, CANCELLED when `stop` (may be null) ends it before one;
  // stopped after one, it returns that placement).
  absl::StatusOr<v1::RepairReport> Repair(const v1::RepairRequest& request,
                                          absl::Time deadline,
                                          const StopToken* stop) const;

  v1::ListPoliciesResponse ListPolicies() const;

  const EngineOptions& options() const { return options_; }

  // Repairs running now.
  int repairs_running() const;

 private:
  // JobSpec::restart for `request`: PrepareSearch again with the time
  // left and a warm start.
  std::function<absl::StatusOr<JobWork>(const v1::Placement*, absl::Duration,
                                        int64_t)>
  Restarter(std::shared_ptr<const v1::PartitionRequest> request) const;
  // NOT_FOUND for a policy the registry does not have ("" is the default).
  absl::Status CheckPolicyKnown(const std::string& policy) const;
  absl::StatusOr<v1::RepairReport> RunRepair(const v1::RepairRequest& request,
                                             absl::Time deadline,
                                             const StopToken* stop) const;

  const EngineOptions options_;
  const StrategyRegistry* const strategies_;
  EngineEvents* const events_;
  mutable absl::Mutex repair_mu_;
  mutable int repairs_running_ ABSL_GUARDED_BY(repair_mu_) = 0;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_ENGINE_H_
