// In-flight joins (job_manager.h, "In-flight joins"): requests for a problem
// that a job already searches get that search, here or on another replica,
// instead of starting a second one; followers of a call job copy its
// progress and continue the search themselves when it stops early.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "server/job_manager.h"
#include "server/job_recorder.h"

namespace mcmpart::server {
namespace {

// Less budget or time than this left is not worth a new search: the
// follower ends with the leader's best instead.
constexpr absl::Duration kMinContinuation = absl::Milliseconds(50);

// How long a joiner waits for the leader's record: the leader claims the
// search just before it records its job.
constexpr absl::Duration kRecordWait = absl::Seconds(2);

// Ends that come from outside the search (its caller went away, its
// deadline, a drain or a dead replica), not from its own budget.
bool StoppedEarly(const std::string& end_reason) {
  return end_reason == "cancelled" || end_reason == "deadline" ||
         end_reason == "shutdown";
}

// A job that joiners share rather than follow: a submitted one (which no
// caller's going away cancels), here or on another replica.
bool Shared(const Job& job) {
  return job.remote() ? !IsCallJobId(job.id()) : job.spec().retained;
}

}  // namespace

void JobManager::AwaitResolved(const std::string& key) {
  struct Arg {
    const absl::flat_hash_map<std::string, Inflight>* inflight;
    const std::string* key;
  } arg{&inflight_, &key};
  mu_.Await(absl::Condition(
      +[](Arg* a) {
        auto it = a->inflight->find(*a->key);
        return it == a->inflight->end() || !it->second.resolving;
      },
      &arg));
}

std::shared_ptr<Job> JobManager::JoinLocal(JobSpec& spec, absl::Time now,
                                           bool* follows) {
  auto it = inflight_.find(spec.cache_key);
  if (it == inflight_.end()) return nullptr;
  std::shared_ptr<Job> leader = it->second.job.lock();
  if (leader == nullptr || leader->ending()) {
    inflight_.erase(it);
    return nullptr;
  }
  if (events_) events_->OnJoined();
  if (Shared(*leader)) return leader;
  auto follower =
      std::make_shared<Job>(NewId(spec.retained), std::move(spec), now);
  if (!follower->spec_.retained) holders_[follower.get()] = 1;
  Follow(follower, std::move(leader), now);
  *follows = true;
  return follower;
}

std::shared_ptr<Job> JobManager::JoinRemote(const std::shared_ptr<Job>& job,
                                            JobRecorder& recorder) {
  const std::string leader_id =
      recorder.ClaimSearch(job->spec_.cache_key, job->id());
  if (leader_id.empty()) return nullptr;  // this job leads
  const absl::Time until = absl::Now() + kRecordWait;
  absl::StatusOr<std::shared_ptr<Job>> leader = Find(leader_id);
  while (absl::IsNotFound(leader.status()) && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
    leader = Find(leader_id);
  }
  // The leader is unknown or the store unreachable: search here.
  if (!leader.ok() || (*leader)->ending()) return nullptr;
  if (events_) events_->OnJoined();
  if (Shared(**leader)) return *std::move(leader);
  absl::MutexLock lock(&mu_);
  Follow(job, *std::move(leader), clock_.Now());
  return job;
}

void JobManager::Follow(const std::shared_ptr<Job>& job,
                        std::shared_ptr<Job> leader, absl::Time now) {
  job->MarkRunning(now);
  jobs_[job->id()] = job;
  if (!leader->remote()) ++holders_[leader.get()];
  Follower f{job, std::move(leader), 0};
  // The first update at once, not at the janitor's next pass.
  if (FollowStep(f, now)) {
    Detach(f.leader);
    return;
  }
  followers_.push_back(std::move(f));
}

void JobManager::FollowTick(absl::Time now) {
  std::vector<Follower> done;
  for (auto it = followers_.begin(); it != followers_.end();) {
    if (FollowStep(*it, now)) {
      done.push_back(std::move(*it));
      it = followers_.erase(it);
    } else {
      ++it;
    }
  }
  // After the pass: letting go may cancel a leader that is itself a
  // follower, which changes the list.
  for (const Follower& f : done) Detach(f.leader);
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (it->second.job.expired()) {
      inflight_.erase(it++);
    } else {
      ++it;
    }
  }
}

