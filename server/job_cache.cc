// The job manager's result cache: this process's LRU, in front of the state
// store's cache shared by the replicas.
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/job_manager.h"
#include "server/job_recorder.h"

namespace mcmpart::server {
namespace {

// The cache key of a problem's proved optimum (any strategy).
std::string ProvedKey(const std::string& problem_key) {
  return absl::StrCat("proved/", problem_key);
}

}  // namespace

std::shared_ptr<const v1::PartitionUpdate> JobManager::CachedBest(
    const JobSpec& spec) {
  JobRecorder* recorder = nullptr;
  {
    absl::MutexLock lock(&mu_);
    // A proved optimum answers for every strategy; nothing can improve it.
    std::shared_ptr<const v1::PartitionUpdate> cached =
        spec.problem_key.empty() ? nullptr
                                 : CacheLookup(ProvedKey(spec.problem_key));
    if (cached == nullptr && !spec.cache_key.empty()) {
      cached = CacheLookup(spec.cache_key);
    }
    if (cached != nullptr) return cached;
    recorder = recorder_;
  }
  if (recorder == nullptr) return nullptr;
  // The store's cache (shared by the replicas), outside the lock: a call
  // may take a network round trip.
  std::shared_ptr<const v1::PartitionUpdate> shared =
      spec.problem_key.empty()
          ? nullptr
          : recorder->CacheGet(ProvedKey(spec.problem_key));
  if (shared == nullptr && !spec.cache_key.empty()) {
    shared = recorder->CacheGet(spec.cache_key);
  }
  return shared;
}

void JobManager::CacheResult(const Job& job) {
  if (job.spec_.cache_key.empty()) return;
  std::shared_ptr<const v1::PartitionUpdate> best = job.Snapshot().best;
  if (best == nullptr || best->from_cache()) return;
  const bool proved =
      best->evaluation().proved_optimal() && !job.spec_.problem_key.empty();
  if (JobRecorder* recorder = recorder_for_remote()) {
    if (proved) recorder->CachePut(ProvedKey(job.spec_.problem_key), *best);
    recorder->CachePut(job.spec_.cache_key, *best);
  }
  absl::MutexLock lock(&mu_);
  if (proved) CacheStore(ProvedKey(job.spec_.problem_key), best);
  CacheStore(job.spec_.cache_key, std::move(best));
}

std::shared_ptr<const v1::PartitionUpdate> JobManager::CacheLookup(
    const std::string& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.best;
}

void JobManager::CacheStore(const std::string& key,
                            std::shared_ptr<const v1::PartitionUpdate> best) {
  if (options_.cache_entries <= 0) return;
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    if (best->evaluation().throughput_per_s() >
        it->second.best->evaluation().throughput_per_s()) {
      it->second.best = std::move(best);
    }
    return;
  }
  lru_.push_front(key);
  cache_[key] = CacheEntry{std::move(best), lru_.begin()};
  while (static_cast<int>(cache_.size()) > options_.cache_entries) {
    cache_.erase(lru_.back());
    lru_.pop_back();
  }
}

}  // namespace mcmpart::server
