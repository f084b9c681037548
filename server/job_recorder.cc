#include "server/job_recorder.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/log.h"
#include "solver/quote.h"

namespace mcmpart::server {
namespace {

// The job's progress as the store keeps it: budget used counted over every
// replica that ran it.
store::JobProgress ProgressOf(const JobSnapshot& snap, const JobSpec& spec,
                              absl::Time now) {
  store::JobProgress p;
  p.state = JobStateToProto(snap.state);
  p.start_time = snap.start_time;
  p.end_time = snap.end_time;
  if (snap.best) p.best = *snap.best;
  if (snap.final_update) p.final_update = *snap.final_update;
  p.status = snap.status;
  p.end_reason = snap.end_reason;
  const v1::PartitionUpdate* last =
      snap.final_update ? snap.final_update.get() : snap.best.get();
  double elapsed = last ? last->elapsed_s() : 0;
  if (!snap.done() && snap.state == JobState::kRunning) {
    elapsed = absl::ToDoubleSeconds(now - snap.start_time);
  }
  p.elapsed_s = spec.prior_elapsed_s + elapsed;
  p.samples = spec.prior_samples + (last ? last->samples() : 0);
  return p;
}

// An unfinished job handed back by a draining replica: waiting again, with
// its best and the budget it used.
store::JobProgress HandedBack(store::JobProgress p) {
  p.state = v1::Job::QUEUED;
  p.end_time = absl::InfinitePast();
  p.final_update.reset();
  p.status = absl::OkStatus();
  p.end_reason.clear();
  return p;
}

// A stored job that ends without running again (cancelled while its
// replica was gone, or not resumable).
store::JobProgress EndedProgress(store::JobProgress p,
                                 const absl::Status& status,
                                 const std::string& reason) {
  p.end_time = absl::Now();
  p.end_reason = reason;
  v1::PartitionUpdate final_update;
  if (p.best) final_update = *p.best;
  final_update.set_final(true);
  final_update.set_end_reason(reason);
  final_update.set_elapsed_s(p.elapsed_s);
  final_update.set_samples(p.samples);
  p.final_update = final_update;
  if (status.ok() && p.best) {
    p.state = v1::Job::SUCCEEDED;
    p.status = absl::OkStatus();
  } else {
    p.state = absl::IsCancelled(status) ? v1::Job::CANCELLED : v1::Job::FAILED;
    p.status = status.ok() ? absl::CancelledError("cancelled") : status;
  }
  return p;
}

constexpr absl::Duration kPurgePeriod = absl::Seconds(30);
constexpr absl::Duration kStatsPeriod = absl::Seconds(1);

}  // namespace

JobSnapshot SnapshotOf(const store::JobRecord& r) {
  JobSnapshot s;
  s.id = r.id;
  s.state = JobStateFromProto(r.progress.state);
  s.strategy = r.labels.strategy;
  s.graph_name = r.labels.graph_name;
  s.hardware_name = r.labels.hardware_name;
  s.num_nodes = r.labels.num_nodes;
  s.create_time = r.create_time;
  s.start_time = r.progress.start_time;
  s.end_time = r.progress.end_time;
  s.version = r.version;
  if (r.progress.best) {
    s.best = std::make_shared<const v1::PartitionUpdate>(*r.progress.best);
  }
  if (r.done()) {
    s.final_update = std::make_shared<const v1::PartitionUpdate>(
        r.progress.final_update ? *r.progress.final_update
                                : v1::PartitionUpdate());
  }
  s.status = r.progress.status;
  s.end_reason = r.progress.end_reason;
  return s;
}

JobRecorder::JobRecorder(const JobRecorderOptions& options,
                         store::StateStore* store, JobManager* jobs,
                         Resumer resumer, RecorderEvents* events)
    : options_(options),
      store_(store),
      jobs_(jobs),
      resumer_(std::move(resumer)),
      events_(events),
      thread_([this] { Loop(); }) {}

JobRecorder::~JobRecorder() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
  // Subscriptions end before the store does; their callbacks take no lock
  // of ours, so they are destroyed outside it.
  absl::flat_hash_map<std::string, Local> local;
  absl::flat_hash_map<std::string, Remote> remote;
  {
    absl::MutexLock lock(&mu_);
    local.swap(local_);
    remote.swap(remote_);
  }
}

bool JobRecorder::healthy() const {
  absl::MutexLock lock(&mu_);
  return healthy_;
}