bool JobManager::FollowStep(Follower& f, absl::Time now) {
  if (f.job->ending()) {  // stopped without EndFollower: end it now
    f.job->Finish(WorkResult{"cancelled"}, now);
    OnJobEnded(f.job);
    return true;
  }
  if (f.leader->version() != f.seen_version) {
    const JobSnapshot lead = f.leader->Snapshot();
    f.seen_version = lead.version;
    if (lead.best) f.job->Publish(*lead.best, lead.best->from_cache());
    if (lead.done()) {
      LeaderEnded(f, lead, now);
      return true;
    }
  }
  StopCause cause = StopCause::kNone;
  if (draining_ && now >= drain_deadline_) {
    cause = StopCause::kShutdown;
  } else if (now >= f.job->spec_.deadline) {
    cause = StopCause::kDeadline;
  }
  if (cause == StopCause::kNone) return false;
  f.job->RequestStop(cause);
  f.job->Finish(WorkResult{"cancelled"}, now);
  OnJobEnded(f.job);
  return true;
}

void JobManager::LeaderEnded(Follower& f, const JobSnapshot& lead,
                             absl::Time now) {
  Job& job = *f.job;
  const absl::Duration used = now - job.Snapshot().create_time;
  const bool time_left = now + kMinContinuation < job.spec_.deadline &&
                         used + kMinContinuation < job.spec_.time_budget;
  if (StoppedEarly(lead.end_reason) && time_left && !draining_ &&
      job.stop_cause() == StopCause::kNone) {
    // Nobody searches the problem now: this follower does, from the best.
    job.continuation_ = true;
    queue_.push_back(f.job);
    inflight_[job.spec_.cache_key] = Inflight{f.job, false};
    ReportLoad();
    return;
  }
  std::string reason = lead.end_reason;
  // The leader's stop is not this follower's: it ends for its own reason.
  if (StoppedEarly(reason)) {
    if (draining_) {
      reason = "shutdown";
    } else if (now + kMinContinuation >= job.spec_.deadline) {
      reason = "deadline";
    } else {
      reason = "budget";
    }
  }
  const v1::PartitionUpdate* last = lead.final_update.get();
  const int64_t samples = last != nullptr ? last->samples() : 0;
  const double elapsed = last != nullptr ? last->elapsed_s() : 0;
  if (!lead.status.ok() && lead.end_reason == "error") {
    job.Finish(lead.status, now);  // the same problem fails the same way
  } else {
    job.Finish(WorkResult{reason, samples, elapsed}, now);
  }
  OnJobEnded(f.job);
}

bool JobManager::EndFollower(Job& job, StopCause cause, absl::Time now) {
  auto it =
      std::find_if(followers_.begin(), followers_.end(),
                   [&](const Follower& f) { return f.job.get() == &job; });
  if (it == followers_.end()) return false;
  Follower f = std::move(*it);
  followers_.erase(it);
  f.job->RequestStop(cause);
  f.job->Finish(WorkResult{"cancelled"}, now);
  OnJobEnded(f.job);
  Detach(f.leader);
  return true;
}

void JobManager::Detach(const std::shared_ptr<Job>& leader) {
  if (leader->remote()) return;
  auto it = holders_.find(leader.get());
  if (it == holders_.end() || --it->second > 0) return;
  // Its caller left before: nobody wants its search now.
  CancelLocked(*leader, StopCause::kCancelled);
}

JobWork JobManager::ContinuationWork(const std::shared_ptr<Job>& job,
                                     const JobSnapshot& snap) {
  // Leads the search now: other replicas' requests follow this job.
  if (JobRecorder* recorder = recorder_for_remote()) {
    const std::string leader =
        recorder->ClaimSearch(job->spec_.cache_key, job->id());
    if (leader.empty() && !job->recorded_.exchange(true)) {
      recorder->Created(job);
    }
  }
  const JobSpec& spec = job->spec_;
  if (!spec.restart) return spec.work;
  const absl::Duration left = std::max(
      spec.time_budget - (clock_.Now() - snap.create_time), kMinContinuation);
  absl::StatusOr<JobWork> warm =
      spec.restart(snap.best ? &snap.best->placement() : nullptr, left,
                   snap.best ? snap.best->samples() : 0);
  // The problem was built once already; should it fail now, the follower's
  // own search still runs (publishing only what beats its best).
  return warm.ok() ? *std::move(warm) : spec.work;
}

}  // namespace mcmpart::server
