#include "server/store/redis_store.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/change_notifier.h"
#include "server/store/store_util.h"

namespace mcmpart::store {
namespace {

using internal::DecodeTime;
using internal::EncodeTime;

// ------------------------------------------------------------ Lua scripts
//
// Job hash fields (PREFIX:job:ID): id owner lease state strategy graph
// hardware nodes create start end code msg reason elapsed samples bound
// cancel version best final. Times are Unix microseconds (0 = not reached);
// best and final are "" when absent, else "+" and the serialized update.
// State numbers are v1::Job::State's: < 3 unfinished, >= 3 ended.

// KEYS: job, req, jobs, live, ended. ARGV: id, channel, create_us,
// lease_us, state, end_us, request, then field/value pairs.
constexpr const char* kCreateScript = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('HSET', KEYS[1], 'version', 1)
redis.call('SET', KEYS[2], ARGV[7])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
if tonumber(ARGV[5]) >= 3 then
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
else
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' 1')
return 1
)lua";

// Compare-and-set on the owner. KEYS: job, live, ended. ARGV: id, channel,
// owner, state, end_us, then field/value pairs. Returns {0, version},
// {1} not found, {2, owner} not the owner, {3, state} ended.
constexpr const char* kUpdateScript = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'owner', 'state')
if not cur[2] then return {1} end
if cur[1] ~= ARGV[3] then return {2, cur[1]} end
if tonumber(cur[2]) >= 3 then return {3, cur[2]} end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
if tonumber(ARGV[4]) >= 3 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. v)
return {0, v}
)lua";

// KEYS: job, live. ARGV: id, owner, lease_us. Returns {0, cancel, version}
// or the errors of kUpdateScript.
constexpr const char* kRenewScript = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'owner', 'state', 'cancel', 'version')
if not cur[2] then return {1} end
if cur[1] ~= ARGV[2] then return {2, cur[1]} end
if tonumber(cur[2]) >= 3 then return {3, cur[2]} end
redis.call('HSET', KEYS[1], 'lease', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {0, tonumber(cur[3]), tonumber(cur[4])}
)lua";

// KEYS: job, live. ARGV: id, owner, channel. Returns {0, version} or the
// errors of kUpdateScript.
constexpr const char* kReleaseScript = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'owner', 'state')
if not cur[2] then return {1} end
if cur[1] ~= ARGV[2] then return {2, cur[1]} end
if tonumber(cur[2]) >= 3 then return {3, cur[2]} end
redis.call('HSET', KEYS[1], 'owner', '', 'lease', 0)
redis.call('ZADD', KEYS[2], 0, ARGV[1])
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. v)
return {0, v}
)lua";

// KEYS: job. ARGV: id, channel. Returns {0, version or 0 if unchanged} or
// {1} not found.
constexpr const char* kCancelScript = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'state', 'cancel')
if not cur[1] then return {1} end
if tonumber(cur[1]) >= 3 or cur[2] == '1' then return {0, 0} end
redis.call('HSET', KEYS[1], 'cancel', '1')
local v = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PUBLISH', ARGV[2], ARGV[1] .. ' ' .. v)
return {0, v}
)lua";

// Takes over unfinished jobs whose lease ended before now. KEYS: live.
// ARGV: now_us, owner, lease_us, limit, channel, prefix. Returns the ids.
constexpr const char* kClaimOrphansScript = R"lua(
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1],
                       'LIMIT', 0, tonumber(ARGV[4]))
local out = {}
for _, id in ipairs(ids) do
  local key = ARGV[6] .. ':job:' .. id
  local st = redis.call('HGET', key, 'state')
  if st and tonumber(st) < 3 then
    redis.call('HSET', key, 'owner', ARGV[2], 'lease', ARGV[3])
    local v = redis.call('HINCRBY', key, 'version', 1)
    redis.call('ZADD', KEYS[1], ARGV[3], id)
    redis.call('PUBLISH', ARGV[5], id .. ' ' .. v)
    table.insert(out, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
)lua";

// KEYS: ended, jobs, live. ARGV: cutoff_us ('' = no age limit), max_count
// (-1 = none), prefix, channel. Returns the deleted ids.
constexpr const char* kPurgeScript = R"lua(
local removed = {}
local function drop(id)
  redis.call('DEL', ARGV[3] .. ':job:' .. id, ARGV[3] .. ':req:' .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('PUBLISH', ARGV[4], id .. ' 0')
  table.insert(removed, id)
end
if ARGV[1] ~= '' then
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf',
                                 '(' .. ARGV[1])) do
    drop(id)
  end
end
local keep = tonumber(ARGV[2])
if keep >= 0 then
  local n = redis.call('ZCARD', KEYS[1])
  if n > keep then
    for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, n - keep - 1)) do
      drop(id)
    end
  end
