// The state store: jobs, the result cache and in-flight search claims kept
// outside one process's memory, so that every replica of mcmpart-server sees
// the same jobs, a crashed replica's jobs are resumed by another, and
// replicas do not search the same problem at once.
//
// One interface, three backends chosen by one spec (the server's --store):
//
//   memory                   this process only (tests; the behaviour of a
//                            server without a store)
//   sqlite:PATH              an embedded database file (WAL mode, schema
//                            versioned); one process per file
//   redis://HOST:PORT[/DB]   a Redis server shared by every replica
//
// docs/store.md describes the data layout of each backend, the leases and
// their timings, and what happens while Redis is down.
//
// How the job manager uses it (every replica runs the same code):
//
//   Submit       CreateJob(record with owner = this replica, lease = now +
//                ttl, the request); ClaimSearch(problem_key, id, owner, ttl)
//                first to join a search another replica already runs.
//   Run          UpdateJob(id, owner, progress) on start, on each published
//                best and at the end; FAILED_PRECONDITION means another
//                replica took the job over: stop the work, write nothing.
//                Subscribe(id, ...) to see CancelJob from any replica within
//                100 ms (JobRecord::cancel_requested).
//   Janitor      RenewLease for each job it runs, every lease_ttl / 3;
//                ClaimOrphans(owner, lease_ttl, n) every few seconds and
//                resume what it returns from JobRecord::request and the
//                budget used so far; PurgeEnded for retention.
//   GetJob/...   GetJob, ListJobs, RequestCancel and WaitForChange answer
//                for a job of any replica.
//   Drain        ReleaseLease for each queued job so that another replica
//                takes it at once.
//   Cache        CacheGet before a search, CachePut after it.
//
// Errors, for every call: UNAVAILABLE when the backend cannot be reached
// (Redis down or too slow: the call gives up after
// StoreOptions::redis_command_timeout; the caller may fall back to its
// memory, and the store reconnects by itself when the backend returns);
// INTERNAL for a backend answer this code cannot read (a corrupt row, a
// value written by something else); for sqlite at run time also
// UNAVAILABLE when another process holds the file's lock beyond 5 s or I/O
// fails, RESOURCE_EXHAUSTED when the disk is full, DATA_LOSS when the file
// was damaged after start-up; the call-specific codes documented below. No
// call throws.
//
// Thread-safety: every method of StateStore may be called from many threads
// at once.
#ifndef MCMPART_SERVER_STORE_STORE_H_
#define MCMPART_SERVER_STORE_STORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "mcmpart/v1/partitioner.pb.h"

namespace mcmpart::store {

// Job states are the API's own (v1::Job::State): QUEUED, RUNNING, then one
// of the terminal SUCCEEDED, FAILED, CANCELLED.
using JobState = v1::Job::State;
// True for SUCCEEDED, FAILED and CANCELLED: nothing changes a job after.
bool IsTerminal(JobState state);
// "queued", "running", "succeeded", "failed", "cancelled".
absl::string_view StateName(JobState state);

// Labels for listings and logs; set once, at CreateJob.
struct JobLabels {
  std::string strategy;
  std::string graph_name;
  std::string hardware_name;
  int32_t num_nodes = 0;
};

// What the owner of a job writes as the job runs (UpdateJob). Everything
// else in a JobRecord is set at creation or by the lease calls.
struct JobProgress {
  JobState state = v1::Job::QUEUED;
  // InfinitePast until reached.
  absl::Time start_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  // The best update so far; nullopt until the first valid placement.
  std::optional<v1::PartitionUpdate> best;
  // Set when the job ends (final = true, end_reason, the whole run's samples
  // and elapsed time).
  std::optional<v1::PartitionUpdate> final_update;
  // OK unless FAILED or CANCELLED: the code and message the caller of
  // GetJob sees (Job.error_code, Job.error_message).
  absl::Status status;
  // "budget", "converged", "cancelled", ... when ended; empty before.
  std::string end_reason;
  // Budget used so far, over every replica that ran the job, so that a
  // replica resuming it spends only the rest.
  double elapsed_s = 0;
  int64_t samples = 0;
  // The proved lower bound on the bottleneck in seconds (0 = none), see
  // server/job_manager.h WorkResult::bound_s.
  double bound_s = 0;
};

// One job as stored. A copy: changing it changes nothing in the store.
struct JobRecord {
  std::string id;
  // The replica whose lease the job is under ("" after ReleaseLease). Only
  // it may UpdateJob. A replica id is any stable non-empty string unique
  // among the replicas (the pod name, or host:pid).
  std::string owner;
  // The owner's lease ends here; ClaimOrphans takes unfinished jobs whose
  // lease has ended. Compared with the clocks of the replicas, which are
  // assumed to agree to well within the lease time (NTP).
  absl::Time lease_expiry = absl::InfinitePast();
  // The original request, for a replica that resumes the job. Filled by
  // ClaimOrphans and by GetJob with RequestField::kInclude only (it may be
  // megabytes of ONNX); has_request says whether it was read.
  v1::PartitionRequest request;
  bool has_request = false;
  JobLabels labels;
  absl::Time create_time = absl::InfinitePast();
  JobProgress progress;
  // Set by RequestCancel on any replica; the owner ends the job with its
  // best (a replica that claims a cancelled orphan ends it at once).
  bool cancel_requested = false;
  // Increases on every write that watchers may care about: CreateJob (1),
  // UpdateJob, RequestCancel, ClaimOrphans, ReleaseLease. RenewLease does
  // not change it.
  uint64_t version = 0;

