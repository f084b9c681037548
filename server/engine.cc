#include "server/engine.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "solver/bound.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/hardware.h"
#include "solver/onnx_import.h"
#include "solver/placement.h"
#include "solver/problem_spec.h"
#include "solver/quote.h"
#include "solver/repair.h"

namespace mcmpart::server {
namespace {

absl::StatusOr<absl::Duration> SecondsField(double seconds,
                                            absl::string_view field) {
  if (!std::isfinite(seconds) || seconds < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " is ", seconds, "; must be a finite number of seconds >= 0"));
  }
  return absl::Seconds(seconds);
}

}  // namespace

Engine::Engine(const EngineOptions& options, const StrategyRegistry* strategies,
               EngineEvents* events)
    : options_(options), strategies_(strategies), events_(events) {}

absl::StatusOr<ResolvedProblem> Engine::ResolveProblem(
    const v1::ProblemSpec& spec) const {
  ProblemSpecOptions options;
  options.max_nodes = options_.max_nodes;
  return ProblemFromSpec(spec, options);
}

namespace {

// The budget a request asks for, with the server's default and cap.
absl::StatusOr<Budget> RequestBudget(const v1::SearchBudget& asked,
                                     const EngineOptions& options) {
  Budget budget;
  absl::StatusOr<absl::Duration> time =
      SecondsField(asked.time_s(), "budget.time_s");
  if (!time.ok()) return time.status();
  budget.time =
      *time == absl::ZeroDuration() ? options.default_time_budget : *time;
  budget.time = std::min(budget.time, options.max_time_budget);
  if (asked.samples() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget.samples is ", asked.samples(),
                     "; must be >= 0 (0 = no limit)"));
  }
  budget.samples = asked.samples();
  return budget;
}

// A search job's work: runs the strategy within the budget and the job's
// deadline, publishing improvements (coalesced to one per `interval`) and
// the best placement at the end.
class SearchWork {
 public:
  SearchWork(std::shared_ptr<const Problem> problem,
             std::shared_ptr<Strategy> strategy, Budget budget,
             std::string name, absl::Duration interval)
      : problem_(std::move(problem)),
        strategy_(std::move(strategy)),
        budget_(budget),
        name_(std::move(name)),
        interval_(interval) {}

  absl::StatusOr<WorkResult> operator()(JobContext& context) const {
    const absl::Time start = absl::Now();
    const absl::Time soft_deadline = SoftDeadline(context, start);
    Budget b = budget_;
    const bool clamped = soft_deadline - start < b.time;
    if (clamped) b.time = std::max(soft_deadline - start, absl::ZeroDuration());
    Evaluator evaluator(*problem_);
    absl::Time last_publish = absl::InfinitePast();
    auto on_improvement = [&](const Improvement& improvement) {
      // A cached placement may already be better; building the message
      // would be wasted.
      if (improvement.figures.throughput_per_s <= context.best_throughput()) {
        return;
      }
      const absl::Time now = absl::Now();
      if (now - last_publish < interval_) return;  // the end sends the best
      last_publish = now;
      Publish(context, evaluator, improvement.placement, improvement.samples,
              improvement.elapsed, improvement.bound_s);
    };
    absl::StatusOr<StrategyResult> result =
        strategy_->Run(*problem_, b, context.stop(), on_improvement);
    if (!result.ok()) return result.status();
    if (!result->best.empty() &&
        result->throughput_per_s > context.best_throughput()) {
      Publish(context, evaluator, result->best, result->samples,
              result->elapsed, result->bound_s);
    }
    return Outcome(
        *result,
        clamped && absl::Now() >= soft_deadline - absl::Milliseconds(5));
  }

 private:
  // Ending by our own budget a little before the deadline is better than
  // being stopped at it: the best placement still reaches a client whose
  // call ends at the deadline. The margin is 10% of the time left, at most
  // 100 ms.
  static absl::Time SoftDeadline(const JobContext& context, absl::Time start) {
    absl::Time soft = context.deadline();
    if (soft != absl::InfiniteFuture()) {
      soft -= std::min(absl::Milliseconds(100), (soft - start) / 10);
    }
    return soft;
  }

  void Publish(JobContext& context, Evaluator& evaluator,
               const Assignment& placement, int64_t samples,
               absl::Duration elapsed, double bound_s) const {
    v1::PartitionUpdate update;
    *update.mutable_placement() =
        AssignmentToProto(problem_->graph(), placement);
    *update.mutable_evaluation() = evaluator.Evaluate(placement);
    TightenBound(bound_s, update.mutable_evaluation());
    update.set_samples(samples);
    update.set_elapsed_s(absl::ToDoubleSeconds(elapsed));
    update.set_strategy(name_);
    context.Publish(std::move(update));
  }

