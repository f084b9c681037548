// The threads that run the service's blocking request work (parsing and
// importing graphs, evaluate, repair, the wait in CancelJob), with
// admission: a bounded queue and a bound on the request bytes held by work
// admitted and not yet done.
//
// gRPC's callback API runs handlers on a few library threads that must not
// block; the synchronous API held one thread per call, so 300 idle streams
// locked every other call out. Work that blocks goes here instead, and what
// does not fit is refused at once (RESOURCE_EXHAUSTED) rather than queued
// without bound: a refused client retries elsewhere, a queued one holds its
// request's memory.
#ifndef MCMPART_SERVER_REQUEST_POOL_H_
#define MCMPART_SERVER_REQUEST_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace mcmpart::server {

struct RequestPoolOptions {
  // Threads running work at once.
  int threads = 8;
  // Work waiting for a thread; Schedule refuses beyond.
  int max_queue = 64;
  // Request bytes held by admitted work (queued or running); Schedule
  // refuses work that would pass it. A single request larger than this is
  // still admitted when nothing else is held, so that the limit never
  // refuses a request the transport accepted on an idle server.
  int64_t max_bytes = int64_t{512} << 20;
};

// A snapshot of the pool's load.
struct RequestPoolLoad {
  int busy = 0;
  int queued = 0;
  int64_t bytes = 0;
};

// Thread-safe. The destructor runs the queued work and joins the threads.
class RequestPool {
 public:
  explicit RequestPool(const RequestPoolOptions& options);
  ~RequestPool();
  RequestPool(const RequestPool&) = delete;
  RequestPool& operator=(const RequestPool&) = delete;

  // Queues `work`, which holds `bytes` until it returns. Errors:
  // RESOURCE_EXHAUSTED when the queue is full or the bytes would pass the
  // limit (the message names the figure and the flag that sets it). `work`
  // must not throw.
  absl::Status Schedule(std::function<void()> work, int64_t bytes);

  RequestPoolLoad load() const;
  const RequestPoolOptions& options() const { return options_; }

 private:
  struct Task {
    std::function<void()> work;
    int64_t bytes = 0;
  };
  void Loop();
  bool Ready() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const RequestPoolOptions options_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_REQUEST_POOL_H_
