#include "server/stream_hub.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "server/status.h"

namespace mcmpart::server {

bool SerializeTo(const google::protobuf::MessageLite& message,
                 grpc::ByteBuffer* buffer) {
  buffer->Clear();  // the writer wants an empty buffer
  bool own = false;
  return grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(
             message, buffer, &own)
      .ok();
}

JobStream::JobStream(StreamHub* hub, std::string client,
                     std::function<void(const grpc::Status&)> on_done)
    : hub_(hub), client_(std::move(client)), on_done_(std::move(on_done)) {}

void JobStream::FinishEarly(grpc::Status status) {
  FinishWith(std::move(status));
}

void JobStream::FinishWith(grpc::Status status) {
  // Counted before the client can see the status, so that a metrics read
  // right after the call returns includes it.
  if (on_done_) on_done_(status);
  Finish(std::move(status));
}

void JobStream::Attach(std::shared_ptr<Job> job, bool owns_job,
                       absl::Time deadline) {
  job_ = std::move(job);
  owns_job_ = owns_job;
  deadline_ = deadline;
  hub_->Add(this);
}

void JobStream::OnWriteDone(bool ok) {
  if (!ok) write_failed_ = true;
  write_in_flight_ = false;
  hub_->Kick();
}

void JobStream::OnCancel() {
  cancelled_ = true;
  hub_->Kick();
}

void JobStream::OnDone() {
  if (!client_.empty()) hub_->Release(client_);
  delete this;
}

bool JobStream::Pump(JobManager* jobs) {
  if (write_in_flight_) return false;
  if (cancelled_ || write_failed_) {
    // The client is gone (cancel, deadline or disconnect). A plain call's
    // work is worth nothing now unless a follower holds it; a submitted
    // job's lives on for other watchers.
    const bool deadline = absl::Now() >= deadline_;
    if (owns_job_) {
      jobs->Release(*job_,
                    deadline ? StopCause::kDeadline : StopCause::kCancelled);
    }
    FinishWith(
        write_failed_ && !cancelled_
            ? grpc::Status(grpc::StatusCode::CANCELLED, "the client went away")
            : grpc::Status(grpc::StatusCode::CANCELLED,
                           "the client cancelled the call or its "
                           "deadline passed"));
    return true;
  }
  if (job_->version() == seen_version_) return false;
  const JobSnapshot snap = job_->Snapshot();
  seen_version_ = snap.version;
  if (snap.done()) {
    const grpc::Status status = ToGrpcStatus(snap.status);
    // A failed job without a placement has nothing to send but its status.
    if ((snap.status.ok() || snap.best) &&
        SerializeTo(*snap.final_update, &buffer_)) {
      if (on_done_) on_done_(status);
      StartWriteAndFinish(&buffer_, grpc::WriteOptions(), status);
    } else {
      FinishWith(status);
    }
    return true;
  }
  if (snap.best && snap.best_version > sent_best_ &&
      SerializeTo(*snap.best, &buffer_)) {
    sent_best_ = snap.best_version;
    write_in_flight_ = true;
    StartWrite(&buffer_);
  }
  return false;
}

StreamHub::StreamHub(JobManager* jobs, absl::Duration poll_interval,
                     const StreamLimits& limits)
    : jobs_(jobs),
      poll_interval_(poll_interval),
      limits_(limits),
      pump_([this] { Loop(); }) {}

StreamHub::~StreamHub() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  pump_.join();
}

std::string StreamHub::ClientOf(const std::string& peer) {
  // "ipv4:1.2.3.4:5", "ipv6:[::1]:5": drop the port. Anything else
  // ("unix:/path", "") is its own key.
  if (peer.rfind("ipv4:", 0) != 0 && peer.rfind("ipv6:", 0) != 0) return peer;
  const size_t colon = peer.rfind(':');
  return colon > 5 ? peer.substr(0, colon) : peer;
}

absl::Status StreamHub::Open(const std::string& client) {
  absl::MutexLock lock(&mu_);
  if (open_ >= limits_.max_streams) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "server busy: %d streams open, the limit (--max-streams %d); retry "
        "later",
        open_, limits_.max_streams));
  }
  int& mine = per_client_[client];
  if (mine >= limits_.max_streams_per_client) {
    if (mine == 0) per_client_.erase(client);
    return absl::ResourceExhaustedError(
        absl::StrFormat("this client has %d streams open, the limit per client "
                        "(--max-streams-per-client %d); close some first",
                        mine, limits_.max_streams_per_client));
  }
  ++mine;
  ++open_;
  return absl::OkStatus();
}

void StreamHub::Release(const std::string& client) {
  absl::MutexLock lock(&mu_);
  --open_;
  auto it = per_client_.find(client);
  if (it != per_client_.end() && --it->second <= 0) per_client_.erase(it);
}

int StreamHub::open_streams() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

void StreamHub::Add(JobStream* stream) {
  absl::MutexLock lock(&mu_);
  streams_.push_back(stream);
  kicked_ = true;
}

void StreamHub::Kick() {
  absl::MutexLock lock(&mu_);
  kicked_ = true;
}

bool StreamHub::Wakeable() const { return stopping_ || kicked_; }

void StreamHub::Loop() {
  std::vector<JobStream*> work;
  std::vector<JobStream*> finished;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (streams_.empty()) {
        mu_.Await(absl::Condition(this, &StreamHub::Wakeable));
      } else {
        mu_.AwaitWithTimeout(absl::Condition(this, &StreamHub::Wakeable),
                             poll_interval_);
      }
      // Streams still open at shutdown belong to a server that was not shut
      // down first; nothing may touch them once the hub is gone.
      if (stopping_) return;
      kicked_ = false;
      work = streams_;
    }
    // gRPC may run a stream's reactions (even OnDone) inline in StartWrite
    // or Finish; the lock is not held here so that they can Kick.
    finished.clear();
    for (JobStream* s : work) {
      if (s->Pump(jobs_)) finished.push_back(s);
    }
    if (finished.empty()) continue;
    absl::MutexLock lock(&mu_);
    streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                  [&](JobStream* s) {
                                    return std::find(finished.begin(),
                                                     finished.end(),
                                                     s) != finished.end();
                                  }),
                   streams_.end());
  }
}

}  // namespace mcmpart::server
