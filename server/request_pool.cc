#include "server/request_pool.h"

#include <string>
#include <utility>

#include "absl/strings/str_format.h"
namespace mcmpart::server {
namespace {

std::string Mib(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

}  // namespace

RequestPool::RequestPool(const RequestPoolOptions& options)
    : options_(options) {
  const int threads = options_.threads < 1 ? 1 : options_.threads;
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

RequestPool::~RequestPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

absl::Status RequestPool::Schedule(std::function<void()> work, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError("the server is shutting down");
  }
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "server busy: %d requests running and %d waiting, the limit "
        "(--handler-threads %d + --max-pending-requests %d); retry later",
        busy_, queue_.size(), options_.threads, options_.max_queue));
  }
  if (bytes_ > 0 && bytes_ + bytes > options_.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "server busy: requests holding %s are being handled and this one "
        "has %s, over the limit (--max-inflight-bytes %s); retry later",
        Mib(bytes_), Mib(bytes), Mib(options_.max_bytes)));
  }
  bytes_ += bytes;
  queue_.push_back(Task{std::move(work), bytes});
  return absl::OkStatus();
}

RequestPoolLoad RequestPool::load() const {
  absl::MutexLock lock(&mu_);
  return RequestPoolLoad{busy_, static_cast<int>(queue_.size()), bytes_};
}

bool RequestPool::Ready() const { return stopping_ || !queue_.empty(); }

void RequestPool::Loop() {
  while (true) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &RequestPool::Ready));
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
      ++busy_;
    }
    task.work();
    task.work = nullptr;  // releases what the work captured, outside the lock
    absl::MutexLock lock(&mu_);
    --busy_;
    bytes_ -= task.bytes;
  }
}

}  // namespace mcmpart::server
