// The job manager: a bounded queue, a fixed pool of worker threads, the job
// table with retention, deadlines, cancellation and the result cache.
//
// It runs opaque work functions and keeps, per job, the best update the work
// published. It has no gRPC types and no knowledge of the solver, so that it
// is tested without a network; the service layer turns calls into jobs and
// job snapshots into messages, and the engine supplies the work.
//
// Every search the server runs is a job: SubmitJob's jobs are retained
// after they end (for WatchJob/GetJob/ListJobs), Partition's ("call jobs")
// are dropped from the table when they end.
//
// In-flight joins (JobManagerOptions::join_searches, on by default).
// A problem (JobSpec::cache_key) is searched once at a time, however many
// requests ask for it, on this replica and, with a recorder, on every
// replica sharing the store:
//  * the first request's job leads: it claims the key (in the store too)
//    and is recorded there, a call job as well (under an id starting with
//    kCallJobIdPrefix, hidden from listings) so that other replicas can
//    follow it;
//  * a later request for a submitted job's search gets that job itself;
//  * a later request for a call job's search gets a follower: a job of its
//    own that runs no search while it copies the leader's progress, and
//    ends with the leader's final result.
// A call job is held by its caller and by each follower on this replica;
// its caller going away cancels it only when nobody else holds it. When a
// leader ends before its own budget (its caller went away, its deadline
// passed, or its replica drained or died: end reason "cancelled",
// "deadline" or "shutdown"), a follower that still has budget and time
// before its own deadline continues the search itself, from the leader's
// best (JobSpec::restart), with what is left of its own budget. A follower
// thus never ends with less than the leader's best; its own deadline,
// cancel and drain apply to it as to any job.
#ifndef MCMPART_SERVER_JOB_MANAGER_H_
#define MCMPART_SERVER_JOB_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "server/clock.h"
#include "solver/strategy.h"

namespace mcmpart::server {

enum class JobState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
absl::string_view JobStateName(JobState state);
// The API's state (mcmpart.v1.Job.State, also the state store's) and back;
// an unknown API state reads as queued.
v1::Job::State JobStateToProto(JobState state);
JobState JobStateFromProto(v1::Job::State state);

// Why a job was asked to stop before its work ended on its own.
enum class StopCause { kNone, kCancelled, kDeadline, kShutdown };

class Job;
class JobRecorder;

// What a work function sees of its job. Used by the worker thread only.
class JobContext {
 public:
  explicit JobContext(Job* job) : job_(job) {}

  // Set when the job is cancelled, passes its deadline or the server drains;
  // the work must return within 100 ms of it.
  const StopToken& stop() const;
  // The job's deadline (InfiniteFuture when none): work clamps its own
  // budget to it so that it usually ends before the stop is needed.
  absl::Time deadline() const;
  // Throughput of the job's best so far (a cached one counts); 0 when none.
  // Lets the work skip building updates that Publish would drop.
  double best_throughput() const;
  // Offers a new best. Kept (and watchers woken) only when its
  // evaluation().throughput_per_s() is strictly greater than the best so
  // far, so a job's updates strictly improve. Returns whether it was kept.
  bool Publish(v1::PartitionUpdate update);