  bool done() const { return IsTerminal(progress.state); }
};

enum class RequestField { kOmit, kInclude };

struct ListJobsOptions {
  // Only jobs in these states; empty = all.
  std::vector<JobState> states;
  // At most this many, newest first (create_time, then id); 0 = all.
  int limit = 0;
};

// What the lease calls report back to the owner.
struct LeaseInfo {
  absl::Time lease_expiry;
  bool cancel_requested = false;
  uint64_t version = 0;
};

// A result-cache entry: the best update known for a key.
struct CacheEntry {
  v1::PartitionUpdate best;
  // best.evaluation().proved_optimal() when it was stored: nothing replaces
  // a proved entry but another proved one with a higher throughput.
  bool proved_optimal = false;
};

// The answer of ClaimSearch.
struct SearchClaim {
  // True: the caller's job holds the claim (taken now, or renewed) and
  // should search. False: `job_id` on replica `owner` is already searching
  // the key; join it (watch that job) instead of searching again.
  bool owned = false;
  std::string job_id;
  std::string owner;
  // The claim lapses then unless renewed (a dead owner's claim lapses).
  absl::Time expiry;
};

// Calls of one kind (e.g. "update_job") since the store was opened, for
// telemetry. latency_buckets[i] counts calls that took at most
// kLatencyBounds[i] seconds and more than the bound before it; the last
// bucket counts the rest (+Inf): a Prometheus histogram after a cumulative
// sum.
inline constexpr std::array<double, 14> kLatencyBounds = {
    50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3, 5e-3,
    10e-3, 25e-3,  50e-3,  100e-3, 250e-3, 500e-3, 1.0};
struct OpStats {
  uint64_t calls = 0;
  // Calls that returned an error other than the call's ordinary answers
  // (NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION and INVALID_ARGUMENT are
  // answers about the data or the call, not failures of the store).
  uint64_t errors = 0;
  // Of the errors, those that were UNAVAILABLE (backend unreachable).
  uint64_t unavailable = 0;
  std::array<uint64_t, kLatencyBounds.size() + 1> latency_buckets{};
  double latency_sum_s = 0;
  double latency_max_s = 0;
};
struct StoreStats {
  // "memory", "sqlite" or "redis".
  std::string backend;
  // False while the last call to the backend failed with UNAVAILABLE.
  bool healthy = true;
  // The most recent UNAVAILABLE or INTERNAL status (OK when none).
  absl::Status last_error;
  // Connections (re)established after the first one (Redis).
  uint64_t reconnects = 0;
  // Change notifications received from other replicas (Redis pub/sub).
  uint64_t notifications = 0;
  // By operation name: "create_job", "update_job", "get_job", ...
  // ("get_job" includes the re-reads of waiters and subscriptions).
  std::map<std::string, OpStats> ops;
};

// A registration for a job's changes; destroying it unregisters. Destroy it
// from a thread other than its own callback's, and before the store.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

using ChangeCallback = std::function<void(const JobRecord& job)>;

class StateStore {
 public:
  virtual ~StateStore() = default;

  // "memory", "sqlite" or "redis".
  virtual absl::string_view backend() const = 0;

  // ------------------------------------------------------------------ jobs

  // Stores a new job: `job` with its id, owner, lease_expiry, request,
  // labels, create_time and progress (usually QUEUED; a job answered from
  // the cache may be created ended). The store sets version = 1 and ignores
  // job.version and has_request (the request is always stored).
  // Errors: ALREADY_EXISTS when the id is taken; INVALID_ARGUMENT for an
  // empty id or owner.
  virtual absl::Status CreateJob(const JobRecord& job) = 0;

