#include "server/store/change_notifier.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/time/clock.h"

namespace mcmpart::store::internal {

class ChangeNotifier::SubscriptionImpl : public Subscription {
 public:
  SubscriptionImpl(ChangeNotifier* notifier, uint64_t id)
      : notifier_(notifier), id_(id) {}
  ~SubscriptionImpl() override { notifier_->Unsubscribe(id_); }

 private:
  ChangeNotifier* const notifier_;
  const uint64_t id_;
};

ChangeNotifier::ChangeNotifier(Reader read, absl::Duration poll_interval)
    : read_(std::move(read)), poll_interval_(poll_interval) {}

ChangeNotifier::~ChangeNotifier() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    ++dispatch_seq_;
  }
  if (dispatcher_.joinable()) dispatcher_.join();
}

void ChangeNotifier::AddRef(const std::string& id) { ++watches_[id].refs; }

void ChangeNotifier::Release(const std::string& id) {
  auto it = watches_.find(id);
  if (it != watches_.end() && --it->second.refs <= 0) watches_.erase(it);
}

void ChangeNotifier::Notify(absl::string_view id) {
  absl::MutexLock lock(&mu_);
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  ++it->second.seq;
  ++dispatch_seq_;
}

void ChangeNotifier::NotifyAll() {
  absl::MutexLock lock(&mu_);
  ++epoch_;
  ++dispatch_seq_;
}

void ChangeNotifier::SetPollInterval(absl::Duration interval) {
  absl::MutexLock lock(&mu_);
  if (interval == poll_interval_) return;
  poll_interval_ = interval;
  // Sleepers re-arm their timers with the new interval.
  ++epoch_;
  ++dispatch_seq_;
}

absl::StatusOr<JobRecord> ChangeNotifier::WaitForChange(
    absl::string_view id_view, uint64_t seen_version, absl::Duration timeout) {
  const std::string id(id_view);
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  // Registered before the first read, so that a change between the read
  // and the wait still wakes us.
  AddRef(id);
  absl::StatusOr<JobRecord> job;
  while (true) {
    const uint64_t seq = watches_[id].seq;
    const uint64_t epoch = epoch_;
    mu_.Unlock();
    job = read_(id);
    mu_.Lock();
    if (!job.ok() || job->version != seen_version) break;
    const absl::Time now = absl::Now();
    if (now >= deadline) break;
    struct Arg {
      ChangeNotifier* self;
      const std::string* id;
      uint64_t seq, epoch;
    } arg{this, &id, seq, epoch};
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                return a->self->stop_ ||
                                       a->self->epoch_ != a->epoch ||
                                       a->self->watches_[*a->id].seq != a->seq;
                              },
                              &arg),
                          std::min(deadline, now + poll_interval_));
    if (stop_) break;
  }
  Release(id);
  return job;
}

std::unique_ptr<Subscription> ChangeNotifier::Subscribe(
    absl::string_view id, ChangeCallback callback) {
  absl::MutexLock lock(&mu_);
  const uint64_t sub_id = next_sub_id_++;
  Sub& sub = subs_[sub_id];
  sub.job_id = std::string(id);
  sub.callback = std::move(callback);
  sub.seen_epoch = epoch_;
  AddRef(sub.job_id);
  sub.seen_seq = watches_[sub.job_id].seq;
  ++dispatch_seq_;
  if (!dispatcher_started_) {
    dispatcher_started_ = true;
    dispatcher_ = std::thread([this] { DispatchLoop(); });
  }
  return std::make_unique<SubscriptionImpl>(this, sub_id);
}

void ChangeNotifier::Unsubscribe(uint64_t sub_id) {
  absl::MutexLock lock(&mu_);
  auto it = subs_.find(sub_id);
  if (it != subs_.end()) {
    Release(it->second.job_id);
    subs_.erase(it);
  }
  struct Arg {
    ChangeNotifier* self;
    uint64_t id;
  } arg{this, sub_id};
  mu_.Await(absl::Condition(
      +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return a->self->running_sub_ != a->id;
      },
      &arg));
}

void ChangeNotifier::DispatchLoop() {
  absl::MutexLock lock(&mu_);
  absl::Time next_poll = absl::Now() + poll_interval_;
  uint64_t seen_dispatch = 0;
  while (!stop_) {
    // Which subscriptions have something to report (or are due a poll).
    const bool poll_due = absl::Now() >= next_poll;
    if (poll_due) next_poll = absl::Now() + poll_interval_;
    seen_dispatch = dispatch_seq_;
    std::vector<uint64_t> due;
    for (auto& [sub_id, sub] : subs_) {
      if (sub.gone) continue;
      const uint64_t seq = watches_[sub.job_id].seq;
      if (poll_due || !sub.reported || seq != sub.seen_seq ||
          epoch_ != sub.seen_epoch) {
        sub.seen_seq = seq;
        sub.seen_epoch = epoch_;
        due.push_back(sub_id);
      }
    }
    for (uint64_t sub_id : due) {
      auto it = subs_.find(sub_id);
      if (it == subs_.end() || stop_) continue;  // unsubscribed meanwhile
      const std::string job_id = it->second.job_id;
      running_sub_ = sub_id;
      mu_.Unlock();
      absl::StatusOr<JobRecord> job = read_(job_id);
      mu_.Lock();
      it = subs_.find(sub_id);
      if (it != subs_.end()) {
        Sub& sub = it->second;
        if (job.ok() && (!sub.reported || job->version != sub.last_version)) {
          sub.reported = true;
          sub.last_version = job->version;
          // The callback runs unlocked; Unsubscribe waits for it through
          // running_sub_.
          ChangeCallback callback = sub.callback;
          mu_.Unlock();
          callback(*job);
          mu_.Lock();
        } else if (absl::IsNotFound(job.status())) {
          sub.gone = true;
        }
        // Other errors (UNAVAILABLE): retried at the next poll.
      }
      running_sub_ = 0;
    }
    struct Arg {
      ChangeNotifier* self;
      uint64_t seen;
    } arg{this, seen_dispatch};
    mu_.AwaitWithDeadline(absl::Condition(
                              +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
                                return a->self->stop_ ||
                                       a->self->dispatch_seq_ != a->seen;
                              },
                              &arg),
                          next_poll);
  }
}

}  // namespace mcmpart::store::internal
