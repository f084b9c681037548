// The Redis backend's set-up and its change subscription: construction,
// the subscriber thread that turns pub/sub messages into local
// notifications, and OpenRedisStore. The other calls are in
// redis_store_jobs.cc, redis_store_leases.cc and redis_store_cache.cc, the
// connections in redis_store_connection.cc.
#include "server/store/redis_store.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/store/change_notifier.h"
#include "server/store/redis_store_internal.h"

namespace mcmpart::store::redis_internal {

RedisStore::RedisStore(const RedisAddress& address, const StoreOptions& options)
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

RedisStore::~RedisStore() {
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

absl::Status RedisStore::Start() {
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

absl::StatusOr<JobRecord> RedisStore::WaitForChange(absl::string_view id,
                                                    uint64_t seen_version,
                                                    absl::Duration timeout) {
  return notifier_->WaitForChange(id, seen_version, timeout);
}

std::unique_ptr<Subscription> RedisStore::Subscribe(absl::string_view id,
                                                    ChangeCallback callback) {
  return notifier_->Subscribe(id, std::move(callback));
}

bool RedisStore::Stopping() {
  absl::MutexLock lock(&sub_mu_);
  return stop_;
}

void RedisStore::Sleep(absl::Duration d) {
  pollfd fd{wake_fds_[0], POLLIN, 0};
  poll(&fd, 1, static_cast<int>(absl::ToInt64Milliseconds(d)));
}

void RedisStore::SubscribeLoop() {
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

void RedisStore::ReadMessages(redisContext* c) {
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

}  // namespace mcmpart::store::redis_internal

namespace mcmpart::store {

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
  auto store = std::make_unique<redis_internal::RedisStore>(address, options);
  if (absl::Status s = store->Start(); !s.ok()) return s;
  return store;
}

}  // namespace mcmpart::store