end
return removed
)lua";

// Newest first, filtered by state on the server. KEYS: jobs. ARGV: prefix,
// limit (0 = all), states as ",1,2," ('' = all). Returns ids.
constexpr const char* kListScript = R"lua(
local out = {}
local limit = tonumber(ARGV[2])
local start = 0
while true do
  local ids = redis.call('ZREVRANGE', KEYS[1], start, start + 199)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local ok = ARGV[3] == ''
    if not ok then
      local st = redis.call('HGET', ARGV[1] .. ':job:' .. id, 'state')
      ok = st and string.find(ARGV[3], ',' .. st .. ',', 1, true)
    end
    if ok then
      table.insert(out, id)
      if limit > 0 and #out >= limit then return out end
    end
  end
  start = start + 200
end
return out
)lua";

// KEYS: entry. ARGV: proved (0/1), throughput, update, ttl_ms. The rule of
// StateStore::CachePut. Returns 1 when stored.
constexpr const char* kCachePutScript = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'p', 't')
local np, nt = tonumber(ARGV[1]), tonumber(ARGV[2])
local store
if not cur[1] then
  store = true
elseif tonumber(cur[1]) ~= np then
  store = np == 1
else
  store = nt > tonumber(cur[2])
end
if store then redis.call('HSET', KEYS[1], 'p', ARGV[1], 't', ARGV[2], 'u', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
if store then return 1 end
return 0
)lua";

// KEYS: claim. ARGV: job, owner, ttl_ms. Returns {owned, job, owner,
// ttl_ms left}.
constexpr const char* kClaimSearchScript = R"lua(
local cur = redis.call('HMGET', KEYS[1], 'job', 'owner')
if cur[1] and cur[1] ~= ARGV[1] then
  return {0, cur[1], cur[2], redis.call('PTTL', KEYS[1])}
end
redis.call('HSET', KEYS[1], 'job', ARGV[1], 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, ARGV[1], ARGV[2], tonumber(ARGV[3])}
)lua";

// KEYS: claim. ARGV: job.
constexpr const char* kReleaseSearchScript = R"lua(
if redis.call('HGET', KEYS[1], 'job') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 1
)lua";

// KEYS: schema. ARGV: version. Writes the version into an empty database;
// returns the stored one.
constexpr const char* kSchemaScript = R"lua(
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return v
)lua";

// HMGET order for reading a job.
constexpr const char* kJobFields[] = {
    "id",      "owner",   "lease", "state",  "strategy", "graph", "hardware",
    "nodes",   "create",  "start", "end",    "code",     "msg",   "reason",
    "elapsed", "samples", "bound", "cancel", "version",  "best",  "final"};
constexpr int kNumJobFields = sizeof(kJobFields) / sizeof(kJobFields[0]);

