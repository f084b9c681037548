// The Redis backend's job records: creating, updating, reading, listing,
// cancelling and purging jobs. Each change is one Lua script, so that it is
// atomic and publishes its change notification in the same step.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/store/redis_store_internal.h"

namespace mcmpart::store::redis_internal {
namespace {

using internal::DecodeTime;
using internal::EncodeTime;

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

// HMGET order for reading a job.
constexpr const char* kJobFields[] = {
    "id",      "owner",   "lease", "state",  "strategy", "graph", "hardware",
    "nodes",   "create",  "start", "end",    "code",     "msg",   "reason",
    "elapsed", "samples", "bound", "cancel", "version",  "best",  "final"};
constexpr int kNumJobFields = sizeof(kJobFields) / sizeof(kJobFields[0]);

std::string OptionalUpdate(const std::optional<v1::PartitionUpdate>& u) {
  if (!u) return "";
  return absl::StrCat("+", u->SerializeAsString());
}

}  // namespace

absl::Status RedisStore::CreateJob(const JobRecord& job) {
  return stats_.Run("create_job", [&]() -> absl::Status {
    if (absl::Status s = internal::RequireNonEmpty(job.id, "job id"); !s.ok()) {
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

absl::StatusOr<uint64_t> RedisStore::UpdateJob(absl::string_view id,
                                               absl::string_view owner,
                                               const JobProgress& progress) {
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

absl::StatusOr<JobRecord> RedisStore::GetJob(absl::string_view id,
                                             RequestField request) {
  return stats_.Run("get_job", [&]() -> absl::StatusOr<JobRecord> {
    absl::StatusOr<std::vector<std::optional<JobRecord>>> jobs =
        ReadJobs({std::string(id)}, request);
    if (!jobs.ok()) return jobs.status();
    if (!(*jobs)[0].has_value()) return internal::JobNotFound(id);
    return *std::move((*jobs)[0]);
  });
}

absl::StatusOr<std::vector<JobRecord>> RedisStore::ListJobs(
    const ListJobsOptions& options) {
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

absl::StatusOr<JobRecord> RedisStore::RequestCancel(absl::string_view id) {
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

absl::StatusOr<int> RedisStore::PurgeEnded(absl::Duration max_age,
                                           int max_count) {
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

void RedisStore::AppendProgress(const JobProgress& p,
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

absl::StatusOr<int64_t> RedisStore::OwnerChecked(
    const redisReply* r, absl::string_view id, absl::string_view owner) const {
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
    return Unexpected("an owner check");
  }
  const int64_t code = ReplyInt(r->element[0]);
  const std::string detail = r->elements > 1 ? ReplyString(r->element[1]) : "";
  switch (code) {
    case 0:
      return r->elements > 1 ? ReplyInt(r->element[1]) : 0;
    case 1:
      return internal::JobNotFound(id);
    case 2:
      return internal::NotOwner(id, owner, detail);
    case 3:
      return internal::AlreadyEnded(
          id,
          static_cast<JobState>(r->elements > 1 ? ReplyInt(r->element[1]) : 0));
    default:
      return Unexpected("an owner check");
  }
}

absl::StatusOr<std::vector<std::optional<JobRecord>>> RedisStore::ReadJobs(
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

absl::StatusOr<JobRecord> RedisStore::ParseJob(const redisReply* r) const {
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
  job.progress.status = absl::Status(internal::DecodeStatusCode(n(11)), s(12));
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
      return absl::InternalError(absl::StrCat(
          "Redis at ", where_, ": job ", job.id, ": an update does not parse"));
    }
  }
  return job;
}

}  // namespace mcmpart::store::redis_internal