void JobRecorder::NoteStatus(const absl::Status& status) {
  const bool unreachable = absl::IsUnavailable(status);
  if (!unreachable && !status.ok() && !absl::IsNotFound(status) &&
      !absl::IsAlreadyExists(status) && !absl::IsFailedPrecondition(status)) {
    return;  // an answer about the data, not the store's health
  }
  bool changed = false;
  {
    absl::MutexLock lock(&mu_);
    changed = healthy_ == unreachable;
    healthy_ = !unreachable;
  }
  if (!changed) return;
  if (unreachable) {
    LogLine("warning", "store_unavailable",
            {{"message", std::string(status.message())},
             {"effect",
              "serving from memory: this replica's jobs only, until the "
              "store returns"}});
  } else {
    LogLine("info", "store_recovered", {{"backend", store_->backend()}});
  }
  if (events_) events_->OnStoreHealth(!unreachable);
}

bool JobRecorder::Create(const std::shared_ptr<Job>& job, Local& local) {
  const JobSnapshot snap = job->Snapshot();
  store::JobRecord record;
  record.id = job->id();
  record.owner = options_.replica;
  record.lease_expiry = absl::Now() + options_.lease_ttl;
  if (job->spec().request) record.request = *job->spec().request;
  record.labels = {snap.strategy, snap.graph_name, snap.hardware_name,
                   snap.num_nodes};
  record.create_time = snap.create_time;
  record.progress = ProgressOf(snap, job->spec(), absl::Now());
  const absl::Status s = store_->CreateJob(record);
  NoteStatus(s);
  if (!s.ok() && !absl::IsAlreadyExists(s)) return false;
  local.created = true;
  local.written_version = snap.version;
  local.lease_renewed = absl::Now();
  return true;
}

void JobRecorder::WatchCancel(const std::string& id, Local& local) {
  std::weak_ptr<Job> weak = local.job;
  JobManager* jobs = jobs_;
  local.cancel_watch =
      store_->Subscribe(id, [weak, jobs](const store::JobRecord& record) {
        if (!record.cancel_requested) return;
        if (std::shared_ptr<Job> job = weak.lock()) {
          jobs->Cancel(*job, StopCause::kCancelled);
        }
      });
}

void JobRecorder::Created(const std::shared_ptr<Job>& job) {
  Local local;
  local.job = job;
  // A call job leaves the manager's table when it ends, and its caller may
  // drop it at once: held here until its end is in the store, so that the
  // replicas following it learn how it ended.
  if (!job->spec().retained) local.hold = job;
  if (Create(job, local)) WatchCancel(job->id(), local);
  absl::MutexLock lock(&mu_);
  local_[job->id()] = std::move(local);
  kicked_ = true;
}

void JobRecorder::Ended(const std::shared_ptr<Job>& job) {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
}

absl::StatusOr<std::shared_ptr<Job>> JobRecorder::Mirror(
    const std::string& id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = remote_.find(id);
    if (it != remote_.end()) {
      if (std::shared_ptr<Job> job = it->second.job.lock()) return job;
    }
  }
  absl::StatusOr<store::JobRecord> record = store_->GetJob(id);
  NoteStatus(record.status());
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(absl::StrCat(
        "no job ", QuoteInput(id),
        ": unknown to every replica, or ended more than --job-retention ago "
        "or before the last --max-finished-jobs"));
  }
  if (!record.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "no job ", QuoteInput(id),
        " on this replica, and the state store, which knows the other "
        "replicas' jobs, is unreachable: ",
        record.status().message()));
  }
  JobSpec spec;
  spec.strategy = record->labels.strategy;
  spec.graph_name = record->labels.graph_name;
  spec.hardware_name = record->labels.hardware_name;
  spec.num_nodes = record->labels.num_nodes;
  auto job = std::make_shared<Job>(id, std::move(spec), record->create_time);
  job->remote_ = true;
  job->Overwrite(SnapshotOf(*record));
  std::weak_ptr<Job> weak = job;
  std::unique_ptr<store::Subscription> subscription =
      store_->Subscribe(id, [weak](const store::JobRecord& changed) {
        if (std::shared_ptr<Job> j = weak.lock()) {
          j->Overwrite(SnapshotOf(changed));
        }
      });
  std::unique_ptr<store::Subscription> discard;
  std::shared_ptr<Job> result;
  {
    absl::MutexLock lock(&mu_);
    Remote& entry = remote_[id];
    if (std::shared_ptr<Job> other = entry.job.lock()) {
      discard = std::move(subscription);  // another caller won
      result = std::move(other);
    } else {
      entry.job = job;
      discard = std::move(entry.subscription);
      entry.subscription = std::move(subscription);
      result = std::move(job);
    }
  }
  discard.reset();  // outside the lock: it waits for its callback
  return result;
}

void JobRecorder::RequestCancel(const Job& remote) {
  NoteStatus(store_->RequestCancel(remote.id()).status());
}