 private:
  Job* job_;
};

// How the work ended when it returns normally. An error status from the
// work instead fails the job (e.g. FAILED_PRECONDITION for an infeasible
// instance found during the search).
struct WorkResult {
  // "budget", "converged" or "cancelled" (the manager replaces "cancelled"
  // by the stop cause: "cancelled", "deadline" or "shutdown").
  std::string end_reason = "budget";
  int64_t samples = 0;
  double elapsed_s = 0;
  // A proved lower bound on the bottleneck (seconds) that the search
  // established by its end (the exact search's); 0 = none. The manager puts
  // it into the best placement's evaluation (solver/bound.h, TightenBound),
  // so that the final update and the cache say how good the answer is.
  double bound_s = 0;
};
using JobWork = std::function<absl::StatusOr<WorkResult>(JobContext&)>;

struct JobSpec {
  // The request the job runs (retained jobs: a state store keeps it, so
  // that another replica can resume the job). May be null.
  std::shared_ptr<const v1::PartitionRequest> request;
  // Budget a resumed job had used on earlier replicas, added to what this
  // run reports (0 for a new job).
  double prior_elapsed_s = 0;
  int64_t prior_samples = 0;
  // Runs on a worker thread. Must not throw (a thrown exception fails the
  // job with INTERNAL) and must honour JobContext::stop().
  JobWork work;
  // Labels for listings and logs.
  std::string strategy;
  std::string graph_name;
  std::string hardware_name;
  int num_nodes = 0;
  // Identity of the problem and strategy for the result cache; empty = do
  // not cache.
  std::string cache_key;
  // Identity of the problem alone. A placement proved optimal is cached
  // under it too: it answers every later request for the problem, whatever
  // the strategy, and ends it at once (nothing better exists).
  std::string problem_key;
  // The work's time budget, for a follower that continues a search: it
  // spends what is left of it (InfiniteDuration = unknown).
  absl::Duration time_budget = absl::InfiniteDuration();
  // The same search built again, starting from `warm` (may be null), with
  // `time_left` of time budget and `samples_used` counted against a
  // samples budget: how a follower continues when its leader stopped
  // early. Null: the follower runs `work` as it is.
  std::function<absl::StatusOr<JobWork>(const v1::Placement* warm,
                                        absl::Duration time_left,
                                        int64_t samples_used)>
      restart;
  // On a cache hit: true runs the work anyway (publishing only better
  // placements), false ends the job at once with end_reason "cached".
  bool keep_improving = false;
  // The job is stopped (end_reason "deadline") when it passes this.
  absl::Time deadline = absl::InfiniteFuture();
  // false: drop the job from the table when it ends (plain calls).
  bool retained = true;
};

// Ids of call jobs (Partition) start with this, those of submitted jobs
// with "job-": a call job is in the store only so that other replicas can
// follow its search, and listings leave it out.
inline constexpr absl::string_view kCallJobIdPrefix = "call-";
bool IsCallJobId(absl::string_view id);

// A consistent copy of a job's state. Cheap: the updates are shared.
struct JobSnapshot {
  std::string id;
  JobState state = JobState::kQueued;
  std::string strategy, graph_name, hardware_name;
  int num_nodes = 0;
  absl::Time create_time, start_time = absl::InfinitePast(),
                          end_time = absl::InfinitePast();
  // Increases on every change; WaitForChange compares against it.
  uint64_t version = 0;
  // The version at which `best` was last replaced.
  uint64_t best_version = 0;
  std::shared_ptr<const v1::PartitionUpdate> best;  // null when none yet
  // Set once the job has ended: the best (if any) with final = true and the
  // end reason, samples and elapsed time of the whole run.
  std::shared_ptr<const v1::PartitionUpdate> final_update;
  // OK when the job ended with a valid placement.
  absl::Status status;
  std::string end_reason;

  bool done() const { return final_update != nullptr; }
};

// One job. Thread-safe. Owned jointly by the manager's table and whoever
// watches it; outlives the manager only as a read-only record.
class Job {
 public:
  Job(std::string id, JobSpec spec, absl::Time now);
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  const std::string& id() const { return id_; }
  // True for a job of another replica, seen through the state store (its
  // snapshot follows the store; cancelling it asks the owner).
  bool remote() const { return remote_; }
  const JobSpec& spec() const { return spec_; }
  JobSnapshot Snapshot() const;
  // Snapshot().version without the copy, for watchers that poll.
  uint64_t version() const;
  // Blocks until the version differs from `seen_version`, or for `timeout`;
  // returns the snapshot either way. Watchers poll their own cancellation
  // between calls.
  JobSnapshot WaitForChange(uint64_t seen_version,
                            absl::Duration timeout) const;

 private:
  friend class JobContext;
  friend class JobManager;
  friend class JobRecorder;

  // A remote job's state as the store reports it (version bumped so that
  // watchers see the change).
  void Overwrite(JobSnapshot snap);

  // Asks the running work to stop; the first cause wins. Returns whether
  // this call set it.
  bool RequestStop(StopCause cause);
  StopCause stop_cause() const;
  // Ended, or asked to stop: no longer one to join.
  bool ending() const;
  bool Publish(v1::PartitionUpdate update, bool from_cache);
  // Puts a proved bound (seconds, see WorkResult::bound_s) into the best
  // placement's evaluation; no new update for watchers (the final one
  // carries it).
  void TightenBound(double bound_s);
  void MarkRunning(absl::Time now);
  // Ends the job; idempotent (the first call wins).
  void Finish(absl::StatusOr<WorkResult> result, absl::Time now);

  const std::string id_;
  bool remote_ = false;
  JobSpec spec_;  // work is released once the job has ended
  StopToken stop_;
  // In the store (JobRecorder::Created), for the end to be written.
  std::atomic<bool> recorded_{false};
  // A follower queued to continue its leader's search (set by the manager
  // under its lock before the job is queued).
  bool continuation_ = false;

