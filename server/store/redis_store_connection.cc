// The Redis backend's connections: a pool of idle connections, the
// schema check each new connection makes, round trips (one command or a
// pipeline of them) and the errors they map to.
#include <errno.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/redis_store_internal.h"

namespace mcmpart::store::redis_internal {
namespace {

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

}  // namespace

std::string Num(int64_t v) { return absl::StrCat(v); }
std::string Real(double v) { return absl::StrFormat("%.17g", v); }

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

absl::Status RedisStore::Ping() {
  return stats_.Run(
      "ping", [&]() -> absl::Status { return Command({"PING"}).status(); });
}

absl::Status RedisStore::Unexpected(absl::string_view op) const {
  return absl::InternalError(
      absl::StrCat("Redis at ", where_, ": unexpected answer to ", op));
}

absl::Status RedisStore::Unreachable(absl::string_view why) const {
  return absl::UnavailableError(absl::StrCat("the state store at Redis ",
                                             where_, " is unreachable: ", why));
}

absl::StatusOr<Context> RedisStore::Connect() {
  Context c(redisConnectWithTimeout(address_.host.c_str(), address_.port,
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
        where_, address_.db, schema_key, ReplyString(r.get()), kSchemaVersion));
  }
  return c;
}

bool RedisStore::TimedOut(const redisContext* c) {
  return c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
}

absl::Status RedisStore::IoError(redisContext* c) const {
  if (TimedOut(c)) {
    return Unreachable(
        absl::StrCat("no answer within ",
                     absl::FormatDuration(options_.redis_command_timeout)));
  }
  return Unreachable(c->errstr[0] != '\0' ? c->errstr : "connection lost");
}

absl::Status RedisStore::ReplyError(const redisReply* r) const {
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
  return absl::InternalError(absl::StrCat("Redis at ", where_, ": ", message));
}

absl::StatusOr<Context> RedisStore::Acquire(bool* reused) {
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

void RedisStore::Return(Context c) {
  if (c == nullptr || c->err) return;
  absl::MutexLock lock(&pool_mu_);
  if (static_cast<int>(idle_.size()) < std::max(1, options_.redis_pool_size)) {
    idle_.push_back(std::move(c));
  }
}

void RedisStore::DropPool() {
  absl::MutexLock lock(&pool_mu_);
  idle_.clear();
}

absl::StatusOr<std::vector<Reply>> RedisStore::Pipeline(
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

absl::StatusOr<Reply> RedisStore::Command(
    const std::vector<std::string>& args) {
  absl::StatusOr<std::vector<Reply>> replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  return std::move((*replies)[0]);
}

}  // namespace mcmpart::store::redis_internal