absl::StatusOr<std::vector<JobSnapshot>> JobRecorder::List(int limit) {
  store::ListJobsOptions options;
  options.limit = limit;
  absl::StatusOr<std::vector<store::JobRecord>> records =
      store_->ListJobs(options);
  NoteStatus(records.status());
  if (!records.ok()) return records.status();
  std::vector<JobSnapshot> out;
  out.reserve(records->size());
  bool hidden = false;
  for (const store::JobRecord& r : *records) {
    // Call jobs are in the store for their followers, not for listings.
    if (IsCallJobId(r.id)) {
      hidden = true;
      continue;
    }
    out.push_back(SnapshotOf(r));
  }
  // A page short by the hidden ones: the whole list, cut to the limit.
  if (hidden && limit > 0 && static_cast<int>(out.size()) < limit) {
    absl::StatusOr<std::vector<JobSnapshot>> all = List(0);
    if (!all.ok()) return all.status();
    if (static_cast<int>(all->size()) > limit) all->resize(limit);
    return all;
  }
  return out;
}

std::string JobRecorder::ClaimSearch(const std::string& key,
                                     const std::string& job_id) {
  absl::StatusOr<store::SearchClaim> claim =
      store_->ClaimSearch(key, job_id, options_.replica, options_.lease_ttl);
  NoteStatus(claim.status());
  if (!claim.ok() || claim->owned) return "";
  return claim->job_id;
}

void JobRecorder::ReleaseSearch(const std::string& key,
                                const std::string& job_id) {
  NoteStatus(store_->ReleaseSearch(key, job_id));
}

std::shared_ptr<const v1::PartitionUpdate> JobRecorder::CacheGet(
    const std::string& key) {
  absl::StatusOr<std::optional<store::CacheEntry>> entry =
      store_->CacheGet(key);
  NoteStatus(entry.status());
  if (!entry.ok() || !entry->has_value()) return nullptr;
  if (events_) events_->OnSharedCacheHit();
  return std::make_shared<const v1::PartitionUpdate>((*entry)->best);
}

void JobRecorder::CachePut(const std::string& key,
                           const v1::PartitionUpdate& best) {
  NoteStatus(store_->CachePut(key, best).status());
}

bool JobRecorder::Write(const std::string& id, Local& local, absl::Time now) {
  std::shared_ptr<Job> job = local.hold ? local.hold : local.job.lock();
  if (job == nullptr) return false;
  if (!local.created) {
    if (!Create(job, local)) return true;  // the store is down: later
    WatchCancel(id, local);
  }
  const JobSnapshot snap = job->Snapshot();
  store::JobProgress progress = ProgressOf(snap, job->spec(), now);
  const std::string& claim_key = job->spec().cache_key;
  if (snap.done()) {
    if (!claim_key.empty()) store_->ReleaseSearch(claim_key, id).IgnoreError();
    // A drain stopped it: another replica finishes it. Not a call job: its
    // caller is gone with this replica (its followers continue it).
    const bool hand_back =
        snap.end_reason == "shutdown" && job->spec().retained;
    if (hand_back) progress = HandedBack(std::move(progress));
    absl::Status s = store_->UpdateJob(id, options_.replica, progress).status();
    if (s.ok() && hand_back) s = store_->ReleaseLease(id, options_.replica);
    NoteStatus(s);
    return absl::IsUnavailable(s);  // forget it unless the write must retry
  }
  const bool renew = now - local.lease_renewed >= options_.lease_ttl / 3;
  // Also on each renewal, so that the budget used is current in the store
  // should this replica die.
  if (snap.version != local.written_version || renew) {
    absl::StatusOr<uint64_t> v =
        store_->UpdateJob(id, options_.replica, progress);
    NoteStatus(v.status());
    if (absl::IsFailedPrecondition(v.status()) ||
        absl::IsNotFound(v.status())) {
      // Another replica took the job over (our lease lapsed): stop here.
      jobs_->Cancel(*job, StopCause::kShutdown);
      return false;
    }
    if (v.ok()) local.written_version = snap.version;
  }
  if (renew) {
    absl::StatusOr<store::LeaseInfo> lease =
        store_->RenewLease(id, options_.replica, options_.lease_ttl);
    NoteStatus(lease.status());
    if (!claim_key.empty()) {
      store_->RenewSearch(claim_key, id, options_.replica, options_.lease_ttl)
          .IgnoreError();
    }
    if (lease.ok()) {
      local.lease_renewed = now;
      if (lease->cancel_requested) jobs_->Cancel(*job, StopCause::kCancelled);
    }
  }
  return true;
}