  mutable absl::Mutex mu_;
  StopCause cause_ ABSL_GUARDED_BY(mu_) = StopCause::kNone;
  JobSnapshot snap_ ABSL_GUARDED_BY(mu_);
  double best_throughput_ ABSL_GUARDED_BY(mu_) = 0;
};

struct JobManagerOptions {
  // Jobs running at once (worker threads).
  int workers = 2;
  // Jobs waiting for a worker; Submit fails with RESOURCE_EXHAUSTED beyond.
  int max_queue = 16;
  // Ended retained jobs are kept this long, and at most this many.
  absl::Duration retention = absl::Hours(1);
  int max_finished_jobs = 1000;
  // Problems the result cache remembers (least recently used goes first);
  // 0 disables the cache.
  int cache_entries = 256;
  // How often deadlines and retention are checked; bounds how late a
  // deadline stop can be on top of the work's own 100 ms.
  absl::Duration janitor_period = absl::Milliseconds(10);
  // In-flight joins (above): a request for a problem a job already
  // searches gets that search. false: every request searches on its own,
  // with or without a recorder (an embedder that wants each request
  // measured or run apart).
  bool join_searches = true;
  // Where job times, deadlines and retention are read; null = RealClock().
  // Must outlive the manager.
  const Clock* clock = nullptr;
};

// Observes the manager for metrics and logs. Called from the manager's
// threads, sometimes with its locks held: implementations must be quick,
// thread-safe and must not call back into the manager.
class JobEvents {
 public:
  virtual ~JobEvents() = default;
  virtual void OnRejected() {}
  virtual void OnCacheHit() {}
  // A request that got a search already running, on this replica or
  // (through the store) on another.
  virtual void OnJoined() {}
  virtual void OnLoad(int queued, int running) {}
  virtual void OnStarted(const JobSnapshot& job, absl::Duration waited) {}
  // `samples` and `elapsed_s` of the whole run (0 when it never ran).
  virtual void OnFinished(const JobSnapshot& job, int64_t samples,
                          double elapsed_s) {}
};

class JobManager {
 public:
  // Starts the workers and the janitor. `events` may be null; it must
  // outlive the manager.
  JobManager(const JobManagerOptions& options, JobEvents* events);
  // Stops every job (cause kShutdown) and joins the threads.
  ~JobManager();
  JobManager(const JobManager&) = delete;
  JobManager& operator=(const JobManager&) = delete;

  // Records every retained job in a state store (job_recorder.h) from now
  // on, and answers for jobs of other replicas through it. Call once,
  // before the first Submit; `recorder` must outlive the manager's use.
  void SetRecorder(JobRecorder* recorder);

  // Queues a job of the store under its own id (a resumed job; see
  // JobRecorder): like Submit, without the cache and the recording of a new
  // job; `best` (may be null) is published first, so that its watchers
  // never see a worse placement. Errors: those of Submit.
  absl::StatusOr<std::shared_ptr<Job>> Adopt(
      const std::string& id, JobSpec spec, absl::Time create_time,
      std::shared_ptr<const v1::PartitionUpdate> best);

  // Queues a job and returns it at once. On a cache hit the job already
  // holds the cached placement (and, without keep_improving, has ended).
  // When a job already searches the problem (see "In-flight joins" above)
  // it returns that job (a submitted one, maybe of another replica) or a
  // follower of it (a call job's); a follower is retained as `spec` says.
  // A call job (retained = false) that is returned is held once by the
  // caller: give it back with Release.
  // Errors: RESOURCE_EXHAUSTED when the queue is full (the message gives the
  // limit); UNAVAILABLE after Drain; INVALID_ARGUMENT without work.
  absl::StatusOr<std::shared_ptr<Job>> Submit(JobSpec spec);

  // The caller of a call job went away (`cause`: kCancelled or
  // kDeadline): cancels the job unless a follower still holds it, in which
  // case it runs on for the follower. For any other job, Cancel.
  void Release(Job& job, StopCause cause);

  // NOT_FOUND for an id that is unknown or no longer retained. Without a
  // recorder jobs are kept in memory (a restarted server knows none of its
  // earlier ones); with one, a job of another replica (or of this one before
  // a restart) is found in the store and returned as a remote job.
  absl::StatusOr<std::shared_ptr<Job>> Find(const std::string& id) const;

  // Stops a job: a queued one ends at once, a running one within 100 ms.
  // Ending jobs is not an error.
  void Cancel(Job& job, StopCause cause = StopCause::kCancelled);
  absl::StatusOr<JobSnapshot> Cancel(const std::string& id);

  // Retained jobs, newest first, at most `limit` (0 = all); with a
  // recorder those of every replica (this server's alone while the store is
  // unreachable).
  std::vector<JobSnapshot> List(int limit = 0) const;

  // Refuses new jobs from now on, ends queued jobs (end_reason "shutdown")
  // and gives running jobs until now + `grace` before they are stopped with
  // their best placement. A job that the drain ends without any valid
  // placement (every queued one) ends with UNAVAILABLE, the answer that
  // tells a client to retry on another replica. Returns at once; see
  // WaitIdle.
  void Drain(absl::Duration grace);
  // Waits until no job is queued, running or following, or `deadline`;
  // returns whether the manager is idle.
  bool WaitIdle(absl::Time deadline) const;

