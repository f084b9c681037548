// The sqlite backend's class and the prepared-statement wrapper its source
// files share: sqlite_store.cc (opening the file, the schema, statements
// and transactions), sqlite_store_jobs.cc (job records),
// sqlite_store_leases.cc (leases and search claims) and
// sqlite_store_cache.cc (the result cache). Internal to server/store/.
#ifndef MCMPART_SERVER_STORE_SQLITE_STORE_INTERNAL_H_
#define MCMPART_SERVER_STORE_SQLITE_STORE_INTERNAL_H_

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/store/change_notifier.h"
#include "server/store/sqlite_store.h"
#include "server/store/store.h"
#include "server/store/store_util.h"

namespace mcmpart::store::sqlite_internal {

// A statement from the cache, or the error that preparing it gave.
struct Prepared {
  sqlite3_stmt* stmt = nullptr;
  int rc = SQLITE_OK;
};

// A prepared statement in use; reset when it goes out of use. When
// preparing failed (a damaged file can fail it), binding does nothing and
// Step returns the error, so that every call site has one error path.
class Stmt {
 public:
  explicit Stmt(Prepared p) : stmt_(p.stmt), rc_(p.rc) {}
  ~Stmt() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // An empty view may have no data pointer, which SQLite would bind as
  // NULL; "" keeps it an empty text or blob.
  Stmt& Text(absl::string_view v) {
    if (v.data() == nullptr) v = "";
    if (stmt_ != nullptr)
      sqlite3_bind_text(stmt_, ++arg_, v.data(), static_cast<int>(v.size()),
                        SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Blob(absl::string_view v) {
    if (v.data() == nullptr) v = "";
    if (stmt_ != nullptr)
      sqlite3_bind_blob(stmt_, ++arg_, v.data(), static_cast<int>(v.size()),
                        SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& Null() {
    if (stmt_ != nullptr) sqlite3_bind_null(stmt_, ++arg_);
    return *this;
  }
  Stmt& Int(int64_t v) {
    if (stmt_ != nullptr) sqlite3_bind_int64(stmt_, ++arg_, v);
    return *this;
  }
  Stmt& Real(double v) {
    if (stmt_ != nullptr) sqlite3_bind_double(stmt_, ++arg_, v);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return stmt_ == nullptr ? rc_ : sqlite3_step(stmt_); }

  int64_t ColInt(int i) const { return sqlite3_column_int64(stmt_, i); }
  double ColReal(int i) const { return sqlite3_column_double(stmt_, i); }
  bool ColIsNull(int i) const {
    return sqlite3_column_type(stmt_, i) == SQLITE_NULL;
  }
  std::string ColText(int i) const {
    const void* p = sqlite3_column_blob(stmt_, i);
    const int n = sqlite3_column_bytes(stmt_, i);
    return p == nullptr ? std::string()
                        : std::string(static_cast<const char*>(p), n);
  }

 private:
  sqlite3_stmt* const stmt_;
  const int rc_;
  int arg_ = 0;
};

class SqliteStore final : public StateStore {
 public:
  SqliteStore(std::string path, sqlite3* db, const StoreOptions& options);
  ~SqliteStore() override;

  absl::string_view backend() const override { return "sqlite"; }

  absl::Status CreateJob(const JobRecord& job) override;
  absl::StatusOr<uint64_t> UpdateJob(absl::string_view id,
                                     absl::string_view owner,
                                     const JobProgress& progress) override;
  absl::StatusOr<JobRecord> GetJob(absl::string_view id,
                                   RequestField request) override;
  absl::StatusOr<std::vector<JobRecord>> ListJobs(
      const ListJobsOptions& options) override;
  absl::StatusOr<JobRecord> RequestCancel(absl::string_view id) override;
  absl::StatusOr<int> PurgeEnded(absl::Duration max_age,
                                 int max_count) override;

  absl::StatusOr<LeaseInfo> RenewLease(absl::string_view id,
                                       absl::string_view owner,
                                       absl::Duration ttl) override;
  absl::Status ReleaseLease(absl::string_view id,
                            absl::string_view owner) override;
  absl::StatusOr<std::vector<JobRecord>> ClaimOrphans(absl::string_view owner,
                                                      absl::Duration lease_ttl,
                                                      int limit) override;

  absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                          uint64_t seen_version,
                                          absl::Duration timeout) override;
  std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                          ChangeCallback callback) override;

  absl::StatusOr<std::optional<CacheEntry>> CacheGet(
      absl::string_view key) override;
  absl::StatusOr<bool> CachePut(absl::string_view key,
                                const v1::PartitionUpdate& best) override;

  absl::StatusOr<SearchClaim> ClaimSearch(absl::string_view problem_key,
                                          absl::string_view job_id,
                                          absl::string_view owner,
                                          absl::Duration ttl) override;
  absl::Status ReleaseSearch(absl::string_view problem_key,
                             absl::string_view job_id) override;

  absl::Status Ping() override;

  StoreStats Stats() const override { return stats_.Snapshot(); }

  // Runs once, before the store is handed out: the file checks and the
  // schema. The messages name the path because they end the server's
  // start-up.
  absl::Status Open();

 private:
  // Opening the file, statements and transactions (sqlite_store.cc).

  absl::Status FileError(int rc) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ReadPragma(absl::string_view name, int64_t* value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(int rc, absl::string_view op) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A statement prepared once and kept (SQLITE_PREPARE_PERSISTENT).
  Prepared Prepare(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Runs `body` in BEGIN IMMEDIATE ... COMMIT (the write lock first, so that
  // a second process on the file waits at BEGIN rather than failing at
  // COMMIT); rolls back on error.
  template <typename F>
  absl::Status InTransaction(F&& body) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (int rc = Exec("BEGIN IMMEDIATE"); rc != SQLITE_OK) {
      return Error(rc, "begin");
    }
    absl::Status s = body();
    if (!s.ok()) {
      Exec("ROLLBACK");
      return s;
    }
    if (int rc = Exec("COMMIT"); rc != SQLITE_OK) {
      absl::Status err = Error(rc, "commit");
      Exec("ROLLBACK");
      return err;
    }
    return absl::OkStatus();
  }

  // Job records (sqlite_store_jobs.cc).

  // Owner and unfinished, inside a transaction.
  absl::Status CheckOwned(absl::string_view id, absl::string_view owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Binds status..final_update and cancel_requested of an INSERT in
  // kJobColumns order.
  static void BindProgressTail(Stmt& stmt, const JobProgress& p, bool cancel);

  static void BindUpdate(Stmt& stmt,
                         const std::optional<v1::PartitionUpdate>& update);

  absl::StatusOr<JobRecord> RowToJob(const Stmt& row) const;

  absl::StatusOr<JobRecord> ReadJob(absl::string_view id, RequestField request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The result cache (sqlite_store_cache.cc).

  // Strictly increasing use stamps for the cache's LRU order, even when two
  // uses fall in one microsecond.
  int64_t NextUse() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string path_;
  const StoreOptions options_;
  internal::StatsRecorder stats_;

  // One connection, used under mu_ (SQLite serialises writers anyway).
  mutable absl::Mutex mu_;
  sqlite3* const db_;
  absl::flat_hash_map<std::string, sqlite3_stmt*> stmts_ ABSL_GUARDED_BY(mu_);
  int64_t last_use_ ABSL_GUARDED_BY(mu_) = 0;

  std::optional<internal::ChangeNotifier> notifier_;
};

}  // namespace mcmpart::store::sqlite_internal

#endif  // MCMPART_SERVER_STORE_SQLITE_STORE_INTERNAL_H_