void JobRecorder::WriteChanges(absl::Time now) {
  // The entries are taken out while the store is called (a call may wait
  // for the network), and put back after.
  absl::flat_hash_map<std::string, Local> work;
  {
    absl::MutexLock lock(&mu_);
    work.swap(local_);
  }
  std::vector<std::unique_ptr<store::Subscription>> ended;
  for (auto it = work.begin(); it != work.end();) {
    if (Write(it->first, it->second, now)) {
      ++it;
    } else {
      ended.push_back(std::move(it->second.cancel_watch));
      work.erase(it++);
    }
  }
  ended.clear();
  absl::MutexLock lock(&mu_);
  // Jobs created meanwhile went into the (then empty) map.
  for (auto& [id, local] : local_) work[id] = std::move(local);
  local_.swap(work);
}

void JobRecorder::Resume(store::JobRecord record) {
  const std::string id = record.id;
  absl::StatusOr<JobSpec> spec = resumer_(record);
  if (!spec.ok()) {
    NoteStatus(
        store_
            ->UpdateJob(id, options_.replica,
                        EndedProgress(record.progress, spec.status(), "error"))
            .status());
    return;
  }
  std::shared_ptr<const v1::PartitionUpdate> best;
  if (record.progress.best) {
    best = std::make_shared<const v1::PartitionUpdate>(*record.progress.best);
  }
  absl::StatusOr<std::shared_ptr<Job>> job =
      jobs_->Adopt(id, *std::move(spec), record.create_time, std::move(best));
  if (!job.ok()) {
    // Busy or draining: let another replica take it at once.
    NoteStatus(store_->ReleaseLease(id, options_.replica));
    return;
  }
  if (events_) events_->OnJobResumed();
  LogLine("info", "job_resumed",
          {{"job", id},
           {"elapsed_s", record.progress.elapsed_s},
           {"previous_owner_lease_ended", true}});
  Local local;
  local.job = *job;
  local.created = true;
  local.lease_renewed = absl::Now();
  WatchCancel(id, local);
  absl::MutexLock lock(&mu_);
  local_[id] = std::move(local);
}

void JobRecorder::ClaimOrphans() {
  if (jobs_->draining() || jobs_->queue_full()) return;
  absl::StatusOr<std::vector<store::JobRecord>> orphans =
      store_->ClaimOrphans(options_.replica, options_.lease_ttl, 2);
  NoteStatus(orphans.status());
  if (!orphans.ok()) return;
  for (store::JobRecord& record : *orphans) {
    if (events_) events_->OnLeaseExpired();
    if (IsCallJobId(record.id)) {
      // A call job's caller was connected to the replica that died: nobody
      // waits for its answer but its followers, which continue the search
      // themselves once it has ended.
      NoteStatus(store_
                     ->UpdateJob(record.id, options_.replica,
                                 EndedProgress(record.progress,
                                               absl::UnavailableError(
                                                   "the replica running "
                                                   "this call went away"),
                                               "shutdown"))
                     .status());
      continue;
    }
    if (record.cancel_requested) {
      NoteStatus(
          store_
              ->UpdateJob(record.id, options_.replica,
                          EndedProgress(record.progress,
                                        absl::CancelledError(absl::StrCat(
                                            "job ", record.id,
                                            " was cancelled while no replica "
                                            "ran it")),
                                        "cancelled"))
              .status());
      continue;
    }
    Resume(std::move(record));
  }
}

void JobRecorder::Purge() {
  NoteStatus(store_->PurgeEnded(options_.retention, options_.max_finished_jobs)
                 .status());
  // Followed jobs nobody holds any more.
  std::vector<std::unique_ptr<store::Subscription>> dropped;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = remote_.begin(); it != remote_.end();) {
      if (it->second.job.expired()) {
        dropped.push_back(std::move(it->second.subscription));
        remote_.erase(it++);
      } else {
        ++it;
      }
    }
  }
}

void JobRecorder::Flush() { WriteChanges(absl::Now()); }

bool JobRecorder::Wakeable() const { return stopping_ || kicked_; }

void JobRecorder::Loop() {
  absl::Time next_orphans = absl::Now() + options_.orphan_period;
  absl::Time next_purge = absl::Now();
  absl::Time next_stats = absl::Now();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(this, &JobRecorder::Wakeable),
                           options_.write_period);
      if (stopping_) return;
      kicked_ = false;
    }
    const absl::Time now = absl::Now();
    WriteChanges(now);
    if (now >= next_orphans) {
      ClaimOrphans();
      next_orphans = now + options_.orphan_period;
    }
    if (now >= next_purge) {
      Purge();
      next_purge = now + kPurgePeriod;
    }
    if (now >= next_stats) {
      // A round trip even when idle, so that health tells the truth.
      NoteStatus(store_->Ping());
      if (events_) events_->OnStoreStats(store_->Stats());
      next_stats = now + kStatsPeriod;
    }
  }
}

}  // namespace mcmpart::server
