#include "server/job_manager.h"

#include <algorithm>
#include <exception>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/job_recorder.h"
#include "solver/bound.h"
#include "solver/quote.h"

namespace mcmpart::server {
namespace {

// The cache key of a problem's proved optimum (any strategy).
std::string ProvedKey(const std::string& problem_key) {
  return absl::StrCat("proved/", problem_key);
}

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

std::string JobManager::NewId() {
  // Unique within the process and hard to guess across restarts, so that a
  // stale id from an earlier run reports NOT_FOUND rather than another job.
  return absl::StrFormat("job-%08x-%d",
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

std::shared_ptr<const v1::PartitionUpdate> JobManager::CachedBest(
    const JobSpec& spec) {
  JobRecorder* recorder = nullptr;
  {
    absl::MutexLock lock(&mu_);
    // A proved optimum answers for every strategy; nothing can improve it.
    std::shared_ptr<const v1::PartitionUpdate> cached =
        spec.problem_key.empty() ? nullptr
                                 : CacheLookup(ProvedKey(spec.problem_key));
    if (cached == nullptr && !spec.cache_key.empty()) {
      cached = CacheLookup(spec.cache_key);
    }
    if (cached != nullptr) return cached;
    recorder = recorder_;
  }
  if (recorder == nullptr) return nullptr;
  // The store's cache (shared by the replicas), outside the lock: a call
  // may take a network round trip.
  std::shared_ptr<const v1::PartitionUpdate> shared =
      spec.problem_key.empty()
          ? nullptr
          : recorder->CacheGet(ProvedKey(spec.problem_key));
  if (shared == nullptr && !spec.cache_key.empty()) {
    shared = recorder->CacheGet(spec.cache_key);
  }
  return shared;
}

absl::StatusOr<std::shared_ptr<Job>> JobManager::Submit(JobSpec spec) {
  if (!spec.work) return absl::InvalidArgumentError("a job needs work to run");
  std::shared_ptr<const v1::PartitionUpdate> cached = CachedBest(spec);
  const bool run =
      cached == nullptr ||
      (spec.keep_improving && !cached->evaluation().proved_optimal());
  JobRecorder* recorder = recorder_for_remote();
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = NewId();
  }
  // A job whose problem another job is already searching, on any replica,
  // joins that search: the caller gets that job. Only retained jobs (those
  // in the store) lead; a plain call joins one or runs its own.
  if (recorder != nullptr && run && !spec.cache_key.empty()) {
    const std::string leader = recorder->ClaimSearch(spec.cache_key, id);
    // A plain call has no record for others to join: it only looks.
    if (leader.empty() && !spec.retained) {
      recorder->ReleaseSearch(spec.cache_key, id);
    }
    if (!leader.empty()) {
      // The leader records its job just after it claims the search: a
      // joiner that came in between waits for the record briefly.
      const absl::Time until = absl::Now() + absl::Seconds(2);
      absl::StatusOr<std::shared_ptr<Job>> joined = Find(leader);
      while (absl::IsNotFound(joined.status()) && absl::Now() < until) {
        absl::SleepFor(absl::Milliseconds(10));
        joined = Find(leader);
      }
      if (joined.ok()) return joined;
    }
  }
  absl::StatusOr<std::shared_ptr<Job>> job;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    job = Enqueue(std::make_shared<Job>(id, std::move(spec), now), run,
                  std::move(cached), now);
  }
  // Recorded before the caller learns the id, so that any replica finds it.
  if (job.ok() && recorder != nullptr && (*job)->spec_.retained) {
    recorder->Created(*job);
  }
  return job;
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
    return m->queue_.empty() && m->running_ == 0;
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
  if (!job->spec_.cache_key.empty()) {
    std::shared_ptr<const v1::PartitionUpdate> best = job->Snapshot().best;
    if (best && !best->from_cache()) {
      const bool proved = best->evaluation().proved_optimal() &&
                          !job->spec_.problem_key.empty();
      JobRecorder* recorder = recorder_for_remote();
      if (recorder != nullptr) {
        if (proved)
          recorder->CachePut(ProvedKey(job->spec_.problem_key), *best);
        recorder->CachePut(job->spec_.cache_key, *best);
      }
      absl::MutexLock lock(&mu_);
      if (proved) CacheStore(ProvedKey(job->spec_.problem_key), best);
      CacheStore(job->spec_.cache_key, std::move(best));
    }
  }
  job->Finish(result, clock_.Now());
  if (events_) {
    events_->OnFinished(job->Snapshot(), result.ok() ? result->samples : 0,
                        result.ok() ? result->elapsed_s : 0);
  }
}

void JobManager::OnJobEnded(const std::shared_ptr<Job>& job) {
  // Quick: the recorder writes from its own thread.
  if (recorder_ != nullptr && job->spec_.retained) recorder_->Ended(job);
  if (job->spec_.retained) {
    ended_.push_back(job);
  } else {
    jobs_.erase(job->id());
  }
}

std::shared_ptr<const v1::PartitionUpdate> JobManager::CacheLookup(
    const std::string& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.best;
}

void JobManager::CacheStore(const std::string& key,
                            std::shared_ptr<const v1::PartitionUpdate> best) {
  if (options_.cache_entries <= 0) return;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    if (best->evaluation().throughput_per_s() >
        it->second.best->evaluation().throughput_per_s()) {
      it->second.best = std::move(best);
    }
    return;
  }
  lru_.push_front(key);
  cache_[key] = CacheEntry{std::move(best), lru_.begin()};
  while (static_cast<int>(cache_.size()) > options_.cache_entries) {
    cache_.erase(lru_.back());
    lru_.pop_back();
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
    while (!ended_.empty() &&
           (static_cast<int>(ended_.size()) > options_.max_finished_jobs ||
            ended_.front()->Snapshot().end_time + options_.retention <= now)) {
      jobs_.erase(ended_.front()->id());
      ended_.pop_front();
    }
  }
}

}  // namespace mcmpart::server
