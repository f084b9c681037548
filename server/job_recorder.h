// The bridge between the job manager and a state store (store/store.h):
// every retained job of this replica is recorded in the store as it runs, so
// that any replica answers GetJob, ListJobs, WatchJob and CancelJob for it;
// jobs whose owner died (its lease lapsed) are claimed and resumed here; a
// draining replica hands its unfinished jobs back instead of ending them;
// the result cache is shared.
//
// The store may be unreachable (Redis down): the job manager then serves
// from its own memory (this replica's jobs only), the recorder says so in
// its stats and logs, and writes what it missed when the store returns.
#ifndef MCMPART_SERVER_JOB_RECORDER_H_
#define MCMPART_SERVER_JOB_RECORDER_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/job_manager.h"
#include "server/store/store.h"

namespace mcmpart::server {

struct JobRecorderOptions {
  // This replica's name in the store (unique among the replicas: the pod
  // name, or host:pid).
  std::string replica;
  // A job's lease: renewed every lease_ttl / 3 while this replica runs it;
  // another replica resumes the job once the lease has lapsed.
  absl::Duration lease_ttl = absl::Seconds(10);
  // How often changes of running jobs are written, and orphans looked for.
  absl::Duration write_period = absl::Milliseconds(100);
  absl::Duration orphan_period = absl::Seconds(2);
  // Ended jobs are purged from the store after this, and beyond this many.
  absl::Duration retention = absl::Hours(1);
  int max_finished_jobs = 1000;
};

// Observes the recorder for metrics. Thread-safe, quick.
class RecorderEvents {
 public:
  virtual ~RecorderEvents() = default;
  virtual void OnStoreHealth(bool healthy) {}
  virtual void OnJobResumed() {}
  // A job found with its lease lapsed (its replica died or was drained).
  virtual void OnLeaseExpired() {}
  virtual void OnSharedCacheHit() {}
  virtual void OnStoreStats(const store::StoreStats& stats) {}
};

// Turns a stored job into the spec that resumes it (the engine's
// PrepareResume): the request, the budget left, the best so far as the
// strategy's starting point.
using Resumer = std::function<absl::StatusOr<JobSpec>(const store::JobRecord&)>;

// Thread-safe. `store`, `jobs` and `events` (may be null) must outlive it.
// Calls the store from its own thread for everything the job manager must
// not wait for.
class JobRecorder {
 public:
  JobRecorder(const JobRecorderOptions& options, store::StateStore* store,
              JobManager* jobs, Resumer resumer, RecorderEvents* events);
  ~JobRecorder();
  JobRecorder(const JobRecorder&) = delete;
  JobRecorder& operator=(const JobRecorder&) = delete;

  // For the job manager (job_manager.h). Created is synchronous (the job is
  // in the store when the caller learns its id, unless the store is down:
  // then it is written when the store returns); Ended only notes the job.
  // A call job (not retained: one that leads a search others may follow)
  // is held until its end is written; listings leave it out, and when its
  // replica dies, the replica that finds it ends it ("shutdown") instead of
  // resuming it.
  void Created(const std::shared_ptr<Job>& job);
  void Ended(const std::shared_ptr<Job>& job);
  // A job of any replica, followed through the store while someone holds
  // the returned Job. NOT_FOUND when the store does not know it;
  // UNAVAILABLE when the store cannot be reached.
  absl::StatusOr<std::shared_ptr<Job>> Mirror(const std::string& id);
  void RequestCancel(const Job& remote);
  absl::StatusOr<std::vector<JobSnapshot>> List(int limit);
  // In-flight joins: the id of the job already searching `key` on some
  // replica (whose claim has not lapsed), or empty when `job_id` may search
  // it (the claim is then this job's until it ends; renewed with its
  // lease). Empty too while the store is unreachable.
  std::string ClaimSearch(const std::string& key, const std::string& job_id);
  void ReleaseSearch(const std::string& key, const std::string& job_id);
  std::shared_ptr<const v1::PartitionUpdate> CacheGet(const std::string& key);
  void CachePut(const std::string& key, const v1::PartitionUpdate& best);

  // Writes every pending change now (at shutdown, after the drain, so that
  // handed-back jobs are in the store before the process ends).
  void Flush();

  // Whether the last store call succeeded.
  bool healthy() const;
  const std::string& replica() const { return options_.replica; }

 private:
  // One job of this replica, as last written.
  struct Local {
    std::weak_ptr<Job> job;
    // A call job, held until its end is written.
    std::shared_ptr<Job> hold;
    bool created = false;  // CreateJob succeeded
    uint64_t written_version = 0;
    absl::Time lease_renewed = absl::InfinitePast();
    std::unique_ptr<store::Subscription> cancel_watch;
  };
  struct Remote {
    std::weak_ptr<Job> job;
    std::unique_ptr<store::Subscription> subscription;
  };

  void Loop();
  void WriteChanges(absl::Time now);
  void ClaimOrphans();
  void Purge();
  // Writes one local job's state; returns false to forget it.
  bool Write(const std::string& id, Local& local, absl::Time now);
  bool Create(const std::shared_ptr<Job>& job, Local& local);
  void Resume(store::JobRecord record);
  void WatchCancel(const std::string& id, Local& local);
  void NoteStatus(const absl::Status& status);
  bool Wakeable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const JobRecorderOptions options_;
  store::StateStore* const store_;
  JobManager* const jobs_;
  const Resumer resumer_;
  RecorderEvents* const events_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool healthy_ ABSL_GUARDED_BY(mu_) = true;
  absl::flat_hash_map<std::string, Local> local_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Remote> remote_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts once the rest exists
};

// The API's view of a stored job.
JobSnapshot SnapshotOf(const store::JobRecord& record);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_JOB_RECORDER_H_