std::string Num(int64_t v) { return absl::StrCat(v); }
std::string Real(double v) { return absl::StrFormat("%.17g", v); }
std::string OptionalUpdate(const std::optional<v1::PartitionUpdate>& u) {
  if (!u) return "";
  return absl::StrCat("+", u->SerializeAsString());
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using Context = std::unique_ptr<redisContext, ContextDeleter>;

timeval TimeoutOf(absl::Duration d) {
  return absl::ToTimeval(std::max(d, absl::Milliseconds(1)));
}

std::string ReplyString(const redisReply* r) {
  if (r == nullptr ||
      (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS &&
       r->type != REDIS_REPLY_ERROR)) {
    return "";
  }
  return std::string(r->str, r->len);
}

int64_t ReplyInt(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  int64_t v = 0;
  if (r->type == REDIS_REPLY_STRING) {
    (void)absl::SimpleAtoi(absl::string_view(r->str, r->len), &v);
  }
  return v;
}

class RedisStore final : public StateStore {
 public:
  RedisStore(const RedisAddress& address, const StoreOptions& options)
      : address_(address),
        options_(options),
        prefix_(options.redis_key_prefix),
        channel_(absl::StrCat(prefix_, ":", address.db, ":changes")),
        where_(absl::StrCat(address.host, ":", address.port)),
        stats_("redis"),
        notifier_(
            std::in_place,
            [this](absl::string_view id) {
              return GetJob(id, RequestField::kOmit);
            },
            options.fallback_poll_interval) {}

  ~RedisStore() override {
    {
      absl::MutexLock lock(&sub_mu_);
      stop_ = true;
    }
    if (wake_fds_[1] >= 0) {
      const char byte = 0;
      (void)!write(wake_fds_[1], &byte, 1);
    }
    if (subscriber_.joinable()) subscriber_.join();
    notifier_.reset();
    for (int fd : wake_fds_) {
      if (fd >= 0) close(fd);
    }
  }

  // The first connection (schema check) and the subscriber.
  absl::Status Start() {
    absl::StatusOr<Context> conn = Connect();
    if (!conn.ok()) return conn.status();
    {
      absl::MutexLock lock(&pool_mu_);
      connected_once_ = true;
    }
    Return(*std::move(conn));
    if (pipe2(wake_fds_, O_CLOEXEC | O_NONBLOCK) != 0) {
      return absl::InternalError(
          absl::StrCat("cannot make a pipe: ", strerror(errno)));
    }
    subscriber_ = std::thread([this] { SubscribeLoop(); });
    return absl::OkStatus();
  }

  absl::string_view backend() const override { return "redis"; }

  absl::Status CreateJob(const JobRecord& job) override {
    return stats_.Run("create_job", [&]() -> absl::Status {
      if (absl::Status s = internal::RequireNonEmpty(job.id, "job id");
          !s.ok()) {
        return s;
      }
      if (absl::Status s = internal::RequireNonEmpty(job.owner, "owner");
          !s.ok()) {
        return s;
      }
      const JobProgress& p = job.progress;
      std::vector<std::string> args = {
          "EVAL",
          kCreateScript,
          "5",
          JobKey(job.id),
          ReqKey(job.id),
          Key("jobs"),
          Key("live"),
          Key("ended"),
          job.id,
          channel_,
          Num(EncodeTime(job.create_time)),
          Num(EncodeTime(job.lease_expiry)),
          Num(p.state),
          Num(EncodeTime(p.end_time)),
          job.request.SerializeAsString(),
          "id",
          job.id,
          "owner",
          job.owner,
          "lease",
          Num(EncodeTime(job.lease_expiry)),
          "strategy",
          job.labels.strategy,
          "graph",
          job.labels.graph_name,
          "hardware",
          job.labels.hardware_name,
          "nodes",
          Num(job.labels.num_nodes),
          "create",
          Num(EncodeTime(job.create_time)),
          "cancel",
          job.cancel_requested ? "1" : "0",
      };
      AppendProgress(p, &args);
      absl::StatusOr<Reply> reply = Command(args);
      if (!reply.ok()) return reply.status();
      if (ReplyInt(reply->get()) == 0) return internal::JobExists(job.id);
      notifier_->Notify(job.id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<uint64_t> UpdateJob(absl::string_view id,
                                     absl::string_view owner,
                                     const JobProgress& progress) override {
    return stats_.Run("update_job", [&]() -> absl::StatusOr<uint64_t> {
      std::vector<std::string> args = {"EVAL",
                                       kUpdateScript,
                                       "3",
                                       JobKey(id),
                                       Key("live"),
                                       Key("ended"),
                                       std::string(id),
                                       channel_,
                                       std::string(owner),
                                       Num(progress.state),
                                       Num(EncodeTime(progress.end_time))};
      AppendProgress(progress, &args);
      absl::StatusOr<Reply> reply = Command(args);
      if (!reply.ok()) return reply.status();
      absl::StatusOr<int64_t> v = OwnerChecked(reply->get(), id, owner);
      if (!v.ok()) return v.status();
      notifier_->Notify(id);
      return static_cast<uint64_t>(*v);
    });
  }

  absl::StatusOr<JobRecord> GetJob(absl::string_view id,
                                   RequestField request) override {
    return stats_.Run("get_job", [&]() -> absl::StatusOr<JobRecord> {
      absl::StatusOr<std::vector<std::optional<JobRecord>>> jobs =
          ReadJobs({std::string(id)}, request);
      if (!jobs.ok()) return jobs.status();
      if (!(*jobs)[0].has_value()) return internal::JobNotFound(id);
      return *std::move((*jobs)[0]);
    });
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs(
      const ListJobsOptions& options) override {
    return stats_.Run(
        "list_jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
          std::string states;
          if (!options.states.empty()) {
            states = ",";
            for (JobState s : options.states) {
              absl::StrAppend(&states, static_cast<int>(s), ",");
            }
          }
          absl::StatusOr<Reply> reply =
              Command({"EVAL", kListScript, "1", Key("jobs"), prefix_,
                       Num(std::max(0, options.limit)), states});
          if (!reply.ok()) return reply.status();
          std::vector<std::string> ids;
          for (size_t i = 0; i < (*reply)->elements; ++i) {
            ids.push_back(ReplyString((*reply)->element[i]));
          }
          absl::StatusOr<std::vector<std::optional<JobRecord>>> jobs =
              ReadJobs(ids, RequestField::kOmit);
          if (!jobs.ok()) return jobs.status();
          std::vector<JobRecord> out;
          for (std::optional<JobRecord>& job : *jobs) {
            // Purged between the listing and the read.
            if (job) out.push_back(*std::move(job));
          }
          return out;
        });
  }

  absl::StatusOr<JobRecord> RequestCancel(absl::string_view id) override {
    return stats_.Run("request_cancel", [&]() -> absl::StatusOr<JobRecord> {
      absl::StatusOr<Reply> reply = Command(
          {"EVAL", kCancelScript, "1", JobKey(id), std::string(id), channel_});
      if (!reply.ok()) return reply.status();
      const redisReply* r = reply->get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        return Unexpected("request_cancel");
      }
      if (ReplyInt(r->element[0]) == 1) return internal::JobNotFound(id);
      if (r->elements > 1 && ReplyInt(r->element[1]) > 0) {
        notifier_->Notify(id);
      }
      absl::StatusOr<std::vector<std::optional<JobRecord>>> jobs =
          ReadJobs({std::string(id)}, RequestField::kOmit);
      if (!jobs.ok()) return jobs.status();
      if (!(*jobs)[0]) return internal::JobNotFound(id);
      return *std::move((*jobs)[0]);
    });
  }

  absl::StatusOr<int> PurgeEnded(absl::Duration max_age,
                                 int max_count) override {
    return stats_.Run("purge_ended", [&]() -> absl::StatusOr<int> {
      const std::string cutoff =
          max_age == absl::InfiniteDuration()
              ? ""
              : Num(absl::ToUnixMicros(absl::Now() - max_age));
      absl::StatusOr<Reply> reply = Command(
          {"EVAL", kPurgeScript, "3", Key("ended"), Key("jobs"), Key("live"),
           cutoff, Num(max_count < 0 ? -1 : max_count), prefix_, channel_});
      if (!reply.ok()) return reply.status();
      for (size_t i = 0; i < (*reply)->elements; ++i) {
        notifier_->Notify(ReplyString((*reply)->element[i]));
      }
      // Search claims lapse by themselves (PEXPIRE).
      return static_cast<int>((*reply)->elements);
    });
  }

  absl::StatusOr<LeaseInfo> RenewLease(absl::string_view id,
                                       absl::string_view owner,
                                       absl::Duration ttl) override {
    return stats_.Run("renew_lease", [&]() -> absl::StatusOr<LeaseInfo> {
      const int64_t expiry = internal::ExpiryMicros(absl::Now(), ttl);
      absl::StatusOr<Reply> reply =
          Command({"EVAL", kRenewScript, "2", JobKey(id), Key("live"),
                   std::string(id), std::string(owner), Num(expiry)});
      if (!reply.ok()) return reply.status();
      absl::StatusOr<int64_t> cancel = OwnerChecked(reply->get(), id, owner);
      if (!cancel.ok()) return cancel.status();
      const redisReply* r = reply->get();
      return LeaseInfo{
          DecodeTime(expiry), *cancel != 0,
          static_cast<uint64_t>(r->elements > 2 ? ReplyInt(r->element[2]) : 0)};
    });
  }

  absl::Status ReleaseLease(absl::string_view id,
                            absl::string_view owner) override {
    return stats_.Run("release_lease", [&]() -> absl::Status {
      absl::StatusOr<Reply> reply =
          Command({"EVAL", kReleaseScript, "2", JobKey(id), Key("live"),
                   std::string(id), std::string(owner), channel_});
      if (!reply.ok()) return reply.status();
      absl::StatusOr<int64_t> v = OwnerChecked(reply->get(), id, owner);
      if (!v.ok()) return v.status();
      notifier_->Notify(id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<JobRecord>> ClaimOrphans(absl::string_view owner,
                                                      absl::Duration lease_ttl,
                                                      int limit) override {
    return stats_.Run(
        "claim_orphans", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
          if (absl::Status s = internal::CheckClaimOrphansArgs(owner, limit);
              !s.ok()) {
            return s;
          }
          const absl::Time now = absl::Now();
          absl::StatusOr<Reply> reply =
              Command({"EVAL", kClaimOrphansScript, "1", Key("live"),
                       Num(absl::ToUnixMicros(now)), std::string(owner),
                       Num(internal::ExpiryMicros(now, lease_ttl)), Num(limit),
                       channel_, prefix_});
          if (!reply.ok()) return reply.status();
          std::vector<std::string> ids;
          for (size_t i = 0; i < (*reply)->elements; ++i) {
            ids.push_back(ReplyString((*reply)->element[i]));
          }
          std::vector<JobRecord> claimed;
          if (ids.empty()) return claimed;
          absl::StatusOr<std::vector<std::optional<JobRecord>>> jobs =
              ReadJobs(ids, RequestField::kInclude);
          if (!jobs.ok()) return jobs.status();
          for (std::optional<JobRecord>& job : *jobs) {
            if (!job) continue;
            notifier_->Notify(job->id);
            claimed.push_back(*std::move(job));
          }
          return claimed;
        });
  }

  absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                          uint64_t seen_version,
                                          absl::Duration timeout) override {
    return notifier_->WaitForChange(id, seen_version, timeout);
  }

  std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                          ChangeCallback callback) override {
    return notifier_->Subscribe(id, std::move(callback));
  }

  absl::StatusOr<std::optional<CacheEntry>> CacheGet(
      absl::string_view key) override {
    return stats_.Run(
        "cache_get", [&]() -> absl::StatusOr<std::optional<CacheEntry>> {
          const std::string k = Key("cache:", key);
          absl::StatusOr<std::vector<Reply>> replies = Pipeline(
              {{"HMGET", k, "p", "u"}, {"PEXPIRE", k, Num(CacheTtlMs())}});
          if (!replies.ok()) return replies.status();
          const redisReply* r = (*replies)[0].get();
          if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            return Unexpected("cache_get");
          }
          if (r->element[0]->type != REDIS_REPLY_STRING) {
            return std::optional<CacheEntry>();
          }
          CacheEntry entry;
          entry.proved_optimal = ReplyString(r->element[0]) == "1";
          if (!entry.best.ParseFromString(ReplyString(r->element[1]))) {
            return absl::InternalError(absl::StrCat(
                "Redis at ", where_, ": a result-cache entry does not parse"));
          }
          return std::optional<CacheEntry>(std::move(entry));
        });
  }

  absl::StatusOr<bool> CachePut(absl::string_view key,
                                const v1::PartitionUpdate& best) override {
    return stats_.Run("cache_put", [&]() -> absl::StatusOr<bool> {
      absl::StatusOr<Reply> reply =
          Command({"EVAL", kCachePutScript, "1", Key("cache:", key),
                   best.evaluation().proved_optimal() ? "1" : "0",
                   Real(best.evaluation().throughput_per_s()),
                   best.SerializeAsString(), Num(CacheTtlMs())});
      if (!reply.ok()) return reply.status();
      return ReplyInt(reply->get()) == 1;
    });
  }

  absl::StatusOr<SearchClaim> ClaimSearch(absl::string_view problem_key,
                                          absl::string_view job_id,
                                          absl::string_view owner,
                                          absl::Duration ttl) override {
    return stats_.Run("claim_search", [&]() -> absl::StatusOr<SearchClaim> {
      if (absl::Status s = internal::CheckClaimArgs(problem_key, job_id, owner);
          !s.ok()) {
        return s;
      }
      const absl::Time now = absl::Now();
      absl::StatusOr<Reply> reply =
          Command({"EVAL", kClaimSearchScript, "1", Key("claim:", problem_key),
                   std::string(job_id), std::string(owner),
                   Num(std::max<int64_t>(1, absl::ToInt64Milliseconds(ttl)))});
      if (!reply.ok()) return reply.status();
      const redisReply* r = reply->get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        return Unexpected("claim_search");
      }
      return SearchClaim{ReplyInt(r->element[0]) == 1,
                         ReplyString(r->element[1]), ReplyString(r->element[2]),
                         now + absl::Milliseconds(std::max<int64_t>(
                                   0, ReplyInt(r->element[3])))};
    });
  }

  absl::Status ReleaseSearch(absl::string_view problem_key,
                             absl::string_view job_id) override {
    return stats_.Run("release_search", [&]() -> absl::Status {
      absl::StatusOr<Reply> reply =
          Command({"EVAL", kReleaseSearchScript, "1",
                   Key("claim:", problem_key), std::string(job_id)});
      return reply.status();
    });
  }

  absl::Status Ping() override {
    return stats_.Run(
        "ping", [&]() -> absl::Status { return Command({"PING"}).status(); });
  }

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

  static void AppendProgress(const JobProgress& p,
                             std::vector<std::string>* args) {
    for (std::string& s : std::vector<std::string>{
             "state",   Num(p.state),
             "start",   Num(EncodeTime(p.start_time)),
             "end",     Num(EncodeTime(p.end_time)),
             "code",    Num(static_cast<int>(p.status.code())),
             "msg",     std::string(p.status.message()),
             "reason",  p.end_reason,
             "elapsed", Real(p.elapsed_s),
             "samples", Num(p.samples),
             "bound",   Real(p.bound_s),
             "best",    OptionalUpdate(p.best),
             "final",   OptionalUpdate(p.final_update)}) {
      args->push_back(std::move(s));
    }
  }

  absl::Status Unexpected(absl::string_view op) const {
    return absl::InternalError(
        absl::StrCat("Redis at ", where_, ": unexpected answer to ", op));
  }

  // The answer of the owner-checked scripts: {0, value, ...} or an error.
  absl::StatusOr<int64_t> OwnerChecked(const redisReply* r,
                                       absl::string_view id,
                                       absl::string_view owner) const {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
      return Unexpected("an owner check");
    }
    const int64_t code = ReplyInt(r->element[0]);
    const std::string detail =
        r->elements > 1 ? ReplyString(r->element[1]) : "";
    switch (code) {
      case 0:
        return r->elements > 1 ? ReplyInt(r->element[1]) : 0;
      case 1:
        return internal::JobNotFound(id);
      case 2:
        return internal::NotOwner(id, owner, detail);
      case 3:
        return internal::AlreadyEnded(
            id, static_cast<JobState>(r->elements > 1 ? ReplyInt(r->element[1])
                                                      : 0));
      default:
        return Unexpected("an owner check");
    }
  }

  // Reads jobs by id in one round trip; nullopt for ids that do not exist.
  absl::StatusOr<std::vector<std::optional<JobRecord>>> ReadJobs(
      const std::vector<std::string>& ids, RequestField request) {
    std::vector<std::vector<std::string>> commands;
    for (const std::string& id : ids) {
      std::vector<std::string> cmd = {"HMGET", JobKey(id)};
      cmd.insert(cmd.end(), std::begin(kJobFields), std::end(kJobFields));
      commands.push_back(std::move(cmd));
      if (request == RequestField::kInclude) {
        commands.push_back({"GET", ReqKey(id)});
      }
    }
    absl::StatusOr<std::vector<Reply>> replies = Pipeline(commands);
    if (!replies.ok()) return replies.status();
    std::vector<std::optional<JobRecord>> out;
    const size_t step = request == RequestField::kInclude ? 2 : 1;
    for (size_t i = 0; i < ids.size(); ++i) {
      const redisReply* r = (*replies)[i * step].get();
      if (r->type != REDIS_REPLY_ARRAY || r->elements != kNumJobFields) {
        return Unexpected("get_job");
      }
      if (r->element[3]->type != REDIS_REPLY_STRING) {  // no state: no job
        out.emplace_back();
        continue;
      }
      absl::StatusOr<JobRecord> job = ParseJob(r);
      if (!job.ok()) return job.status();
      if (request == RequestField::kInclude) {
        const redisReply* req = (*replies)[i * step + 1].get();
        if (req->type == REDIS_REPLY_STRING) {
          if (!job->request.ParseFromString(ReplyString(req))) {
            return absl::InternalError(
                absl::StrCat("Redis at ", where_, ": job ", job->id,
                             ": the request does not parse"));
          }
          job->has_request = true;
        }
      }
      out.push_back(*std::move(job));
    }
    return out;
  }

  absl::StatusOr<JobRecord> ParseJob(const redisReply* r) const {
    auto s = [&](int i) { return ReplyString(r->element[i]); };
    auto n = [&](int i) { return ReplyInt(r->element[i]); };
    auto d = [&](int i) {
      double v = 0;
      (void)absl::SimpleAtod(s(i), &v);
      return v;
    };
    JobRecord job;
    job.id = s(0);
    job.owner = s(1);
    job.lease_expiry = DecodeTime(n(2));
    job.progress.state = static_cast<JobState>(n(3));
    job.labels.strategy = s(4);
    job.labels.graph_name = s(5);
    job.labels.hardware_name = s(6);
    job.labels.num_nodes = static_cast<int32_t>(n(7));
    job.create_time = DecodeTime(n(8));
    job.progress.start_time = DecodeTime(n(9));
    job.progress.end_time = DecodeTime(n(10));
    job.progress.status =
        absl::Status(internal::DecodeStatusCode(n(11)), s(12));
    job.progress.end_reason = s(13);
    job.progress.elapsed_s = d(14);
    job.progress.samples = n(15);
    job.progress.bound_s = d(16);
    job.cancel_requested = s(17) == "1";
    job.version = static_cast<uint64_t>(n(18));
    for (auto [col, field] : {std::pair{19, &job.progress.best},
                              std::pair{20, &job.progress.final_update}}) {
      const std::string bytes = s(col);
      if (bytes.empty()) continue;
      field->emplace();
      if (bytes[0] != '+' || !(*field)->ParseFromString(bytes.substr(1))) {
        return absl::InternalError(absl::StrCat("Redis at ", where_, ": job ",
                                                job.id,
                                                ": an update does not parse"));
      }
    }
    return job;
  }

  // ------------------------------------------------------------ connections

  absl::Status Unreachable(absl::string_view why) const {
    return absl::UnavailableError(absl::StrCat(
        "the state store at Redis ", where_, " is unreachable: ", why));
  }

  // A new connection: connected, timeouts set, database selected, schema
  // checked (it is cheap, and a Redis that restarted empty gets the
  // version key back).
  absl::StatusOr<Context> Connect() {
    Context c(
        redisConnectWithTimeout(address_.host.c_str(), address_.port,
                                TimeoutOf(options_.redis_connect_timeout)));
    if (c == nullptr) return Unreachable("out of memory");
    if (c->err) return Unreachable(c->errstr);
    redisSetTimeout(c.get(), TimeoutOf(options_.redis_command_timeout));
    redisEnableKeepAlive(c.get());
    if (address_.db != 0) {
      Reply r(static_cast<redisReply*>(
          redisCommand(c.get(), "SELECT %d", address_.db)));
      if (r == nullptr) return IoError(c.get());
      if (r->type == REDIS_REPLY_ERROR) {
        return absl::InvalidArgumentError(
            absl::StrCat("Redis at ", where_, " refuses database ", address_.db,
                         ": ", ReplyString(r.get())));
      }
    }
    const std::string schema_key = Key("schema");
    const std::string version = Num(kSchemaVersion);
    const char* argv[] = {"EVAL", kSchemaScript, "1", schema_key.c_str(),
                          version.c_str()};
    Reply r(
        static_cast<redisReply*>(redisCommandArgv(c.get(), 5, argv, nullptr)));
    if (r == nullptr) return IoError(c.get());
    if (r->type == REDIS_REPLY_ERROR) return ReplyError(r.get());
    if (ReplyString(r.get()) != version) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--store redis://%s/%d: the key %s holds schema version '%s', this "
          "mcmpart-server reads version %d; use another database or "
          "StoreOptions::redis_key_prefix",
          where_, address_.db, schema_key, ReplyString(r.get()),
          kSchemaVersion));
    }
    return c;
  }

  static bool TimedOut(const redisContext* c) {
    return c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  absl::Status IoError(redisContext* c) const {
    if (TimedOut(c)) {
      return Unreachable(
          absl::StrCat("no answer within ",
                       absl::FormatDuration(options_.redis_command_timeout)));
    }
    return Unreachable(c->errstr[0] != '\0' ? c->errstr : "connection lost");
  }

  absl::Status ReplyError(const redisReply* r) const {
    const std::string message = ReplyString(r);
    // A Redis loading its data or a read-only replica will serve again.
    if (absl::StartsWith(message, "LOADING") ||
        absl::StartsWith(message, "READONLY") ||
        absl::StartsWith(message, "MASTERDOWN") ||
        absl::StartsWith(message, "BUSY")) {
      return Unreachable(message);
    }
    if (absl::StartsWith(message, "OOM")) {
      return absl::ResourceExhaustedError(
          absl::StrCat("Redis at ", where_, ": ", message));
    }
    return absl::InternalError(
        absl::StrCat("Redis at ", where_, ": ", message));
  }

  // An idle connection, or a new one. `reused` says which.
  absl::StatusOr<Context> Acquire(bool* reused) {
    {
      absl::MutexLock lock(&pool_mu_);
      if (!idle_.empty()) {
        Context c = std::move(idle_.back());
        idle_.pop_back();
        *reused = true;
        return c;
      }
      // Redis was just found down: do not try again for a moment.
      if (absl::Now() < retry_after_) return last_connect_error_;
    }
    *reused = false;
    absl::StatusOr<Context> c = Connect();
    absl::MutexLock lock(&pool_mu_);
    if (!c.ok()) {
      if (absl::IsUnavailable(c.status())) {
        retry_after_ = absl::Now() + options_.redis_retry_interval;
        last_connect_error_ = c.status();
        lost_ = true;
      }
      return c.status();
    }
    if (connected_once_) stats_.CountReconnect();
    connected_once_ = true;
    if (lost_) {
      lost_ = false;
      // Changes may have been missed while Redis was away.
      notifier_->NotifyAll();
    }
    return c;
  }

  void Return(Context c) {
    if (c == nullptr || c->err) return;
    absl::MutexLock lock(&pool_mu_);
    if (static_cast<int>(idle_.size()) <
        std::max(1, options_.redis_pool_size)) {
      idle_.push_back(std::move(c));
    }
  }

  void DropPool() {
    absl::MutexLock lock(&pool_mu_);
    idle_.clear();
  }

  // Sends `commands` in one round trip and returns their replies in order.
  // An I/O error on a connection taken from the pool is retried once on a
  // new one: the pooled connection may predate a restart of Redis, and then
  // the command never reached it.
  absl::StatusOr<std::vector<Reply>> Pipeline(
      const std::vector<std::vector<std::string>>& commands) {
    for (int attempt = 0;; ++attempt) {
      bool reused = false;
      absl::StatusOr<Context> c = Acquire(&reused);
      if (!c.ok()) return c.status();
      std::vector<Reply> replies;
      bool io_error = false;
      for (const std::vector<std::string>& cmd : commands) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const std::string& a : cmd) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        if (redisAppendCommandArgv(c->get(), static_cast<int>(argv.size()),
                                   argv.data(), lens.data()) != REDIS_OK) {
          io_error = true;
          break;
        }
      }
      for (size_t i = 0; !io_error && i < commands.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(c->get(), &raw) != REDIS_OK || raw == nullptr) {
          io_error = true;
          break;
        }
        replies.emplace_back(static_cast<redisReply*>(raw));
      }
      if (io_error) {
        absl::Status err = IoError(c->get());
        // Not after a time-out: a stalled Redis would cost the caller
        // twice the timeout.
        if (reused && attempt == 0 && !TimedOut(c->get())) {
          // Every idle connection is as old as this one.
          DropPool();
          continue;
        }
        {
          absl::MutexLock lock(&pool_mu_);
          lost_ = true;
        }
        DropPool();
        return err;
      }
      for (const Reply& r : replies) {
        if (r->type == REDIS_REPLY_ERROR) {
          Return(*std::move(c));
          return ReplyError(r.get());
        }
      }
      Return(*std::move(c));
      return replies;
    }
  }

  absl::StatusOr<Reply> Command(const std::vector<std::string>& args) {
    absl::StatusOr<std::vector<Reply>> replies = Pipeline({args});
    if (!replies.ok()) return replies.status();
    return std::move((*replies)[0]);
  }

  // ------------------------------------------------------------- pub/sub

  bool Stopping() {
    absl::MutexLock lock(&sub_mu_);
    return stop_;
  }

  // Waits up to `d` or until the store stops.
  void Sleep(absl::Duration d) {
    pollfd fd{wake_fds_[0], POLLIN, 0};
    poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(d)));
  }

  // The subscriber: one connection per store, SUBSCRIBE to the change
  // channel, each message "ID VERSION" wakes the local waiters of job ID.
  // While it is down the waiters poll every fallback_poll_interval; when it
  // is back every waiter re-reads once (messages were lost meanwhile).
  void SubscribeLoop() {
    while (!Stopping()) {
      Context c(
          redisConnectWithTimeout(address_.host.c_str(), address_.port,
                                  TimeoutOf(options_.redis_connect_timeout)));
      if (c == nullptr || c->err) {
        Sleep(options_.redis_retry_interval);
        continue;
      }
      redisSetTimeout(c.get(), TimeoutOf(options_.redis_command_timeout));
      redisEnableKeepAlive(c.get());
      Reply r(static_cast<redisReply*>(redisCommand(
          c.get(), "SUBSCRIBE %b", channel_.data(), channel_.size())));
      if (r == nullptr || r->type == REDIS_REPLY_ERROR) {
        Sleep(options_.redis_retry_interval);
        continue;
      }
      notifier_->SetPollInterval(options_.poll_interval);
      notifier_->NotifyAll();
      ReadMessages(c.get());
      notifier_->SetPollInterval(options_.fallback_poll_interval);
    }
  }

  // Until the connection fails or the store stops.
  void ReadMessages(redisContext* c) {
    while (!Stopping()) {
      void* raw = nullptr;
      if (redisGetReplyFromReader(c, &raw) != REDIS_OK) return;
      if (raw != nullptr) {
        Reply r(static_cast<redisReply*>(raw));
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
            ReplyString(r->element[0]) == "message") {
          const std::string text = ReplyString(r->element[2]);
          const size_t space = text.rfind(' ');
          notifier_->Notify(absl::string_view(text).substr(0, space));
          stats_.CountNotification();
        }
        continue;
      }
      pollfd fds[2] = {{c->fd, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
      if (poll(fds, 2, 1000) < 0 && errno != EINTR) return;
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0 && redisBufferRead(c) != REDIS_OK) return;
    }
  }

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

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> OpenRedisStore(
    const RedisAddress& address, const StoreOptions& options) {
  // hiredis writes with write(2): a write to a connection that Redis has
  // closed raises SIGPIPE, whose default action ends the process. A handler
  // someone else installed is left alone.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 &&
      current.sa_handler == SIG_DFL) {
    signal(SIGPIPE, SIG_IGN);
  }
  auto store = std::make_unique<RedisStore>(address, options);
  if (absl::Status s = store->Start(); !s.ok()) return s;
  return store;
}

}  // namespace mcmpart::store
