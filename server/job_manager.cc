#include "server/job_manager.h"

#include <algorithm>
#include <exception>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/job_recorder.h"
#include "solver/quote.h"

namespace mcmpart::server {

// ---------------------------------------------------------------- JobManager

JobManager::JobManager(const JobManagerOptions& options, JobEvents* events)
    : options_(options),
      clock_(options.clock != nullptr ? *options.clock : RealClock()),
      events_(events) {
  std::random_device rd;
  id_salt_ = (uint64_t{rd()} << 32) ^ rd();
  const int workers = std::max(1, options_.workers);
  workers_.reserve(workers);
  for (int i = 0; i < workers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  janitor_ = std::thread([this] { JanitorLoop(); });
}

JobManager::~JobManager() {
  std::vector<std::shared_ptr<Job>> queued;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    draining_ = true;
    queued.assign(queue_.begin(), queue_.end());
    queue_.clear();
    for (const Follower& f : followers_) queued.push_back(f.job);
    followers_.clear();
    for (const std::shared_ptr<Job>& job : active_) {
      job->RequestStop(StopCause::kShutdown);
    }
  }
  for (const std::shared_ptr<Job>& job : queued) {
    job->RequestStop(StopCause::kShutdown);
    job->Finish(WorkResult{"cancelled"}, clock_.Now());
  }
  for (std::thread& t : workers_) t.join();
  janitor_.join();
}

std::string JobManager::NewId(bool retained) {
  // Unique within the process and hard to guess across restarts, so that a
  // stale id from an earlier run reports NOT_FOUND rather than another job.
  return absl::StrFormat("%s%08x-%d", retained ? "job-" : kCallJobIdPrefix,
                         static_cast<uint32_t>(id_salt_ ^ (id_salt_ >> 32)),
                         next_id_++);
}

void JobManager::ReportLoad() {
  if (events_) events_->OnLoad(static_cast<int>(queue_.size()), running_);
}

void JobManager::SetRecorder(JobRecorder* recorder) {
  absl::MutexLock lock(&mu_);
  recorder_ = recorder;
}

absl::StatusOr<std::shared_ptr<Job>> JobManager::Submit(JobSpec spec) {
  if (!spec.work) return absl::InvalidArgumentError("a job needs work to run");
  std::shared_ptr<const v1::PartitionUpdate> cached = CachedBest(spec);
  const bool run =
      cached == nullptr ||
      (spec.keep_improving && !cached->evaluation().proved_optimal());
  // Only a search is joined: a cache hit that ends at once is not one.
  const bool joinable =
      options_.join_searches && run && !spec.cache_key.empty();
  const std::string key = spec.cache_key;
  JobRecorder* recorder = recorder_for_remote();
  std::shared_ptr<Job> job, joined;
  bool follows = false;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    if (joinable) {
      AwaitResolved(key);
      joined = JoinLocal(spec, now, &follows);
    }
    if (joined == nullptr) {
      job = std::make_shared<Job>(NewId(spec.retained), std::move(spec), now);
      if (!job->spec_.retained) holders_[job.get()] = 1;
      // From here on, requests for the problem on this replica join this
      // job, once the store has said who leads.
      if (joinable) inflight_[key] = Inflight{job, recorder != nullptr};
    }
  }
  if (joined != nullptr) {
    // A submitted follower is a job of its own: listed everywhere.
    if (follows && recorder != nullptr && joined->spec_.retained) {
      recorder->Created(joined);
      joined->recorded_ = true;
    }
    return joined;
  }
  if (joinable && recorder != nullptr) {
    joined = JoinRemote(job, *recorder);
    {
      absl::MutexLock lock(&mu_);
      inflight_[key] = Inflight{joined != nullptr ? joined : job, false};
      if (joined != nullptr && joined != job) holders_.erase(job.get());
    }
    if (joined != nullptr) {
      if (joined == job && job->spec_.retained) {
        recorder->Created(job);  // a submitted follower: listed everywhere
        job->recorded_ = true;
      }
      return joined;
    }
  }
  absl::StatusOr<std::shared_ptr<Job>> queued;
  {
    absl::MutexLock lock(&mu_);
    queued = Enqueue(job, run, std::move(cached), clock_.Now());
    if (!queued.ok()) {
      // Requests that joined it meanwhile end with the same answer.
      job->Finish(queued.status(), clock_.Now());
      holders_.erase(job.get());
      if (joinable) inflight_.erase(key);
    }
  }
  if (recorder == nullptr) return queued;
  if (!queued.ok()) {
    if (joinable) recorder->ReleaseSearch(key, job->id());
    return queued;
  }
  // Recorded before the caller learns the id, so that any replica finds
  // it; a call job that leads a search, so that other replicas follow it.
  if (job->spec_.retained || joinable) {
    recorder->Created(job);
    job->recorded_ = true;
  }
  return queued;
}

