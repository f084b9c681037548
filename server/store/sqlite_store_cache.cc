// The sqlite backend's result cache: one row per entry, trimmed to
// StoreOptions::cache_entries by least recent use.
#include <sqlite3.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/sqlite_store_internal.h"

namespace mcmpart::store::sqlite_internal {

absl::StatusOr<std::optional<CacheEntry>> SqliteStore::CacheGet(
    absl::string_view key) {
  return stats_.Run(
      "cache_get", [&]() -> absl::StatusOr<std::optional<CacheEntry>> {
        absl::MutexLock lock(&mu_);
        Stmt update(
            Prepare("UPDATE result_cache SET used_us = ? WHERE key = ? "
                    "RETURNING proved, best"));
        update.Int(NextUse()).Text(key);
        const int rc = update.Step();
        if (rc == SQLITE_DONE) return std::optional<CacheEntry>();
        if (rc != SQLITE_ROW) return Error(rc, "cache_get");
        CacheEntry entry;
        entry.proved_optimal = update.ColInt(0) != 0;
        if (!entry.best.ParseFromString(update.ColText(1))) {
          return absl::InternalError(absl::StrCat(
              "sqlite store ", path_, ": a result-cache entry does not parse"));
        }
        if (int done = update.Step(); done != SQLITE_DONE) {
          return Error(done, "cache_get");
        }
        return std::optional<CacheEntry>(std::move(entry));
      });
}

absl::StatusOr<bool> SqliteStore::CachePut(absl::string_view key,
                                           const v1::PartitionUpdate& best) {
  return stats_.Run("cache_put", [&]() -> absl::StatusOr<bool> {
    if (options_.cache_entries <= 0) return false;
    const bool proved = best.evaluation().proved_optimal();
    const double throughput = best.evaluation().throughput_per_s();
    std::string bytes;
    best.SerializeToString(&bytes);
    bool stored = false;
    absl::MutexLock lock(&mu_);
    absl::Status s = InTransaction([&]() -> absl::Status {
      std::optional<CacheEntry> current;
      {
        Stmt select(Prepare(
            "SELECT proved, throughput FROM result_cache WHERE key = ?"));
        select.Text(key);
        const int rc = select.Step();
        if (rc == SQLITE_ROW) {
          current.emplace();
          current->proved_optimal = select.ColInt(0) != 0;
          current->best.mutable_evaluation()->set_throughput_per_s(
              select.ColReal(1));
        } else if (rc != SQLITE_DONE) {
          return Error(rc, "cache_put");
        }
      }
      const int64_t use = NextUse();
      if (!internal::CacheReplaces(current ? &*current : nullptr, proved,
                                   throughput)) {
        Stmt touch(
            Prepare("UPDATE result_cache SET used_us = ? WHERE key = ?"));
        touch.Int(use).Text(key);
        const int rc = touch.Step();
        return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "cache_put");
      }
      stored = true;
      Stmt put(Prepare(
          "INSERT OR REPLACE INTO result_cache (key, proved, throughput, "
          "best, used_us) VALUES (?, ?, ?, ?, ?)"));
      put.Text(key).Int(proved ? 1 : 0).Real(throughput).Blob(bytes).Int(use);
      if (int rc = put.Step(); rc != SQLITE_DONE) {
        return Error(rc, "cache_put");
      }
      Stmt trim(
          Prepare("DELETE FROM result_cache WHERE key IN (SELECT key FROM "
                  "result_cache ORDER BY used_us DESC LIMIT -1 OFFSET ?)"));
      trim.Int(options_.cache_entries);
      if (int rc = trim.Step(); rc != SQLITE_DONE) {
        return Error(rc, "cache_put");
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    return stored;
  });
}

int64_t SqliteStore::NextUse() {
  last_use_ = std::max(last_use_ + 1, absl::ToUnixMicros(absl::Now()));
  return last_use_;
}

}  // namespace mcmpart::store::sqlite_internal
