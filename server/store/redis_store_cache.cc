// The Redis backend's result cache: one hash per entry, its expiry renewed
// on every read and write.
#include <hiredis/hiredis.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/store/redis_store_internal.h"

namespace mcmpart::store::redis_internal {
namespace {

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

}  // namespace

absl::StatusOr<std::optional<CacheEntry>> RedisStore::CacheGet(
    absl::string_view key) {
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

absl::StatusOr<bool> RedisStore::CachePut(absl::string_view key,
                                          const v1::PartitionUpdate& best) {
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

}  // namespace mcmpart::store::redis_internal