absl::StatusOr<std::shared_ptr<Job>> JobManager::Adopt(
    const std::string& id, JobSpec spec, absl::Time create_time,
    std::shared_ptr<const v1::PartitionUpdate> best) {
  if (!spec.work) return absl::InvalidArgumentError("a job needs work to run");
  absl::MutexLock lock(&mu_);
  if (jobs_.contains(id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("job ", QuoteInput(id), " already runs here"));
  }
  auto job = std::make_shared<Job>(id, std::move(spec), create_time);
  if (best != nullptr) job->Publish(*best, best->from_cache());
  return Enqueue(std::move(job), /*run=*/true, nullptr, clock_.Now());
}

absl::StatusOr<std::shared_ptr<Job>> JobManager::Enqueue(
    std::shared_ptr<Job> job, bool run,
    std::shared_ptr<const v1::PartitionUpdate> cached, absl::Time now) {
  if (draining_) {
    return absl::UnavailableError(
        "the server is shutting down and accepts no new work; retry on "
        "another replica");
  }
  const int workers = static_cast<int>(workers_.size());
  if (run && static_cast<int>(queue_.size()) + running_ >=
                 workers + options_.max_queue) {
    if (events_) events_->OnRejected();
    return absl::ResourceExhaustedError(
        absl::StrFormat("server busy: %d jobs running and %d queued, the limit "
                        "(--workers %d + --max-queue %d); retry later",
                        running_, queue_.size(), workers, options_.max_queue));
  }
  jobs_[job->id()] = job;
  if (cached != nullptr) {
    if (events_) events_->OnCacheHit();
    v1::PartitionUpdate copy = *cached;
    copy.set_samples(0);
    copy.set_elapsed_s(0);
    job->Publish(std::move(copy), /*from_cache=*/true);
  }
  if (!run) {
    job->Finish(WorkResult{"cached", 0, 0}, now);
    if (events_) events_->OnFinished(job->Snapshot(), 0, 0);
    OnJobEnded(job);
  } else {
    queue_.push_back(job);
  }
  ReportLoad();
  return job;
}

absl::StatusOr<std::shared_ptr<Job>> JobManager::Find(
    const std::string& id) const {
  JobRecorder* recorder = nullptr;
  {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it != jobs_.end() && it->second->spec_.retained) return it->second;
    recorder = recorder_;
  }
  if (recorder != nullptr) return recorder->Mirror(id);
  {
    // Jobs live in this process only: a restart loses every one of them.
    return absl::NotFoundError(absl::StrCat(
        "no job ", QuoteInput(id),
        " on this server: unknown, ended more than --job-retention ago or "
        "before the last --max-finished-jobs, or lost when the server "
        "restarted"));
  }
}

void JobManager::Cancel(Job& job, StopCause cause) {
  if (job.remote()) {
    // Another replica runs it: ask its owner through the store.
    if (JobRecorder* recorder = recorder_for_remote()) {
      recorder->RequestCancel(job);
    }
    return;
  }
  absl::MutexLock lock(&mu_);
  CancelLocked(job, cause);
}

void JobManager::Release(Job& job, StopCause cause) {
  if (job.remote()) return;  // a caller never holds another replica's job
  absl::MutexLock lock(&mu_);
  auto it = holders_.find(&job);
  if (it != holders_.end() && --it->second > 0) return;  // a follower's
  CancelLocked(job, cause);
}

void JobManager::CancelLocked(Job& job, StopCause cause) {
  if (EndFollower(job, cause, clock_.Now())) return;
  auto it = std::find_if(
      queue_.begin(), queue_.end(),
      [&](const std::shared_ptr<Job>& j) { return j.get() == &job; });
  if (it != queue_.end()) {
    std::shared_ptr<Job> queued = *it;
    queue_.erase(it);
    queued->RequestStop(cause);
    queued->Finish(WorkResult{"cancelled"}, clock_.Now());
    if (events_) events_->OnFinished(queued->Snapshot(), 0, 0);
    OnJobEnded(queued);
    ReportLoad();
    return;
  }
  job.RequestStop(cause);
}

absl::StatusOr<JobSnapshot> JobManager::Cancel(const std::string& id) {
  absl::StatusOr<std::shared_ptr<Job>> job = Find(id);
  if (!job.ok()) return job.status();
  Cancel(**job, StopCause::kCancelled);
  return (*job)->Snapshot();
}

std::vector<JobSnapshot> JobManager::List(int limit) const {
  if (JobRecorder* recorder = recorder_for_remote()) {
    absl::StatusOr<std::vector<JobSnapshot>> all = recorder->List(limit);
    if (all.ok()) return *std::move(all);
  }
  std::vector<JobSnapshot> out;
  {
    absl::MutexLock lock(&mu_);
    out.reserve(jobs_.size());
    for (const auto& [id, job] : jobs_) {
      if (job->spec_.retained) out.push_back(job->Snapshot());
    }
  }
  std::sort(
      out.begin(), out.end(), [](const JobSnapshot& a, const JobSnapshot& b) {
        return a.create_time != b.create_time ? a.create_time > b.create_time
                                              : a.id > b.id;
      });
  if (limit > 0 && static_cast<int>(out.size()) > limit) out.resize(limit);
  return out;
}

