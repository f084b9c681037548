// The Redis backend's class and the reply helpers its source files share:
// redis_store.cc (set-up and the change subscription),
// redis_store_connection.cc (the connection pool and round trips),
// redis_store_jobs.cc (job records), redis_store_leases.cc (leases and
// search claims) and redis_store_cache.cc (the result cache).
// Internal to server/store/.
//
// Job hash fields (PREFIX:job:ID): id owner lease state strategy graph
// hardware nodes create start end code msg reason elapsed samples bound
// cancel version best final. Times are Unix microseconds (0 = not reached);
// best and final are "" when absent, else "+" and the serialized update.
// State numbers are v1::Job::State's: < 3 unfinished, >= 3 ended.
#ifndef MCMPART_SERVER_STORE_REDIS_STORE_INTERNAL_H_
#define MCMPART_SERVER_STORE_REDIS_STORE_INTERNAL_H_

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/change_notifier.h"
#include "server/store/redis_store.h"
#include "server/store/store.h"
#include "server/store/store_util.h"

namespace mcmpart::store::redis_internal {

// Script arguments: integers in decimal, reals with every digit kept.
std::string Num(int64_t v);
std::string Real(double v);

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

// A hiredis timeout of at least a millisecond.
timeval TimeoutOf(absl::Duration d);

// The text of a string, status or error reply; "" for other replies.
std::string ReplyString(const redisReply* r);
// An integer reply, or a string reply read as one; 0 otherwise.
int64_t ReplyInt(const redisReply* r);

class RedisStore final : public StateStore {
 public:
  RedisStore(const RedisAddress& address, const StoreOptions& options);
  ~RedisStore() override;

  // The first connection (schema check) and the subscriber.
  absl::Status Start();

  absl::string_view backend() const override { return "redis"; }

  absl::Status CreateJob(const JobRecord& job) override;
  absl::StatusOr<uint64_t> UpdateJob(absl::string_view id,
                                     absl::string_view owner,
                                     const JobProgress& progress) override;
  absl::StatusOr<JobRecord> GetJob(absl::string_view id,
                                   RequestField request) override;
  absl::StatusOr<std::vector<JobRecord>> ListJobs(
      const ListJobsOptions& options) override;
  absl::StatusOr<JobRecord> RequestCancel(absl::string_view id) override;
  absl::StatusOr<int> PurgeEnded(absl::Duration max_age,
                                 int max_count) override;

  absl::StatusOr<LeaseInfo> RenewLease(absl::string_view id,
                                       absl::string_view owner,
                                       absl::Duration ttl) override;
  absl::Status ReleaseLease(absl::string_view id,
                            absl::string_view owner) override;
  absl::StatusOr<std::vector<JobRecord>> ClaimOrphans(absl::string_view owner,
                                                      absl::Duration lease_ttl,
                                                      int limit) override;

  absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                          uint64_t seen_version,
                                          absl::Duration timeout) override;
  std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                          ChangeCallback callback) override;

  absl::StatusOr<std::optional<CacheEntry>> CacheGet(
      absl::string_view key) override;
  absl::StatusOr<bool> CachePut(absl::string_view key,
                                const v1::PartitionUpdate& best) override;

  absl::StatusOr<SearchClaim> ClaimSearch(absl::string_view problem_key,
                                          absl::string_view job_id,
                                          absl::string_view owner,
                                          absl::Duration ttl) override;
  absl::Status ReleaseSearch(absl::string_view problem_key,
                             absl::string_view job_id) override;

  absl::Status Ping() override;

  StoreStats Stats() const override { return stats_.Snapshot(); }

 private:
  std::string Key(absl::string_view part, absl::string_view rest = "") const {
    return absl::StrCat(prefix_, ":", part, rest);
  }
  std::string JobKey(absl::string_view id) const { return Key("job:", id); }
  std::string ReqKey(absl::string_view id) const { return Key("req:", id); }
  int64_t CacheTtlMs() const {
    return std::max<int64_t>(1, absl::ToInt64Milliseconds(options_.cache_ttl));
  }

  // Job records (redis_store_jobs.cc).

  static void AppendProgress(const JobProgress& p,
                             std::vector<std::string>* args);

  // The answer of the owner-checked scripts: {0, value, ...} or an error.
  absl::StatusOr<int64_t> OwnerChecked(const redisReply* r,
                                       absl::string_view id,
                                       absl::string_view owner) const;

  // Reads jobs by id in one round trip; nullopt for ids that do not exist.
  absl::StatusOr<std::vector<std::optional<JobRecord>>> ReadJobs(
      const std::vector<std::string>& ids, RequestField request);

  absl::StatusOr<JobRecord> ParseJob(const redisReply* r) const;

  // Connections (redis_store_connection.cc).

  absl::Status Unexpected(absl::string_view op) const;
  absl::Status Unreachable(absl::string_view why) const;

  // A new connection: connected, timeouts set, database selected, schema
  // checked (it is cheap, and a Redis that restarted empty gets the
  // version key back).
  absl::StatusOr<Context> Connect();

  static bool TimedOut(const redisContext* c);
  absl::Status IoError(redisContext* c) const;
  absl::Status ReplyError(const redisReply* r) const;

  // An idle connection, or a new one. `reused` says which.
  absl::StatusOr<Context> Acquire(bool* reused);
  void Return(Context c);
  void DropPool();

  // Sends `commands` in one round trip and returns their replies in order.
  // An I/O error on a connection taken from the pool is retried once on a
  // new one: the pooled connection may predate a restart of Redis, and then
  // the command never reached it.
  absl::StatusOr<std::vector<Reply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands);

  absl::StatusOr<Reply> Command(const std::vector<std::string>& args);

  // The change subscription (redis_store.cc).

  bool Stopping();

  // Waits up to `d` or until the store stops.
  void Sleep(absl::Duration d);

  // The subscriber: one connection per store, SUBSCRIBE to the change
  // channel, each message "ID VERSION" wakes the local waiters of job ID.
  // While it is down the waiters poll every fallback_poll_interval; when it
  // is back every waiter re-reads once (messages were lost meanwhile).
  void SubscribeLoop();

  // Until the connection fails or the store stops.
  void ReadMessages(redisContext* c);

  const RedisAddress address_;
  const StoreOptions options_;
  const std::string prefix_;
  const std::string channel_;
  const std::string where_;  // host:port, for messages
  mutable internal::StatsRecorder stats_;

  absl::Mutex pool_mu_;
  std::vector<Context> idle_ ABSL_GUARDED_BY(pool_mu_);
  absl::Time retry_after_ ABSL_GUARDED_BY(pool_mu_) = absl::InfinitePast();
  absl::Status last_connect_error_ ABSL_GUARDED_BY(pool_mu_);
  bool connected_once_ ABSL_GUARDED_BY(pool_mu_) = false;
  bool lost_ ABSL_GUARDED_BY(pool_mu_) = false;

  absl::Mutex sub_mu_;
  bool stop_ ABSL_GUARDED_BY(sub_mu_) = false;
  int wake_fds_[2] = {-1, -1};
  std::thread subscriber_;

  std::optional<internal::ChangeNotifier> notifier_;
};

}  // namespace mcmpart::store::redis_internal

#endif  // MCMPART_SERVER_STORE_REDIS_STORE_INTERNAL_H_
