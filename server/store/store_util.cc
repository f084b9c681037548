#include "server/store/store_util.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "solver/quote.h"

namespace mcmpart::store::internal {

int64_t EncodeTime(absl::Time t) {
  if (t == absl::InfinitePast()) return 0;
  return absl::ToUnixMicros(t);
}

absl::Time DecodeTime(int64_t micros) {
  if (micros == 0) return absl::InfinitePast();
  return absl::FromUnixMicros(micros);
}

int64_t ExpiryMicros(absl::Time now, absl::Duration ttl) {
  return absl::ToUnixMicros(now + std::max(ttl, absl::ZeroDuration()));
}

bool CacheReplaces(const CacheEntry* current, bool proved, double throughput) {
  if (current == nullptr) return true;
  // A proof is worth more than any throughput: nothing unproved can beat it.
  if (current->proved_optimal != proved) return proved;
  return throughput > current->best.evaluation().throughput_per_s();
}

absl::StatusCode DecodeStatusCode(int64_t code) {
  if (code < 0 ||
      code > static_cast<int64_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(code);
}

absl::Status JobNotFound(absl::string_view id) {
  return absl::NotFoundError(
      absl::StrCat("no job ", QuoteInput(id), " in the state store"));
}

absl::Status NotOwner(absl::string_view id, absl::string_view owner,
                      absl::string_view actual_owner) {
  return absl::FailedPreconditionError(absl::StrCat(
      "job ", QuoteInput(id), " is not owned by replica ", QuoteInput(owner),
      " but by ",
      actual_owner.empty() ? std::string("no replica (its lease was released)")
                           : absl::StrCat("replica ", QuoteInput(actual_owner)),
      "; its lease was lost, stop working on it"));
}

absl::Status AlreadyEnded(absl::string_view id, JobState state) {
  return absl::FailedPreconditionError(absl::StrCat(
      "job ", QuoteInput(id), " has already ended (", StateName(state), ")"));
}

absl::Status JobExists(absl::string_view id) {
  return absl::AlreadyExistsError(absl::StrCat(
      "job ", QuoteInput(id), " already exists in the state store"));
}

absl::Status RequireNonEmpty(absl::string_view value, absl::string_view what) {
  if (!value.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(what, " must not be empty"));
}

absl::Status CheckClaimArgs(absl::string_view problem_key,
                            absl::string_view job_id, absl::string_view owner) {
  absl::Status s = RequireNonEmpty(problem_key, "problem key");
  if (s.ok()) s = RequireNonEmpty(job_id, "job id");
  if (s.ok()) s = RequireNonEmpty(owner, "owner");
  return s;
}

// ------------------------------------------------------------- StatsRecorder

StatsRecorder::StatsRecorder(std::string backend) {
  stats_.backend = std::move(backend);
}

void StatsRecorder::Record(absl::string_view op, absl::Duration latency,
                           const absl::Status& status) {
  const double s = absl::ToDoubleSeconds(latency);
  const size_t bucket =
      std::lower_bound(kLatencyBounds.begin(), kLatencyBounds.end(), s) -
      kLatencyBounds.begin();
  absl::MutexLock lock(&mu_);
  OpStats& o = stats_.ops[std::string(op)];
  ++o.calls;
  ++o.latency_buckets[bucket];
  o.latency_sum_s += s;
  o.latency_max_s = std::max(o.latency_max_s, s);
  switch (status.code()) {
    case absl::StatusCode::kOk:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
      // Answers about the data or the call, not failures of the store.
      stats_.healthy = true;
      return;
    case absl::StatusCode::kUnavailable:
      ++o.unavailable;
      stats_.healthy = false;
      break;
    default:
      break;
  }
  ++o.errors;
  stats_.last_error = status;
}

void StatsRecorder::CountReconnect() {
  absl::MutexLock lock(&mu_);
  ++stats_.reconnects;
}

void StatsRecorder::CountNotification() {
  absl::MutexLock lock(&mu_);
  ++stats_.notifications;
}

StoreStats StatsRecorder::Snapshot() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

absl::Status CheckClaimOrphansArgs(absl::string_view owner, int limit) {
  if (absl::Status s = RequireNonEmpty(owner, "owner"); !s.ok()) return s;
  if (limit < 1) {
    return absl::InvalidArgumentError(
        "ClaimOrphans needs a limit of at least 1");
  }
  return absl::OkStatus();
}

}  // namespace mcmpart::store::internal