  int queued() const;
  // Whether Submit would refuse a job that needs a worker now.
  bool queue_full() const;
  int running() const;
  bool draining() const;

 private:
  void WorkerLoop();
  void JanitorLoop();
  void RunJob(const std::shared_ptr<Job>& job);
  // After a job ended: table and retention bookkeeping.
  void OnJobEnded(const std::shared_ptr<Job>& job)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Offers a job's final best to both caches (this process's and the
  // store's).
  void CacheResult(const Job& job);
  void CacheStore(const std::string& key,
                  std::shared_ptr<const v1::PartitionUpdate> best)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<const v1::PartitionUpdate> CacheLookup(const std::string& key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NewId(bool retained) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelLocked(Job& job, StopCause cause)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // In-flight joins (job_joins.cc).
  struct Follower {
    std::shared_ptr<Job> job;
    std::shared_ptr<Job> leader;  // a local job or a mirror of the store's
    uint64_t seen_version = 0;
  };
  // A local search `spec` can join: the job itself (a submitted one) or a
  // new follower of it (then `*follows` is set and `spec` moved from); null
  // when none runs.
  std::shared_ptr<Job> JoinLocal(JobSpec& spec, absl::Time now, bool* follows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Claims `job`'s search in the store; when another replica's job holds
  // it, returns that job (submitted) or `job` made its follower (a call
  // job's). Null: `job` searches.
  std::shared_ptr<Job> JoinRemote(const std::shared_ptr<Job>& job,
                                  JobRecorder& recorder);
  // Blocks while the claim of `key` is being asked of the store.
  void AwaitResolved(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Follow(const std::shared_ptr<Job>& job, std::shared_ptr<Job> leader,
              absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One janitor pass over the followers.
  void FollowTick(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Copies the leader's progress; returns true when the follower is done
  // following (ended, or queued to continue).
  bool FollowStep(Follower& f, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LeaderEnded(Follower& f, const JobSnapshot& leader, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a follower that is still following (cancel, deadline, drain);
  // returns false when `job` is none.
  bool EndFollower(Job& job, StopCause cause, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A follower lets go of its leader; the leader's last holder going
  // cancels it.
  void Detach(const std::shared_ptr<Job>& leader)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The work of a follower that continues: its search again, warm-started
  // from its best, with the budget it has left; claims the search in the
  // store so that other replicas join it.
  JobWork ContinuationWork(const std::shared_ptr<Job>& job,
                           const JobSnapshot& snap);
  void ReportLoad() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobRecorder* recorder_for_remote() const {
    absl::MutexLock lock(&mu_);
    return recorder_;
  }
  absl::StatusOr<std::shared_ptr<Job>> Enqueue(
      std::shared_ptr<Job> job, bool run,
      std::shared_ptr<const v1::PartitionUpdate> cached, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The cached best for the spec: this process's cache, else the store's.
  std::shared_ptr<const v1::PartitionUpdate> CachedBest(const JobSpec& spec);

  const JobManagerOptions options_;
  const Clock& clock_;
  JobEvents* const events_;
  JobRecorder* recorder_ ABSL_GUARDED_BY(mu_) = nullptr;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t id_salt_ = 0;
  std::deque<std::shared_ptr<Job>> queue_ ABSL_GUARDED_BY(mu_);
  // Every job not yet dropped: queued, running and retained ended ones.
  absl::flat_hash_map<std::string, std::shared_ptr<Job>> jobs_
      ABSL_GUARDED_BY(mu_);
  // Retained ended jobs, oldest first, for retention.
  std::deque<std::shared_ptr<Job>> ended_ ABSL_GUARDED_BY(mu_);
  // Jobs currently running, for deadlines and drain.
  std::vector<std::shared_ptr<Job>> active_ ABSL_GUARDED_BY(mu_);
  // In-flight joins: by cache key, the local job a new request for the
  // problem joins (a leader, a follower, or a mirror of another replica's
  // submitted job); `resolving` while the store is asked who leads.
  struct Inflight {
    std::weak_ptr<Job> job;
    bool resolving = false;
  };
  absl::flat_hash_map<std::string, Inflight> inflight_ ABSL_GUARDED_BY(mu_);
  // Holders of local call jobs: the caller until Release, and each
  // follower.
  absl::flat_hash_map<const Job*, int> holders_ ABSL_GUARDED_BY(mu_);
  std::list<Follower> followers_ ABSL_GUARDED_BY(mu_);

  // LRU result cache: key -> best update; lru_ front is the most recent.
  struct CacheEntry {
    std::shared_ptr<const v1::PartitionUpdate> best;
    std::list<std::string>::iterator lru;
  };
  absl::flat_hash_map<std::string, CacheEntry> cache_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);

  std::vector<std::thread> workers_;
  std::thread janitor_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_JOB_MANAGER_H_
