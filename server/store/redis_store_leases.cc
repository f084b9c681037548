// The Redis backend's leases and search claims: renewing and releasing a
// job's lease, taking over the jobs whose lease ran out, and the claims
// that keep two replicas from searching one problem at once.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "server/store/redis_store_internal.h"

namespace mcmpart::store::redis_internal {
namespace {

using internal::DecodeTime;

// KEYS: job, live. ARGV: id, owner, lease_us. Returns {0, cancel, version}
// or the errors of kUpdateScript (redis_store_jobs.cc).
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
// errors of kUpdateScript (redis_store_jobs.cc).
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

}  // namespace

absl::StatusOr<LeaseInfo> RedisStore::RenewLease(absl::string_view id,
                                                 absl::string_view owner,
                                                 absl::Duration ttl) {
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

absl::Status RedisStore::ReleaseLease(absl::string_view id,
                                      absl::string_view owner) {
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

absl::StatusOr<std::vector<JobRecord>> RedisStore::ClaimOrphans(
    absl::string_view owner, absl::Duration lease_ttl, int limit) {
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

absl::StatusOr<SearchClaim> RedisStore::ClaimSearch(
    absl::string_view problem_key, absl::string_view job_id,
    absl::string_view owner, absl::Duration ttl) {
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
    return SearchClaim{ReplyInt(r->element[0]) == 1, ReplyString(r->element[1]),
                       ReplyString(r->element[2]),
                       now + absl::Milliseconds(std::max<int64_t>(
                                 0, ReplyInt(r->element[3])))};
  });
}

absl::Status RedisStore::ReleaseSearch(absl::string_view problem_key,
                                       absl::string_view job_id) {
  return stats_.Run("release_search", [&]() -> absl::Status {
    absl::StatusOr<Reply> reply =
        Command({"EVAL", kReleaseSearchScript, "1", Key("claim:", problem_key),
                 std::string(job_id)});
    return reply.status();
  });
}

}  // namespace mcmpart::store::redis_internal