  // `at_deadline`: the budget was clamped to the deadline and ran out there.
  static WorkResult Outcome(const StrategyResult& result, bool at_deadline) {
    WorkResult out;
    out.bound_s = result.bound_s;
    out.samples = result.samples;
    out.elapsed_s = absl::ToDoubleSeconds(result.elapsed);
    switch (result.reason) {
      case EndReason::kCancelled:
        out.end_reason = "cancelled";
        break;
      case EndReason::kConverged:
        out.end_reason = "converged";
        break;
      case EndReason::kBudget:
        out.end_reason = at_deadline ? "deadline" : "budget";
        break;
    }
    return out;
  }

  const std::shared_ptr<const Problem> problem_;
  const std::shared_ptr<Strategy> strategy_;
  const Budget budget_;
  const std::string name_;
  const absl::Duration interval_;
};

}  // namespace

absl::Status Engine::CheckPolicyKnown(const std::string& policy) const {
  if (policy.empty()) return absl::OkStatus();
  std::vector<std::string> known;
  for (const v1::PolicyInfo& p : strategies_->Policies()) {
    known.push_back(p.name());
  }
  if (std::find(known.begin(), known.end(), policy) != known.end()) {
    return absl::OkStatus();
  }
  return absl::NotFoundError(
      absl::StrCat("unknown policy ", QuoteInput(policy), "; this server has ",
                   known.empty() ? "no policies" : absl::StrJoin(known, ", ")));
}

absl::StatusOr<JobSpec> Engine::PrepareResume(
    const store::JobRecord& record) const {
  v1::PartitionRequest request = record.request;
  // The budget left after what earlier replicas used (at least a moment, so
  // that the job still ends through its work with the best placement).
  const double asked =
      request.budget().time_s() > 0
          ? request.budget().time_s()
          : absl::ToDoubleSeconds(options_.default_time_budget);
  request.mutable_budget()->set_time_s(
      std::max(0.05, asked - record.progress.elapsed_s));
  if (request.budget().samples() > 0) {
    request.mutable_budget()->set_samples(std::max<int64_t>(
        1, request.budget().samples() - record.progress.samples));
  }
  // Its best so far is where the search starts again.
  const v1::Placement* warm =
      record.progress.best ? &record.progress.best->placement() : nullptr;
  absl::StatusOr<JobSpec> spec = PrepareSearch(request, warm);
  if (!spec.ok()) return spec.status();
  spec->request = std::make_shared<const v1::PartitionRequest>(record.request);
  spec->prior_elapsed_s = record.progress.elapsed_s;
  spec->prior_samples = record.progress.samples;
  spec->retained = true;
  return spec;
}

std::function<absl::StatusOr<JobWork>(const v1::Placement*, absl::Duration,
                                      int64_t)>
Engine::Restarter(std::shared_ptr<const v1::PartitionRequest> request) const {
  // A copy of what PrepareSearch reads, not this engine: a follower may
  // continue after the engine is gone (the registry outlives the jobs).
  return [options = options_, strategies = strategies_,
          request = std::move(request)](
             const v1::Placement* warm, absl::Duration time_left,
             int64_t samples_used) -> absl::StatusOr<JobWork> {
    v1::PartitionRequest rest = *request;
    rest.mutable_budget()->set_time_s(
        std::max(0.05, absl::ToDoubleSeconds(time_left)));
    if (rest.budget().samples() > 0) {
      rest.mutable_budget()->set_samples(
          std::max<int64_t>(1, rest.budget().samples() - samples_used));
    }
    absl::StatusOr<JobSpec> spec =
        Engine(options, strategies, nullptr).PrepareSearch(rest, warm);
    if (!spec.ok()) return spec.status();
    return std::move(spec->work);
  };
}

absl::StatusOr<JobSpec> Engine::PrepareSearch(
    const v1::PartitionRequest& request, const v1::Placement* warm) const {
  absl::StatusOr<ResolvedProblem> resolved = ResolveProblem(request.problem());
  if (!resolved.ok()) return resolved.status();
  absl::StatusOr<Budget> budget = RequestBudget(request.budget(), options_);
  if (!budget.ok()) return budget.status();
  // Cheap, explained infeasibility before any worker is spent. The search
  // reports the same error if this check is not available.
  absl::Status feasible = CheckFeasibility(*resolved->problem);
  if (!feasible.ok() && !absl::IsUnimplemented(feasible)) return feasible;
  if (absl::Status s = CheckPolicyKnown(request.policy()); !s.ok()) return s;

  StrategyRequest sr;
  sr.name = request.strategy().empty() ? strategies_->default_name()
                                       : request.strategy();
  sr.seed = request.seed();
  sr.policy = request.policy();
  sr.fine_tune = !request.has_fine_tune() || request.fine_tune();
  if (warm != nullptr) {
    absl::StatusOr<Assignment> initial =
        AssignmentFromProto(*resolved->problem, *warm);
    if (initial.ok()) sr.initial = *std::move(initial);
  }
  absl::StatusOr<std::unique_ptr<Strategy>> made = strategies_->Make(sr);
  if (!made.ok()) return made.status();

  const Problem& p = *resolved->problem;
  JobSpec spec;
  spec.strategy = sr.name;
  spec.graph_name = p.graph().name();
  spec.hardware_name = p.hardware().name();
  spec.num_nodes = p.num_nodes();
  // The policy is part of the identity: two policies are two strategies.
  spec.cache_key = absl::StrCat(resolved->digest, "/", sr.name, "/",
                                sr.name == "rl" ? sr.policy : "");
  spec.problem_key = resolved->digest;
  spec.keep_improving = request.has_keep_improving() ? request.keep_improving()
                                                     : options_.keep_improving;
  spec.work = SearchWork(resolved->problem, *std::move(made), *budget, sr.name,
                         options_.publish_interval);
  spec.request = std::make_shared<const v1::PartitionRequest>(request);
  spec.time_budget = budget->time;
  spec.restart = Restarter(spec.request);
  return spec;
}