  // Writes `progress` over the job's progress, as its owner. Compare-and-
  // set on the owner: only the replica named in the record may write, so
  // that a replica that lost its lease (and whose job another replica
  // resumed) cannot overwrite it. Returns the new version.
  // Errors: NOT_FOUND for an unknown (or purged) id; FAILED_PRECONDITION
  // when `owner` is not the job's owner (the message names the owner) or the
  // job has already ended: the caller must stop working on the job.
  virtual absl::StatusOr<uint64_t> UpdateJob(absl::string_view id,
                                             absl::string_view owner,
                                             const JobProgress& progress) = 0;

  // The job, with its request when asked. Errors: NOT_FOUND.
  virtual absl::StatusOr<JobRecord> GetJob(
      absl::string_view id, RequestField request = RequestField::kOmit) = 0;

  // Jobs of every replica, newest first, without their requests.
  virtual absl::StatusOr<std::vector<JobRecord>> ListJobs(
      const ListJobsOptions& options) = 0;

  // Asks the job's owner to stop it (sets cancel_requested, notifies the
  // owner). Cancelling an ended or already cancelled job changes nothing
  // and is not an error. Returns the job as it is after the call.
  // Errors: NOT_FOUND.
  virtual absl::StatusOr<JobRecord> RequestCancel(absl::string_view id) = 0;

  // Deletes ended jobs that ended more than `max_age` ago, and the oldest
  // ended jobs beyond the newest `max_count` (max_count < 0: no count
  // limit). Unfinished jobs are never purged. Also drops lapsed search
  // claims. Returns how many jobs were deleted.
  virtual absl::StatusOr<int> PurgeEnded(absl::Duration max_age,
                                         int max_count) = 0;

  // ---------------------------------------------------------------- leases

  // Extends the owner's lease on an unfinished job to now + `ttl`; tells
  // the owner whether a cancel was requested.
  // Errors: NOT_FOUND; FAILED_PRECONDITION when `owner` no longer owns the
  // job or it has ended.
  virtual absl::StatusOr<LeaseInfo> RenewLease(absl::string_view id,
                                               absl::string_view owner,
                                               absl::Duration ttl) = 0;

  // Gives an unfinished job up: clears the owner and ends the lease, so that
  // the next ClaimOrphans of any replica takes it (a draining replica's
  // queued jobs). Errors: as RenewLease.
  virtual absl::Status ReleaseLease(absl::string_view id,
                                    absl::string_view owner) = 0;

  // Atomically takes over at most `limit` unfinished (QUEUED or RUNNING)
  // jobs whose lease has ended, oldest lease first: each gets owner =
  // `owner`, lease_expiry = now + `lease_ttl` and a new version, so that two
  // replicas claiming at once never both get a job. Returns them with their
  // requests, for the caller to resume (or, when cancel_requested, to end).
  // A job whose lease has not ended is never returned.
  // Errors: INVALID_ARGUMENT for an empty owner or limit < 1.
  virtual absl::StatusOr<std::vector<JobRecord>> ClaimOrphans(
      absl::string_view owner, absl::Duration lease_ttl, int limit) = 0;

  // ---------------------------------------------------- change notification

  // Blocks until the job's version differs from `seen_version`, or for
  // `timeout`; returns the job either way (without its request). A change on
  // any replica wakes the waiter: with Redis through pub/sub within a few
  // milliseconds (falling back to polling every
  // StoreOptions::fallback_poll_interval while pub/sub is down); with memory
  // and sqlite at once for changes made through this store object and
  // within StoreOptions::poll_interval for others (another process on the
  // same file). Errors: NOT_FOUND (also when the job is purged meanwhile),
  // UNAVAILABLE.
  virtual absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                                  uint64_t seen_version,
                                                  absl::Duration timeout) = 0;

