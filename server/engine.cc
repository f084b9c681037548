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
#include "solver/quote.h"
#include "solver/repair.h"

namespace mcmpart::server {
namespace {

// Serialization with map entries sorted, so that equal messages give equal
// bytes (the cache key must not depend on map iteration order).
void AppendDeterministic(const google::protobuf::MessageLite& message,
                         std::string* out) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  absl::StrAppend(out, bytes.size(), ":", bytes);
}

// Two independent 64-bit hashes: a collision would hand one model's
// placement to another, so 64 bits alone are not enough comfort.
std::string Digest(const std::string& material) {
  const uint64_t a = absl::Hash<std::string_view>()(material);
  const uint64_t b = std::hash<std::string_view>()(material);
  return absl::StrFormat("%016x%016x-%d", a, b, material.size());
}

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
  std::string material;
  v1::Graph imported;
  const v1::Graph* graph_proto = nullptr;
  switch (spec.graph_source_case()) {
    case v1::ProblemSpec::kGraph:
      graph_proto = &spec.graph();
      AppendDeterministic(spec.graph(), &material);
      break;
    case v1::ProblemSpec::kOnnxModel: {
      OnnxImportOptions onnx;
      if (spec.onnx().default_dim() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("problem.onnx.default_dim is ",
                         spec.onnx().default_dim(), "; must be >= 1"));
      }
      if (spec.onnx().default_dim() > 0) {
        onnx.default_dim = spec.onnx().default_dim();
      }
      for (const auto& [name, value] : spec.onnx().dims()) {
        if (value < 1) {
          return absl::InvalidArgumentError(
              absl::StrCat("problem.onnx.dims[", QuoteInput(name), "] is ",
                           value, "; must be >= 1"));
        }
        onnx.dim_values[name] = value;
      }
      absl::StatusOr<v1::Graph> g = ImportOnnx(spec.onnx_model(), onnx);
      if (!g.ok()) {
        return absl::Status(
            g.status().code(),
            absl::StrCat("problem.onnx_model: ", g.status().message()));
      }
      imported = *std::move(g);
      graph_proto = &imported;
      absl::StrAppend(&material, "onnx", spec.onnx_model().size(), ":",
                      spec.onnx_model());
      AppendDeterministic(spec.onnx(), &material);
      break;
    }
    case v1::ProblemSpec::GRAPH_SOURCE_NOT_SET:
      return absl::InvalidArgumentError(
          "the request has no graph: set problem.graph or problem.onnx_model");
  }
  if (graph_proto->nodes_size() > options_.max_nodes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the graph has %d nodes; this server accepts at most %d (--max-nodes)",
        graph_proto->nodes_size(), options_.max_nodes));
  }
  absl::StatusOr<Graph> graph = Graph::FromProto(*graph_proto);
  if (!graph.ok()) return graph.status();

  v1::Hardware hardware;
  switch (spec.hardware_source_case()) {
    case v1::ProblemSpec::kPreset: {
      if (spec.chips() < 0 || spec.chips() > kMaxChips) {
        return absl::InvalidArgumentError(
            absl::StrFormat("problem.chips is %d; must be in 1..%d (or 0 for "
                            "the preset's own count)",
                            spec.chips(), kMaxChips));
      }
      absl::StatusOr<v1::Hardware> preset =
          PresetHardware(spec.preset(), spec.chips());
      if (!preset.ok()) return preset.status();
      hardware = *std::move(preset);
      break;
    }
    case v1::ProblemSpec::kHardware:
      if (spec.chips() != 0) {
        return absl::InvalidArgumentError(
            "problem.chips goes with problem.preset, not problem.hardware");
      }
      hardware = spec.hardware();
      break;
    case v1::ProblemSpec::HARDWARE_SOURCE_NOT_SET:
      return absl::InvalidArgumentError(
          "the request has no hardware: set problem.preset or "
          "problem.hardware");
  }
  const v1::Constraints constraints =
      spec.has_constraints() ? spec.constraints() : hardware.constraints();
  hardware.clear_constraints();
  AppendDeterministic(hardware, &material);
  AppendDeterministic(constraints, &material);

  absl::StatusOr<Problem> problem = Problem::Create(
      std::make_shared<const Graph>(*std::move(graph)), hardware, constraints);
  if (!problem.ok()) return problem.status();
  ResolvedProblem out;
  out.problem = std::make_shared<const Problem>(*std::move(problem));
  out.digest = Digest(material);
  return out;
}

