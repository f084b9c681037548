// Server-streaming calls that deliver a job's updates (Partition,
// WatchJob) without a thread per call.
//
// With gRPC's synchronous API every open stream held a handler thread, so
// 300 idle WatchJob streams exhausted the pool and every other call failed.
// Here a stream is a gRPC callback reactor (JobStream) and one pump thread
// (StreamHub) serves them all: it looks at each stream's job every
// poll interval, or at once when gRPC reports a finished write or a cancel,
// and starts the next write. A stream has at most one write in flight, so a
// slow reader costs one buffered update, never a backlog.
#ifndef MCMPART_SERVER_STREAM_HUB_H_
#define MCMPART_SERVER_STREAM_HUB_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/job_manager.h"

namespace mcmpart::server {

class StreamHub;

// One server-streaming call. The service creates it in the handler and
// returns it to gRPC; it deletes itself when gRPC is done with it (OnDone).
// Until Attach or FinishEarly it sends nothing; exactly one of the two must
// be called, once, from any thread.
class JobStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  // `client` is the key the hub counts streams by (empty: the hub refused
  // the stream, nothing to release). `on_done` runs once, just before the
  // call is finished, with the status it ends with.
  JobStream(StreamHub* hub, std::string client,
            std::function<void(const grpc::Status&)> on_done);

  // Ends the call with `status` and no message.
  void FinishEarly(grpc::Status status);

  // Hands the stream to the hub, which writes `job`'s improving updates
  // and the final one, then the job's status. With `owns_job` (a Partition
  // call's own job, or its follower) the stream holds the job once: a
  // client that goes away (cancel, deadline or disconnect) releases it
  // (JobManager::Release), which cancels it unless a follower of another
  // call still holds it; otherwise the job lives on for other watchers.
  void Attach(std::shared_ptr<Job> job, bool owns_job, absl::Time deadline);

  // Whether the client cancelled the call or went away.
  bool cancelled() const { return cancelled_.load(); }

  // grpc::ServerWriteReactor.
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  friend class StreamHub;
  // Pump thread only. Starts the next write or finishes the call; returns
  // true when it called Finish (the stream may then be gone at once).
  bool Pump(JobManager* jobs);
  void FinishWith(grpc::Status status);

  StreamHub* const hub_;
  const std::string client_;
  const std::function<void(const grpc::Status&)> on_done_;

  std::atomic<bool> cancelled_{false};
  std::atomic<bool> write_in_flight_{false};
  std::atomic<bool> write_failed_{false};

  // Set by Attach, then used by the pump thread alone.
  std::shared_ptr<Job> job_;
  bool owns_job_ = false;
  absl::Time deadline_ = absl::InfiniteFuture();
  uint64_t seen_version_ = 0;
  uint64_t sent_best_ = 0;
  grpc::ByteBuffer buffer_;  // the write in flight
};

struct StreamLimits {
  // Streams open at once, and per client address (the peer's host without
  // its port); Open refuses beyond.
  int max_streams = 4096;
  int max_streams_per_client = 1024;
};

// Thread-safe. Must outlive every JobStream it serves: destroy it after the
// gRPC server has shut down.
class StreamHub {
 public:
  // `jobs` must outlive the hub. `poll_interval` bounds how late a stream
  // sees a job's change.
  StreamHub(JobManager* jobs, absl::Duration poll_interval,
            const StreamLimits& limits);
  ~StreamHub();
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  // Reserves a stream for `client` until its JobStream is done. Errors:
  // RESOURCE_EXHAUSTED naming the limit and its flag.
  absl::Status Open(const std::string& client);

  int open_streams() const;
  const StreamLimits& limits() const { return limits_; }

  // The part of a gRPC peer ("ipv4:10.0.0.7:51234") that names the client
  // host ("ipv4:10.0.0.7").
  static std::string ClientOf(const std::string& peer);

 private:
  friend class JobStream;
  void Add(JobStream* stream);
  void Release(const std::string& client);
  void Kick();
  void Loop();
  bool Wakeable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobManager* const jobs_;
  const absl::Duration poll_interval_;
  const StreamLimits limits_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  int open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int> per_client_ ABSL_GUARDED_BY(mu_);
  std::vector<JobStream*> streams_ ABSL_GUARDED_BY(mu_);  // attached
  std::thread pump_;  // last: starts once the rest exists
};

// Serializes `message` into `buffer`; false when it cannot be serialized.
bool SerializeTo(const google::protobuf::MessageLite& message,
                 grpc::ByteBuffer* buffer);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_STREAM_HUB_H_