  // Calls `callback` with the job (without its request) after each change
  // of its version, from a thread of the store's, one call at a time per
  // store, with no lock of the store held. The first call reports the
  // version at subscription time. Changes close together may be reported
  // once (the latest). The callback must be quick; it may call the store.
  // The subscription ends when the returned object is destroyed; after its
  // destructor returns, the callback is not running and will not run. A job
  // that is purged ends its reports silently. Never null.
  virtual std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                                  ChangeCallback callback) = 0;

  // ---------------------------------------------------------- result cache

  // The entry for `key`, or nullopt on a miss. A hit counts as a use for the
  // bound (LRU for memory and sqlite; the TTL restarts for Redis).
  virtual absl::StatusOr<std::optional<CacheEntry>> CacheGet(
      absl::string_view key) = 0;

  // Offers `best` for `key`. It replaces the entry unless the entry is
  // proved optimal and `best` is not, or both are (un)proved alike and
  // `best` has no greater throughput. Returns whether it was stored. The
  // cache is bounded: StoreOptions::cache_entries (least recently used goes
  // first) for memory and sqlite, StoreOptions::cache_ttl since the last
  // use for Redis.
  virtual absl::StatusOr<bool> CachePut(absl::string_view key,
                                        const v1::PartitionUpdate& best) = 0;

  // ------------------------------------------------------ in-flight joins

  // Claims the search of `problem_key` for `job_id` on `owner` until now +
  // `ttl`. Owned when no claim is held, the held one has lapsed, or it is
  // this job's (then it is renewed: call it again every ttl / 3 while the
  // search runs); otherwise the job that holds it. Errors: INVALID_ARGUMENT
  // for an empty key, job id or owner.
  virtual absl::StatusOr<SearchClaim> ClaimSearch(absl::string_view problem_key,
                                                  absl::string_view job_id,
                                                  absl::string_view owner,
                                                  absl::Duration ttl) = 0;

  // Renews this job's claim; FAILED_PRECONDITION when another job holds the
  // key now (this one's claim lapsed and was taken).
  absl::Status RenewSearch(absl::string_view problem_key,
                           absl::string_view job_id, absl::string_view owner,
                           absl::Duration ttl);

  // Drops the claim if `job_id` holds it (the search ended); otherwise
  // changes nothing and is not an error.
  virtual absl::Status ReleaseSearch(absl::string_view problem_key,
                                     absl::string_view job_id) = 0;

  // ---------------------------------------------------------------- health

  // A round trip to the backend: OK, or UNAVAILABLE with the reason.
  virtual absl::Status Ping() = 0;

  // Counters since the store was opened.
  virtual StoreStats Stats() const = 0;
};

struct StoreOptions {
  // Result-cache bound for memory and sqlite: entries kept, least recently
  // used dropped first. 0 disables the cache (CachePut stores nothing).
  int cache_entries = 256;
  // Result-cache bound for Redis: an entry unused this long expires.
  absl::Duration cache_ttl = absl::Hours(24);
  // Redis: connecting gives up after this; so does each call waiting for
  // its answer (so that a stalled Redis costs at most this per call).
  absl::Duration redis_connect_timeout = absl::Milliseconds(500);
  absl::Duration redis_command_timeout = absl::Seconds(1);
  // Redis: after a failed connect, calls fail at once with UNAVAILABLE for
  // this long before the next connect is tried (no connect storm while
  // Redis is down; reconnects within this much of its return).
  absl::Duration redis_retry_interval = absl::Milliseconds(100);
  // Redis: connections kept open for calls (more are opened while more
  // threads call at once, then closed).
  int redis_pool_size = 4;
  // Redis: every key starts with this and ':', so that several deployments
  // (or tests) share one Redis database.
  std::string redis_key_prefix = "mcmpart";
  // Waiters and subscriptions re-read their job at least this often, for
  // changes no notification announced (another process on a sqlite file; a
  // lost pub/sub message).
  absl::Duration poll_interval = absl::Seconds(1);
  // Redis: the same while pub/sub is down (so that cancels still reach the
  // owner quickly).
  absl::Duration fallback_poll_interval = absl::Milliseconds(50);
};

// Opens the store a spec names:
//   "memory"
//   "sqlite:PATH"                  PATH is created when missing
//   "redis://HOST:PORT[/DB]"       PORT defaults to 6379, DB to 0; HOST may
//                                  be [IPv6]
// Errors: INVALID_ARGUMENT for a malformed spec (the message quotes at most
// a short prefix of it and says what is expected); FAILED_PRECONDITION for a
// sqlite file that cannot be used: not a database, corrupt, another
// application's database, a newer schema version, not writable (the message
// names the path); FAILED_PRECONDITION for a Redis database holding another
// schema version; UNAVAILABLE when Redis cannot be reached.
absl::StatusOr<std::unique_ptr<StateStore>> OpenStore(
    absl::string_view spec, const StoreOptions& options = StoreOptions());

// The schema version this build reads and writes (sqlite user_version,
// Redis PREFIX:schema). Bumped on every incompatible layout change.
inline constexpr int kSchemaVersion = 1;

}  // namespace mcmpart::store

#endif  // MCMPART_SERVER_STORE_STORE_H_