absl::StatusOr<JobSpec> Engine::PrepareSearch(
    const v1::PartitionRequest& request) const {
  absl::StatusOr<ResolvedProblem> resolved = ResolveProblem(request.problem());
  if (!resolved.ok()) return resolved.status();

  Budget budget;
  absl::StatusOr<absl::Duration> time =
      SecondsField(request.budget().time_s(), "budget.time_s");
  if (!time.ok()) return time.status();
  budget.time =
      *time == absl::ZeroDuration() ? options_.default_time_budget : *time;
  budget.time = std::min(budget.time, options_.max_time_budget);
  if (request.budget().samples() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("budget.samples is ", request.budget().samples(),
                     "; must be >= 0 (0 = no limit)"));
  }
  budget.samples = request.budget().samples();

  // Cheap, explained infeasibility before any worker is spent. The search
  // reports the same error if this check is not available.
  absl::Status feasible = CheckFeasibility(*resolved->problem);
  if (!feasible.ok() && !absl::IsUnimplemented(feasible)) return feasible;

  if (!request.policy().empty()) {
    std::vector<std::string> known;
    for (const v1::PolicyInfo& p : strategies_->Policies()) {
      known.push_back(p.name());
    }
    if (std::find(known.begin(), known.end(), request.policy()) ==
        known.end()) {
      return absl::NotFoundError(absl::StrCat(
          "unknown policy ", QuoteInput(request.policy()), "; this server has ",
          known.empty() ? "no policies" : absl::StrJoin(known, ", ")));
    }
  }

  StrategyRequest sr;
  sr.name = request.strategy().empty() ? strategies_->default_name()
                                       : request.strategy();
  sr.seed = request.seed();
  sr.policy = request.policy();
  sr.fine_tune = !request.has_fine_tune() || request.fine_tune();
  absl::StatusOr<std::unique_ptr<Strategy>> made = strategies_->Make(sr);
  if (!made.ok()) return made.status();
  std::shared_ptr<Strategy> strategy = *std::move(made);

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
  spec.work = [problem = resolved->problem, strategy, budget, name = sr.name,
               interval = options_.publish_interval](
                  JobContext& context) -> absl::StatusOr<WorkResult> {
    Budget b = budget;
    const absl::Time start = absl::Now();
    // Ending by our own budget a little before the deadline is better than
    // being stopped at it: the best placement still reaches a client whose
    // call ends at the deadline. The margin is 10% of the time left, at
    // most 100 ms.
    absl::Time soft_deadline = context.deadline();
    if (soft_deadline != absl::InfiniteFuture()) {
      soft_deadline -=
          std::min(absl::Milliseconds(100), (soft_deadline - start) / 10);
    }
    const bool clamped = soft_deadline - start < b.time;
    if (clamped) {
      b.time = std::max(soft_deadline - start, absl::ZeroDuration());
    }
    Evaluator evaluator(*problem);
    auto publish = [&](const Assignment& placement, int64_t samples,
                       absl::Duration elapsed, double bound_s) {
      v1::PartitionUpdate update;
      *update.mutable_placement() =
          AssignmentToProto(problem->graph(), placement);
      *update.mutable_evaluation() = evaluator.Evaluate(placement);
      TightenBound(bound_s, update.mutable_evaluation());
      update.set_samples(samples);
      update.set_elapsed_s(absl::ToDoubleSeconds(elapsed));
      update.set_strategy(name);
      context.Publish(std::move(update));
    };
    absl::Time last_publish = absl::InfinitePast();
    auto on_improvement = [&](const Improvement& improvement) {
      // A cached placement may already be better; building the message
      // would be wasted.
      if (improvement.figures.throughput_per_s <= context.best_throughput()) {
        return;
      }
      const absl::Time now = absl::Now();
      if (now - last_publish < interval) return;  // the end sends the best
      last_publish = now;
      publish(improvement.placement, improvement.samples, improvement.elapsed,
              improvement.bound_s);
    };
    absl::StatusOr<StrategyResult> result =
        strategy->Run(*problem, b, context.stop(), on_improvement);
    if (!result.ok()) return result.status();
    if (!result->best.empty() &&
        result->throughput_per_s > context.best_throughput()) {
      publish(result->best, result->samples, result->elapsed, result->bound_s);
    }
    WorkResult out;
    out.bound_s = result->bound_s;
    out.samples = result->samples;
    out.elapsed_s = absl::ToDoubleSeconds(result->elapsed);
    switch (result->reason) {
      case EndReason::kCancelled:
        out.end_reason = "cancelled";
        break;
      case EndReason::kConverged:
        out.end_reason = "converged";
        break;
      case EndReason::kBudget:
        out.end_reason =
            clamped && absl::Now() >= soft_deadline - absl::Milliseconds(5)
                ? "deadline"
                : "budget";
        break;
    }
    return out;
  };
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