absl::StatusOr<v1::Evaluation> Engine::Evaluate(
    const v1::EvaluateRequest& request) const {
  absl::StatusOr<ResolvedProblem> resolved = ResolveProblem(request.problem());
  if (!resolved.ok()) return resolved.status();
  absl::StatusOr<Assignment> p =
      AssignmentFromProto(*resolved->problem, request.placement());
  if (!p.ok()) {
    return absl::Status(p.status().code(),
                        absl::StrCat("placement: ", p.status().message()));
  }
  return Evaluator(*resolved->problem).Evaluate(*p);
}

int Engine::repairs_running() const {
  absl::MutexLock lock(&repair_mu_);
  return repairs_running_;
}

absl::StatusOr<v1::RepairReport> Engine::Repair(
    const v1::RepairRequest& request, absl::Time deadline,
    const StopToken* stop) const {
  // Admission before anything else: reading the request (an ONNX import)
  // is already work.
  const int limit = std::max(1, options_.max_repairs);
  {
    absl::MutexLock lock(&repair_mu_);
    if (repairs_running_ >= limit) {
      if (events_) events_->OnRepairRejected();
      return absl::ResourceExhaustedError(absl::StrFormat(
          "server busy: %d repairs running, the limit (--max-repairs %d); "
          "retry later",
          repairs_running_, limit));
    }
    ++repairs_running_;
  }
  absl::Cleanup release = [this] {
    absl::MutexLock lock(&repair_mu_);
    --repairs_running_;
  };
  return RunRepair(request, deadline, stop);
}

absl::StatusOr<v1::RepairReport> Engine::RunRepair(
    const v1::RepairRequest& request, absl::Time deadline,
    const StopToken* stop) const {
  absl::StatusOr<ResolvedProblem> resolved = ResolveProblem(request.problem());
  if (!resolved.ok()) return resolved.status();
  const Problem& problem = *resolved->problem;
  absl::StatusOr<Assignment> candidate =
      AssignmentFromProto(problem, request.candidate(), /*allow_missing=*/true);
  if (!candidate.ok()) {
    return absl::Status(
        candidate.status().code(),
        absl::StrCat("candidate: ", candidate.status().message()));
  }
  std::vector<double> weights;
  if (!request.weights().empty()) {
    weights.assign(problem.num_nodes(), 1.0);
    for (const auto& [name, w] : request.weights()) {
      std::optional<int> v = problem.graph().FindNode(name);
      if (!v.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "weights: ", QuoteInput(name), " is no node of the graph"));
      }
      if (!std::isfinite(w) || w < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("weights[", QuoteInput(name), "] is ", w,
                         "; must be finite and >= 0"));
      }
      weights[*v] = w;
    }
  }
  absl::StatusOr<absl::Duration> limit =
      SecondsField(request.time_limit_s(), "time_limit_s");
  if (!limit.ok()) return limit.status();
  RepairOptions options;
  options.time_limit = *limit == absl::ZeroDuration()
                           ? options_.default_repair_time
                           : std::min(*limit, options_.max_time_budget);
  const absl::Time start = absl::Now();
  options.time_limit = std::max(std::min(options.time_limit, deadline - start),
                                absl::ZeroDuration());
  options.stop = stop;
  absl::StatusOr<RepairResult> repaired =
      mcmpart::Repair(problem, *candidate, weights, options);
  if (events_) {
    // A stopped repair returns its best so far as OK; the metrics count it
    // as what it was.
    const bool stopped = repaired.ok() && repaired->cancelled;
    events_->OnRepair(
        absl::Now() - start,
        stopped ? absl::CancelledError("repair stopped") : repaired.status());
  }
  if (!repaired.ok()) return repaired.status();
  return MakeRepairReport(problem, *repaired);
}

v1::ListPoliciesResponse Engine::ListPolicies() const {
  v1::ListPoliciesResponse out;
  for (v1::PolicyInfo& p : strategies_->Policies()) {
    *out.add_policies() = std::move(p);
  }
  for (const std::string& n : strategies_->Names()) out.add_strategies(n);
  return out;
}

}  // namespace mcmpart::server
