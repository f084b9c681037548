// Pieces the three backends share: how times and statuses are encoded, the
// result cache's replacement rule, error messages, and the call counters.
// Internal to server/store/.
#ifndef MCMPART_SERVER_STORE_STORE_UTIL_H_
#define MCMPART_SERVER_STORE_STORE_UTIL_H_

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/store/store.h"

namespace mcmpart::store::internal {

// Unix microseconds; InfinitePast (not reached) is 0 and back.
int64_t EncodeTime(absl::Time t);
absl::Time DecodeTime(int64_t micros);

// now + ttl in Unix microseconds, for leases and claims.
int64_t ExpiryMicros(absl::Time now, absl::Duration ttl);

// Whether an offered update (`proved`, `throughput`) replaces the current
// entry (null = none): see StateStore::CachePut.
bool CacheReplaces(const CacheEntry* current, bool proved, double throughput);

// A status code stored as an int, read back; unknown codes become UNKNOWN.
absl::StatusCode DecodeStatusCode(int64_t code);

// The errors every backend gives alike.
absl::Status JobNotFound(absl::string_view id);
absl::Status NotOwner(absl::string_view id, absl::string_view owner,
                      absl::string_view actual_owner);
absl::Status AlreadyEnded(absl::string_view id, JobState state);
absl::Status JobExists(absl::string_view id);
// INVALID_ARGUMENT when `value` is empty.
absl::Status RequireNonEmpty(absl::string_view value, absl::string_view what);

// The arguments every backend's ClaimOrphans checks: a non-empty owner and a
// limit of at least 1 (INVALID_ARGUMENT otherwise).
absl::Status CheckClaimOrphansArgs(absl::string_view owner, int limit);
// ClaimSearch's arguments, all required.
absl::Status CheckClaimArgs(absl::string_view problem_key,
                            absl::string_view job_id, absl::string_view owner);

// Counts calls per operation (StoreStats). Thread-safe.
class StatsRecorder {
 public:
  explicit StatsRecorder(std::string backend);

  void Record(absl::string_view op, absl::Duration latency,
              const absl::Status& status);
  void CountReconnect();
  void CountNotification();
  StoreStats Snapshot() const;

  // Runs `f` (returning Status or StatusOr) and records it as `op`.
  template <typename F>
  auto Run(absl::string_view op, F&& f) -> decltype(f()) {
    const absl::Time start = absl::Now();
    auto result = f();
    Record(op, absl::Now() - start, StatusOf(result));
    return result;
  }

 private:
  static const absl::Status& StatusOf(const absl::Status& s) { return s; }
  template <typename T>
  static absl::Status StatusOf(const absl::StatusOr<T>& s) {
    return s.status();
  }

  mutable absl::Mutex mu_;
  StoreStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mcmpart::store::internal

#endif  // MCMPART_SERVER_STORE_STORE_UTIL_H_
