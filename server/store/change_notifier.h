// WaitForChange and Subscribe for every backend, on top of two things the
// backend supplies: a way to read a job, and Notify calls whenever it learns
// that a job changed (its own writes; Redis pub/sub messages from other
// replicas). Between notifications every waiter re-reads its job each poll
// interval, so that a lost or never-sent notification (another process on a
// sqlite file, pub/sub down) delays a change but never hides it.
// Internal to server/store/.
#ifndef MCMPART_SERVER_STORE_CHANGE_NOTIFIER_H_
#define MCMPART_SERVER_STORE_CHANGE_NOTIFIER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/store.h"

namespace mcmpart::store::internal {

class ChangeNotifier {
 public:
  // Reads a job without its request. Called without any lock of the
  // notifier held, from waiters' threads and the dispatcher thread.
  using Reader = std::function<absl::StatusOr<JobRecord>(absl::string_view)>;

  ChangeNotifier(Reader read, absl::Duration poll_interval);
  // Stops the dispatcher. Every Subscription must be destroyed before.
  ~ChangeNotifier();
  ChangeNotifier(const ChangeNotifier&) = delete;
  ChangeNotifier& operator=(const ChangeNotifier&) = delete;

  // Job `id` changed: wake its waiters and subscriptions. Cheap when nobody
  // watches the job (one hash lookup).
  void Notify(absl::string_view id);
  // Any job may have changed (notifications were lost): everyone re-reads.
  void NotifyAll();
  // How often waiters re-read without a notification.
  void SetPollInterval(absl::Duration interval);

  absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                          uint64_t seen_version,
                                          absl::Duration timeout);
  std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                          ChangeCallback callback);

 private:
  class SubscriptionImpl;
  // Per watched job: bumped by each Notify; refs = waiters + subscriptions.
  struct Watch {
    uint64_t seq = 0;
    int refs = 0;
  };
  struct Sub {
    std::string job_id;
    ChangeCallback callback;
    uint64_t seen_seq = 0;
    uint64_t seen_epoch = 0;
    uint64_t last_version = 0;
    bool reported = false;  // the first report happened
    bool gone = false;      // the job was purged: no more reports
  };

  void AddRef(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unsubscribe(uint64_t sub_id);
  void DispatchLoop();

  const Reader read_;

  absl::Mutex mu_;
  absl::Duration poll_interval_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Watch> watches_ ABSL_GUARDED_BY(mu_);
  // Bumped by NotifyAll.
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped by anything the dispatcher must look at.
  uint64_t dispatch_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, Sub> subs_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sub_id_ ABSL_GUARDED_BY(mu_) = 1;
  // The subscription whose callback runs now (0 = none).
  uint64_t running_sub_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool dispatcher_started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread dispatcher_;
};

}  // namespace mcmpart::store::internal

#endif  // MCMPART_SERVER_STORE_CHANGE_NOTIFIER_H_