void JobManager::Drain(absl::Duration grace) {
  std::vector<std::shared_ptr<Job>> queued;
  {
    absl::MutexLock lock(&mu_);
    if (draining_) return;
    draining_ = true;
    drain_deadline_ = clock_.Now() + grace;
    queued.assign(queue_.begin(), queue_.end());
  }
  for (const std::shared_ptr<Job>& job : queued) {
    Cancel(*job, StopCause::kShutdown);
  }
}

bool JobManager::WaitIdle(absl::Time deadline) const {
  absl::MutexLock lock(&mu_);
  auto idle = [](const JobManager* m) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return m->queue_.empty() && m->running_ == 0 && m->followers_.empty();
  };
  return mu_.AwaitWithDeadline(
      absl::Condition(+idle, const_cast<const JobManager*>(this)), deadline);
}

bool JobManager::queue_full() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size()) + running_ >=
         static_cast<int>(workers_.size()) + options_.max_queue;
}

int JobManager::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

int JobManager::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

bool JobManager::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

void JobManager::WorkerLoop() {
  auto ready = [](JobManager* m) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return m->stopping_ || !m->queue_.empty();
  };
  while (true) {
    std::shared_ptr<Job> job;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(+ready, this));
      if (queue_.empty()) return;  // stopping
      job = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
      active_.push_back(job);
      ReportLoad();
    }
    RunJob(job);
    {
      absl::MutexLock lock(&mu_);
      --running_;
      active_.erase(std::find(active_.begin(), active_.end(), job));
      OnJobEnded(job);
      ReportLoad();
    }
  }
}

void JobManager::RunJob(const std::shared_ptr<Job>& job) {
  const absl::Time start = clock_.Now();
  job->MarkRunning(start);
  const JobSnapshot started = job->Snapshot();
  if (started.done()) return;
  if (events_) events_->OnStarted(started, start - started.create_time);
  absl::StatusOr<WorkResult> result;
  if (job->continuation_) job->spec_.work = ContinuationWork(job, started);
  if (job->stop_.stop_requested()) {
    result = WorkResult{"cancelled"};
  } else {
    JobContext context(job.get());
    // No exception may cross into the worker loop: it would end the
    // process and every job with it.
    try {
      result = job->spec_.work(context);
    } catch (const std::exception& e) {
      result = absl::InternalError(
          absl::StrCat("the search failed unexpectedly: ", e.what()));
    } catch (...) {
      result = absl::InternalError("the search failed unexpectedly");
    }
  }
  job->spec_.work = nullptr;  // frees the problem and strategy now
  if (result.ok()) job->TightenBound(result->bound_s);
  // Cache before the end becomes visible, so that whoever sees this job
  // end and resubmits its problem finds the placement. Only the work
  // publishes, and it has returned: the best is final.
  CacheResult(*job);
  job->Finish(result, clock_.Now());
  if (events_) {
    events_->OnFinished(job->Snapshot(), result.ok() ? result->samples : 0,
                        result.ok() ? result->elapsed_s : 0);
  }
}

void JobManager::OnJobEnded(const std::shared_ptr<Job>& job) {
  // Quick: the recorder writes from its own thread.
  if (recorder_ != nullptr && (job->spec_.retained || job->recorded_)) {
    recorder_->Ended(job);
  }
  holders_.erase(job.get());
  auto joined = inflight_.find(job->spec_.cache_key);
  if (joined != inflight_.end() && joined->second.job.lock() == job) {
    inflight_.erase(joined);
  }
  if (job->spec_.retained) {
    ended_.push_back(job);
  } else {
    jobs_.erase(job->id());
  }
}

void JobManager::JanitorLoop() {
  auto stopping = [](JobManager* m)
                      ABSL_NO_THREAD_SAFETY_ANALYSIS { return m->stopping_; };
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(+stopping, this),
                               options_.janitor_period)) {
    const absl::Time now = clock_.Now();
    for (const std::shared_ptr<Job>& job : active_) {
      if (draining_ && now >= drain_deadline_) {
        job->RequestStop(StopCause::kShutdown);
      } else if (now >= job->spec_.deadline) {
        job->RequestStop(StopCause::kDeadline);
      }
    }
    // Queued jobs whose deadline passed never start.
    for (auto it = queue_.begin(); it != queue_.end();) {
      std::shared_ptr<Job> job = *it;
      if (now < job->spec_.deadline) {
        ++it;
        continue;
      }
      it = queue_.erase(it);
      job->RequestStop(StopCause::kDeadline);
      job->Finish(WorkResult{"cancelled"}, now);
      if (events_) events_->OnFinished(job->Snapshot(), 0, 0);
      OnJobEnded(job);
      ReportLoad();
    }
    FollowTick(now);
    while (!ended_.empty() &&
           (static_cast<int>(ended_.size()) > options_.max_finished_jobs ||
            ended_.front()->Snapshot().end_time + options_.retention <= now)) {
      jobs_.erase(ended_.front()->id());
      ended_.pop_front();
    }
  }
}

}  // namespace mcmpart::server
