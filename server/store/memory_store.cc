#include "server/store/memory_store.h"

#include <algorithm>
#include <list>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/change_notifier.h"
#include "server/store/store_util.h"

namespace mcmpart::store {
namespace {

using internal::ChangeNotifier;
using internal::StatsRecorder;

class MemoryStore final : public StateStore {
 public:
  explicit MemoryStore(const StoreOptions& options)
      : options_(options),
        stats_("memory"),
        notifier_(
            [this](absl::string_view id) {
              return GetJob(id, RequestField::kOmit);
            },
            options.poll_interval) {}

  absl::string_view backend() const override { return "memory"; }

  absl::Status CreateJob(const JobRecord& job) override {
    return stats_.Run("create_job", [&]() -> absl::Status {
      if (absl::Status s = internal::RequireNonEmpty(job.id, "job id");
          !s.ok()) {
        return s;
      }
      if (absl::Status s = internal::RequireNonEmpty(job.owner, "owner");
          !s.ok()) {
        return s;
      }
      {
        absl::MutexLock lock(&mu_);
        if (jobs_.contains(job.id)) return internal::JobExists(job.id);
        JobRecord& stored = jobs_[job.id];
        stored = job;
        stored.has_request = true;
        stored.version = 1;
      }
      notifier_.Notify(job.id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<uint64_t> UpdateJob(absl::string_view id,
                                     absl::string_view owner,
                                     const JobProgress& progress) override {
    return stats_.Run("update_job", [&]() -> absl::StatusOr<uint64_t> {
      uint64_t version;
      {
        absl::MutexLock lock(&mu_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return internal::JobNotFound(id);
        JobRecord& job = it->second;
        if (job.owner != owner) {
          return internal::NotOwner(id, owner, job.owner);
        }
        if (job.done()) return internal::AlreadyEnded(id, job.progress.state);
        job.progress = progress;
        version = ++job.version;
      }
      notifier_.Notify(id);
      return version;
    });
  }

  absl::StatusOr<JobRecord> GetJob(absl::string_view id,
                                   RequestField request) override {
    return stats_.Run("get_job", [&]() -> absl::StatusOr<JobRecord> {
      absl::MutexLock lock(&mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) return internal::JobNotFound(id);
      return Copy(it->second, request);
    });
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs(
      const ListJobsOptions& options) override {
    return stats_.Run(
        "list_jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
          std::vector<const JobRecord*> matching;
          absl::MutexLock lock(&mu_);
          for (const auto& [id, job] : jobs_) {
            if (options.states.empty() ||
                std::find(options.states.begin(), options.states.end(),
                          job.progress.state) != options.states.end()) {
              matching.push_back(&job);
            }
          }
          std::sort(matching.begin(), matching.end(),
                    [](const JobRecord* a, const JobRecord* b) {
                      return a->create_time != b->create_time
                                 ? a->create_time > b->create_time
                                 : a->id > b->id;
                    });
          if (options.limit > 0 &&
              static_cast<int>(matching.size()) > options.limit) {
            matching.resize(options.limit);
          }
          std::vector<JobRecord> out;
          out.reserve(matching.size());
          for (const JobRecord* job : matching) {
            out.push_back(Copy(*job, RequestField::kOmit));
          }
          return out;
        });
  }

  absl::StatusOr<JobRecord> RequestCancel(absl::string_view id) override {
    return stats_.Run("request_cancel", [&]() -> absl::StatusOr<JobRecord> {
      JobRecord out;
      bool changed = false;
      {
        absl::MutexLock lock(&mu_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return internal::JobNotFound(id);
        JobRecord& job = it->second;
        if (!job.done() && !job.cancel_requested) {
          job.cancel_requested = true;
          ++job.version;
          changed = true;
        }
        out = Copy(job, RequestField::kOmit);
      }
      if (changed) notifier_.Notify(id);
      return out;
    });
  }

  absl::StatusOr<int> PurgeEnded(absl::Duration max_age,
                                 int max_count) override {
    return stats_.Run("purge_ended", [&]() -> absl::StatusOr<int> {
      const absl::Time now = absl::Now();
      std::vector<std::string> purged;
      {
        absl::MutexLock lock(&mu_);
        std::vector<std::pair<absl::Time, std::string>> ended;
        for (const auto& [id, job] : jobs_) {
          if (job.done()) ended.emplace_back(job.progress.end_time, id);
        }
        // Newest first: the first max_count survive the count limit.
        std::sort(ended.begin(), ended.end(),
                  [](const auto& a, const auto& b) { return a > b; });
        for (size_t i = 0; i < ended.size(); ++i) {
          const bool too_old = ended[i].first < now - max_age;
          const bool too_many =
              max_count >= 0 && i >= static_cast<size_t>(max_count);
          if (too_old || too_many) {
            jobs_.erase(ended[i].second);
            purged.push_back(ended[i].second);
          }
        }
        for (auto it = claims_.begin(); it != claims_.end();) {
          if (it->second.expiry <= now) {
            claims_.erase(it++);
          } else {
            ++it;
          }
        }
      }
      for (const std::string& id : purged) notifier_.Notify(id);
      return static_cast<int>(purged.size());
    });
  }

  absl::StatusOr<LeaseInfo> RenewLease(absl::string_view id,
                                       absl::string_view owner,
                                       absl::Duration ttl) override {
    return stats_.Run("renew_lease", [&]() -> absl::StatusOr<LeaseInfo> {
      absl::MutexLock lock(&mu_);
      absl::StatusOr<JobRecord*> job = OwnedUnfinished(id, owner);
      if (!job.ok()) return job.status();
      (*job)->lease_expiry = absl::Now() + ttl;
      return LeaseInfo{(*job)->lease_expiry, (*job)->cancel_requested,
                       (*job)->version};
    });
  }

  absl::Status ReleaseLease(absl::string_view id,
                            absl::string_view owner) override {
    return stats_.Run("release_lease", [&]() -> absl::Status {
      {
        absl::MutexLock lock(&mu_);
        absl::StatusOr<JobRecord*> job = OwnedUnfinished(id, owner);
        if (!job.ok()) return job.status();
        (*job)->owner.clear();
        (*job)->lease_expiry = absl::InfinitePast();
        ++(*job)->version;
      }
      notifier_.Notify(id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<JobRecord>> ClaimOrphans(absl::string_view owner,
                                                      absl::Duration lease_ttl,
                                                      int limit) override {
    return stats_.Run(
        "claim_orphans", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
          if (absl::Status s = internal::CheckClaimOrphansArgs(owner, limit);
              !s.ok()) {
            return s;
          }
          const absl::Time now = absl::Now();
          std::vector<JobRecord> claimed;
          {
            absl::MutexLock lock(&mu_);
            std::vector<JobRecord*> orphans;
            for (auto& [id, job] : jobs_) {
              if (!job.done() && job.lease_expiry < now) {
                orphans.push_back(&job);
              }
            }
            std::sort(orphans.begin(), orphans.end(),
                      [](const JobRecord* a, const JobRecord* b) {
                        return a->lease_expiry != b->lease_expiry
                                   ? a->lease_expiry < b->lease_expiry
                                   : a->id < b->id;
                      });
            if (static_cast<int>(orphans.size()) > limit) {
              orphans.resize(limit);
            }
            for (JobRecord* job : orphans) {
              job->owner = std::string(owner);
              job->lease_expiry = now + lease_ttl;
              ++job->version;
              claimed.push_back(Copy(*job, RequestField::kInclude));
            }
          }
          for (const JobRecord& job : claimed) notifier_.Notify(job.id);
          return claimed;
        });
  }

  absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                          uint64_t seen_version,
                                          absl::Duration timeout) override {
    return notifier_.WaitForChange(id, seen_version, timeout);
  }

  std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                          ChangeCallback callback) override {
    return notifier_.Subscribe(id, std::move(callback));
  }

  absl::StatusOr<std::optional<CacheEntry>> CacheGet(
      absl::string_view key) override {
    return stats_.Run("cache_get",
                      [&]() -> absl::StatusOr<std::optional<CacheEntry>> {
                        absl::MutexLock lock(&mu_);
                        auto it = cache_.find(key);
                        if (it == cache_.end())
                          return std::optional<CacheEntry>();
                        lru_.splice(lru_.begin(), lru_, it->second.lru);
                        return std::optional<CacheEntry>(it->second.entry);
                      });
  }

  absl::StatusOr<bool> CachePut(absl::string_view key,
                                const v1::PartitionUpdate& best) override {
    return stats_.Run("cache_put", [&]() -> absl::StatusOr<bool> {
      if (options_.cache_entries <= 0) return false;
      const bool proved = best.evaluation().proved_optimal();
      absl::MutexLock lock(&mu_);
      auto it = cache_.find(key);
      if (it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second.lru);
        if (!internal::CacheReplaces(&it->second.entry, proved,
                                     best.evaluation().throughput_per_s())) {
          return false;
        }
        it->second.entry = CacheEntry{best, proved};
        return true;
      }
      lru_.push_front(std::string(key));
      cache_[key] = Cached{CacheEntry{best, proved}, lru_.begin()};
      while (static_cast<int>(cache_.size()) > options_.cache_entries) {
        cache_.erase(lru_.back());
        lru_.pop_back();
      }
      return true;
    });
  }

  absl::StatusOr<SearchClaim> ClaimSearch(absl::string_view problem_key,
                                          absl::string_view job_id,
                                          absl::string_view owner,
                                          absl::Duration ttl) override {
    return stats_.Run("claim_search", [&]() -> absl::StatusOr<SearchClaim> {
      if (absl::Status s = internal::CheckClaimArgs(problem_key, job_id, owner);
          !s.ok()) {
        return s;
      }
      const absl::Time now = absl::Now();
      absl::MutexLock lock(&mu_);
      auto it = claims_.find(problem_key);
      if (it != claims_.end() && it->second.job_id != job_id &&
          it->second.expiry > now) {
        return it->second;  // owned stays false
      }
      SearchClaim& claim = claims_[problem_key];
      claim = SearchClaim{false, std::string(job_id), std::string(owner),
                          now + ttl};
      SearchClaim out = claim;
      out.owned = true;
      return out;
    });
  }

  absl::Status ReleaseSearch(absl::string_view problem_key,
                             absl::string_view job_id) override {
    return stats_.Run("release_search", [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      auto it = claims_.find(problem_key);
      if (it != claims_.end() && it->second.job_id == job_id) {
        claims_.erase(it);
      }
      return absl::OkStatus();
    });
  }

  absl::Status Ping() override {
    return stats_.Run("ping", [] { return absl::OkStatus(); });
  }

  StoreStats Stats() const override { return stats_.Snapshot(); }

 private:
  struct Cached {
    CacheEntry entry;
    std::list<std::string>::iterator lru;
  };

  static JobRecord Copy(const JobRecord& job, RequestField request) {
    if (request == RequestField::kInclude) return job;
    JobRecord out;
    out.id = job.id;
    out.owner = job.owner;
    out.lease_expiry = job.lease_expiry;
    out.labels = job.labels;
    out.create_time = job.create_time;
    out.progress = job.progress;
    out.cancel_requested = job.cancel_requested;
    out.version = job.version;
    return out;
  }

  absl::StatusOr<JobRecord*> OwnedUnfinished(absl::string_view id,
                                             absl::string_view owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return internal::JobNotFound(id);
    JobRecord& job = it->second;
    if (job.owner != owner) return internal::NotOwner(id, owner, job.owner);
    if (job.done()) return internal::AlreadyEnded(id, job.progress.state);
    return &job;
  }

  const StoreOptions options_;
  StatsRecorder stats_;

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, JobRecord> jobs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Cached> cache_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);  // front: most recent
  absl::flat_hash_map<std::string, SearchClaim> claims_ ABSL_GUARDED_BY(mu_);

  // Last: its dispatcher thread reads through GetJob, so it goes first.
  ChangeNotifier notifier_;
};

}  // namespace

std::unique_ptr<StateStore> NewMemoryStore(const StoreOptions& options) {
  return std::make_unique<MemoryStore>(options);
}

}  // namespace mcmpart::store
