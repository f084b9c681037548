// Jobs: their states, what a work function sees of its job (JobContext) and
// the job itself (Job), whose snapshot only improves.
#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "server/job_manager.h"
#include "solver/bound.h"

namespace mcmpart::server {
namespace {

absl::string_view CauseName(StopCause cause) {
  switch (cause) {
    case StopCause::kDeadline:
      return "deadline";
    case StopCause::kShutdown:
      return "shutdown";
    case StopCause::kCancelled:
    case StopCause::kNone:
      break;
  }
  return "cancelled";
}

}  // namespace

absl::string_view JobStateName(JobState state) {
  switch (state) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kSucceeded:
      return "succeeded";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

v1::Job::State JobStateToProto(JobState state) {
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

JobState JobStateFromProto(v1::Job::State state) {
  switch (state) {
    case v1::Job::RUNNING:
      return JobState::kRunning;
    case v1::Job::SUCCEEDED:
      return JobState::kSucceeded;
    case v1::Job::FAILED:
      return JobState::kFailed;
    case v1::Job::CANCELLED:
      return JobState::kCancelled;
    default:
      return JobState::kQueued;
  }
}

bool IsCallJobId(absl::string_view id) {
  return absl::StartsWith(id, kCallJobIdPrefix);
}

// ---------------------------------------------------------------- JobContext

const StopToken& JobContext::stop() const { return job_->stop_; }

absl::Time JobContext::deadline() const { return job_->spec_.deadline; }

double JobContext::best_throughput() const {
  absl::MutexLock lock(&job_->mu_);
  return job_->best_throughput_;
}

bool JobContext::Publish(v1::PartitionUpdate update) {
  return job_->Publish(std::move(update), /*from_cache=*/false);
}

// ----------------------------------------------------------------------- Job

Job::Job(std::string id, JobSpec spec, absl::Time now)
    : id_(std::move(id)), spec_(std::move(spec)) {
  snap_.id = id_;
  snap_.strategy = spec_.strategy;
  snap_.graph_name = spec_.graph_name;
  snap_.hardware_name = spec_.hardware_name;
  snap_.num_nodes = spec_.num_nodes;
  snap_.create_time = now;
}

JobSnapshot Job::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return snap_;
}

uint64_t Job::version() const {
  absl::MutexLock lock(&mu_);
  return snap_.version;
}

JobSnapshot Job::WaitForChange(uint64_t seen_version,
                               absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  struct Arg {
    const JobSnapshot* snap;
    uint64_t seen;
  } arg{&snap_, seen_version};
  mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Arg* a) { return a->snap->version != a->seen; }, &arg),
      timeout);
  return snap_;
}

bool Job::RequestStop(StopCause cause) {
  absl::MutexLock lock(&mu_);
  if (cause_ != StopCause::kNone || snap_.done()) return false;
  cause_ = cause;
  stop_.RequestStop();
  return true;
}

StopCause Job::stop_cause() const {
  absl::MutexLock lock(&mu_);
  return cause_;
}

bool Job::ending() const {
  absl::MutexLock lock(&mu_);
  return cause_ != StopCause::kNone || snap_.done();
}

bool Job::Publish(v1::PartitionUpdate update, bool from_cache) {
  absl::MutexLock lock(&mu_);
  const double throughput = update.evaluation().throughput_per_s();
  if (snap_.done() || !(throughput > best_throughput_)) return false;
  best_throughput_ = throughput;
  update.set_from_cache(from_cache);
  update.set_final(false);
  update.clear_end_reason();
  update.set_job_id(spec_.retained ? id_ : "");
  if (update.strategy().empty()) update.set_strategy(spec_.strategy);
  snap_.best = std::make_shared<const v1::PartitionUpdate>(std::move(update));
  snap_.best_version = ++snap_.version;
  return true;
}

void Job::TightenBound(double bound_s) {
  absl::MutexLock lock(&mu_);
  if (snap_.done() || snap_.best == nullptr || !(bound_s > 0)) return;
  auto best = std::make_shared<v1::PartitionUpdate>(*snap_.best);
  mcmpart::TightenBound(bound_s, best->mutable_evaluation());
  snap_.best = std::move(best);
}

void Job::Overwrite(JobSnapshot snap) {
  absl::MutexLock lock(&mu_);
  snap.id = id_;
  snap.version = snap_.version + 1;
  snap.best_version =
      snap.best != snap_.best ? snap.version : snap_.best_version;
  if (snap.best) {
    best_throughput_ = snap.best->evaluation().throughput_per_s();
  }
  snap_ = std::move(snap);
}

void Job::MarkRunning(absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (snap_.done()) return;
  snap_.state = JobState::kRunning;
  snap_.start_time = now;
  ++snap_.version;
}

void Job::Finish(absl::StatusOr<WorkResult> result, absl::Time now) {
  absl::MutexLock lock(&mu_);
  if (snap_.done()) return;
  std::string reason;
  int64_t samples = snap_.best ? snap_.best->samples() : 0;
  double elapsed_s = snap_.best ? snap_.best->elapsed_s() : 0;
  if (result.ok()) {
    reason = result->end_reason;
    samples = std::max(samples, result->samples);
    elapsed_s = std::max(elapsed_s, result->elapsed_s);
    // The work only knows that it was stopped; the manager knows why.
    if (reason == "cancelled" ||
        (cause_ != StopCause::kNone && reason != "converged" &&
         reason != "cached")) {
      reason = std::string(CauseName(cause_));
    }
  } else if (absl::IsCancelled(result.status()) && cause_ != StopCause::kNone) {
    reason = std::string(CauseName(cause_));
    result = WorkResult{reason, samples, elapsed_s};
  } else {
    reason = "error";
  }

  auto final_update = std::make_shared<v1::PartitionUpdate>();
  if (snap_.best) *final_update = *snap_.best;
  final_update->set_final(true);
  final_update->set_end_reason(reason);
  final_update->set_samples(samples);
  final_update->set_elapsed_s(elapsed_s);
  final_update->set_job_id(spec_.retained ? id_ : "");
  final_update->set_strategy(spec_.strategy);

  if (!result.ok()) {
    snap_.status = result.status();
    snap_.state = JobState::kFailed;
  } else if (snap_.best) {
    snap_.status = absl::OkStatus();
    snap_.state = JobState::kSucceeded;
  } else if (reason == "shutdown") {
    // Nothing is wrong with the request: another replica can run it.
    snap_.status = absl::UnavailableError(absl::StrFormat(
        "the server is shutting down and stopped the search before any valid "
        "placement was found (%d samples); retry on another replica",
        samples));
    snap_.state = JobState::kCancelled;
  } else if (reason == "cancelled") {
    snap_.status = absl::CancelledError(absl::StrFormat(
        "job %s was cancelled before any valid placement was found (%d "
        "samples)",
        id_, samples));
    snap_.state = JobState::kCancelled;
  } else {
    snap_.status = absl::DeadlineExceededError(absl::StrFormat(
        "the %s ended the search before any valid placement was found "
        "(%d samples in %.3g s)",
        reason == "deadline" ? "deadline" : "budget", samples, elapsed_s));
    snap_.state = JobState::kFailed;
  }
  snap_.end_reason = reason;
  snap_.end_time = now;
  snap_.final_update = std::move(final_update);
  ++snap_.version;
}

}  // namespace mcmpart::server
