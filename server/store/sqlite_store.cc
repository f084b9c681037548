#include "server/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/change_notifier.h"
#include "server/store/store_util.h"

namespace mcmpart::store {
namespace {

using internal::DecodeTime;
using internal::EncodeTime;

// Version 1 of the layout. A change that old code cannot read bumps
// kSchemaVersion and adds a migration in Open.
constexpr const char* kSchemaV1[] = {
    R"sql(CREATE TABLE jobs (
  id TEXT PRIMARY KEY NOT NULL,
  owner TEXT NOT NULL,
  lease_expiry_us INTEGER NOT NULL,
  state INTEGER NOT NULL,
  strategy TEXT NOT NULL,
  graph_name TEXT NOT NULL,
  hardware_name TEXT NOT NULL,
  num_nodes INTEGER NOT NULL,
  create_us INTEGER NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  status_code INTEGER NOT NULL,
  status_message TEXT NOT NULL,
  end_reason TEXT NOT NULL,
  elapsed_s REAL NOT NULL,
  samples INTEGER NOT NULL,
  bound_s REAL NOT NULL,
  cancel_requested INTEGER NOT NULL,
  version INTEGER NOT NULL,
  best BLOB,
  final_update BLOB))sql",
    "CREATE INDEX jobs_by_create ON jobs (create_us, id)",
    // Unfinished jobs by lease (ClaimOrphans); ended jobs by end (purge).
    "CREATE INDEX jobs_live ON jobs (lease_expiry_us) WHERE state < 3",
    "CREATE INDEX jobs_ended ON jobs (end_us) WHERE state >= 3",
    // Apart from the jobs so that reading a job never reads its request.
    R"sql(CREATE TABLE job_requests (
  id TEXT PRIMARY KEY NOT NULL,
  request BLOB NOT NULL))sql",
    R"sql(CREATE TABLE result_cache (
  key TEXT PRIMARY KEY NOT NULL,
  proved INTEGER NOT NULL,
  throughput REAL NOT NULL,
  best BLOB NOT NULL,
  used_us INTEGER NOT NULL))sql",
    "CREATE INDEX result_cache_lru ON result_cache (used_us)",
    R"sql(CREATE TABLE search_claims (
  problem_key TEXT PRIMARY KEY NOT NULL,
  job_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  expiry_us INTEGER NOT NULL))sql",
};

constexpr absl::string_view kJobColumns =
    "id, owner, lease_expiry_us, state, strategy, graph_name, hardware_name, "
    "num_nodes, create_us, start_us, end_us, status_code, status_message, "
    "end_reason, elapsed_s, samples, bound_s, cancel_requested, version, "
    "best, final_update";

// The code a failed SQLite call maps to: the caller falls back on
// UNAVAILABLE (locked by another process beyond the busy timeout, I/O).
absl::StatusCode CodeOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      return absl::StatusCode::kUnavailable;
    case SQLITE_FULL:
      return absl::StatusCode::kResourceExhausted;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::StatusCode::kDataLoss;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::StatusCode::kPermissionDenied;
    default:
      return absl::StatusCode::kInternal;
  }
}

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
  SqliteStore(std::string path, sqlite3* db, const StoreOptions& options)
      : path_(std::move(path)),
        options_(options),
        stats_("sqlite"),
        db_(db),
        notifier_(
            std::in_place,
            [this](absl::string_view id) {
              return GetJob(id, RequestField::kOmit);
            },
            options.poll_interval) {}

  ~SqliteStore() override {
    // The notifier's thread reads through db_: stop it first.
    notifier_.reset();
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  absl::string_view backend() const override { return "sqlite"; }

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
      std::string request;
      job.request.SerializeToString(&request);
      {
        absl::MutexLock lock(&mu_);
        absl::Status s = InTransaction([&]() -> absl::Status {
          {
            Stmt exists(Prepare("SELECT 1 FROM jobs WHERE id = ?"));
            exists.Text(job.id);
            const int rc = exists.Step();
            if (rc == SQLITE_ROW) return internal::JobExists(job.id);
            if (rc != SQLITE_DONE) return Error(rc, "create_job");
          }
          Stmt insert(Prepare(absl::StrCat(
              "INSERT INTO jobs (", kJobColumns,
              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
              "1, ?, ?)")));
          insert.Text(job.id)
              .Text(job.owner)
              .Int(EncodeTime(job.lease_expiry))
              .Int(job.progress.state)
              .Text(job.labels.strategy)
              .Text(job.labels.graph_name)
              .Text(job.labels.hardware_name)
              .Int(job.labels.num_nodes)
              .Int(EncodeTime(job.create_time));
          BindProgressTail(insert, job.progress, job.cancel_requested);
          if (int rc = insert.Step(); rc != SQLITE_DONE) {
            return Error(rc, "create_job");
          }
          Stmt req(
              Prepare("INSERT OR REPLACE INTO job_requests (id, request) "
                      "VALUES (?, ?)"));
          req.Text(job.id).Blob(request);
          if (int rc = req.Step(); rc != SQLITE_DONE) {
            return Error(rc, "create_job");
          }
          return absl::OkStatus();
        });
        if (!s.ok()) return s;
      }
      notifier_->Notify(job.id);
      return absl::OkStatus();
    });
  }

  absl::StatusOr<uint64_t> UpdateJob(absl::string_view id,
                                     absl::string_view owner,
                                     const JobProgress& progress) override {
    return stats_.Run("update_job", [&]() -> absl::StatusOr<uint64_t> {
      uint64_t version = 0;
      {
        absl::MutexLock lock(&mu_);
        absl::Status s = InTransaction([&]() -> absl::Status {
          if (absl::Status own = CheckOwned(id, owner); !own.ok()) return own;
          Stmt update(
              Prepare("UPDATE jobs SET state = ?, start_us = ?, end_us = ?, "
                      "status_code = ?, status_message = ?, end_reason = ?, "
                      "elapsed_s = ?, samples = ?, bound_s = ?, best = ?, "
                      "final_update = ?, version = version + 1 WHERE id = ? "
                      "RETURNING version"));
          update.Int(progress.state)
              .Int(EncodeTime(progress.start_time))
              .Int(EncodeTime(progress.end_time))
              .Int(static_cast<int>(progress.status.code()))
              .Text(progress.status.message())
              .Text(progress.end_reason)
              .Real(progress.elapsed_s)
              .Int(progress.samples)
              .Real(progress.bound_s);
          BindUpdate(update, progress.best);
          BindUpdate(update, progress.final_update);
          update.Text(id);
          const int rc = update.Step();
          if (rc != SQLITE_ROW) return Error(rc, "update_job");
          version = static_cast<uint64_t>(update.ColInt(0));
          // RETURNING: the statement completes on the next step.
          if (int done = update.Step(); done != SQLITE_DONE) {
            return Error(done, "update_job");
          }
          return absl::OkStatus();
        });
        if (!s.ok()) return s;
      }
      notifier_->Notify(id);
      return version;
    });
  }

  absl::StatusOr<JobRecord> GetJob(absl::string_view id,
                                   RequestField request) override {
    return stats_.Run("get_job", [&]() -> absl::StatusOr<JobRecord> {
      absl::MutexLock lock(&mu_);
      return ReadJob(id, request);
    });
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs(
      const ListJobsOptions& options) override {
    return stats_.Run(
        "list_jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
          std::string sql = absl::StrCat("SELECT ", kJobColumns, " FROM jobs");
          if (!options.states.empty()) {
            // Sorted and unique: one statement per set of states.
            std::vector<int> states(options.states.begin(),
                                    options.states.end());
            std::sort(states.begin(), states.end());
            states.erase(std::unique(states.begin(), states.end()),
                         states.end());
            absl::StrAppend(&sql, " WHERE state IN (",
                            absl::StrJoin(states, ", "), ")");
          }
          // The limit is bound, so that the statement cache holds one
          // statement per state filter (at most 32), not one per limit.
          absl::StrAppend(&sql, " ORDER BY create_us DESC, id DESC LIMIT ?");
          absl::MutexLock lock(&mu_);
          Stmt stmt(Prepare(sql));
          stmt.Int(options.limit > 0 ? options.limit : -1);
          std::vector<JobRecord> out;
          while (true) {
            const int rc = stmt.Step();
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) return Error(rc, "list_jobs");
            absl::StatusOr<JobRecord> job = RowToJob(stmt);
            if (!job.ok()) return job.status();
            out.push_back(*std::move(job));
          }
          return out;
        });
  }

  absl::StatusOr<JobRecord> RequestCancel(absl::string_view id) override {
    return stats_.Run("request_cancel", [&]() -> absl::StatusOr<JobRecord> {
      absl::StatusOr<JobRecord> job;
      bool changed = false;
      {
        absl::MutexLock lock(&mu_);
        absl::Status s = InTransaction([&]() -> absl::Status {
          Stmt update(Prepare(
              "UPDATE jobs SET cancel_requested = 1, version = version + 1 "
              "WHERE id = ? AND state < 3 AND cancel_requested = 0"));
          update.Text(id);
          if (int rc = update.Step(); rc != SQLITE_DONE) {
            return Error(rc, "request_cancel");
          }
          changed = sqlite3_changes(db_) > 0;
          job = ReadJob(id, RequestField::kOmit);
          return job.status();
        });
        if (!s.ok()) return s;
      }
      if (changed) notifier_->Notify(id);
      return job;
    });
  }

  absl::StatusOr<int> PurgeEnded(absl::Duration max_age,
                                 int max_count) override {
    return stats_.Run("purge_ended", [&]() -> absl::StatusOr<int> {
      const absl::Time now = absl::Now();
      std::vector<std::string> purged;
      {
        absl::MutexLock lock(&mu_);
        absl::Status s = InTransaction([&]() -> absl::Status {
          // Newest first; the first max_count survive the count limit.
          Stmt select(
              Prepare("SELECT id, end_us FROM jobs WHERE state >= 3 "
                      "ORDER BY end_us DESC, id DESC"));
          const int64_t cutoff = max_age == absl::InfiniteDuration()
                                     ? std::numeric_limits<int64_t>::min()
                                     : absl::ToUnixMicros(now - max_age);
          for (int64_t i = 0;; ++i) {
            const int rc = select.Step();
            if (rc == SQLITE_DONE) break;
            if (rc != SQLITE_ROW) return Error(rc, "purge_ended");
            if (select.ColInt(1) < cutoff ||
                (max_count >= 0 && i >= max_count)) {
              purged.push_back(select.ColText(0));
            }
          }
          for (const std::string& id : purged) {
            for (const char* sql : {"DELETE FROM jobs WHERE id = ?",
                                    "DELETE FROM job_requests WHERE id = ?"}) {
              Stmt del(Prepare(sql));
              del.Text(id);
              if (int rc = del.Step(); rc != SQLITE_DONE) {
                return Error(rc, "purge_ended");
              }
            }
          }
          Stmt claims(
              Prepare("DELETE FROM search_claims WHERE expiry_us <= ?"));
          claims.Int(absl::ToUnixMicros(now));
          if (int rc = claims.Step(); rc != SQLITE_DONE) {
            return Error(rc, "purge_ended");
          }
          return absl::OkStatus();
        });
        if (!s.ok()) return s;
      }
      for (const std::string& id : purged) notifier_->Notify(id);
      return static_cast<int>(purged.size());
    });
  }

  absl::StatusOr<LeaseInfo> RenewLease(absl::string_view id,
                                       absl::string_view owner,
                                       absl::Duration ttl) override {
    return stats_.Run("renew_lease", [&]() -> absl::StatusOr<LeaseInfo> {
      LeaseInfo info;
      absl::MutexLock lock(&mu_);
      absl::Status s = InTransaction([&]() -> absl::Status {
        if (absl::Status own = CheckOwned(id, owner); !own.ok()) return own;
        const int64_t expiry = internal::ExpiryMicros(absl::Now(), ttl);
        Stmt update(
            Prepare("UPDATE jobs SET lease_expiry_us = ? WHERE id = ? "
                    "RETURNING cancel_requested, version"));
        update.Int(expiry).Text(id);
        const int rc = update.Step();
        if (rc != SQLITE_ROW) return Error(rc, "renew_lease");
        info = LeaseInfo{DecodeTime(expiry), update.ColInt(0) != 0,
                         static_cast<uint64_t>(update.ColInt(1))};
        if (int done = update.Step(); done != SQLITE_DONE) {
          return Error(done, "renew_lease");
        }
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      return info;
    });
  }

  absl::Status ReleaseLease(absl::string_view id,
                            absl::string_view owner) override {
    return stats_.Run("release_lease", [&]() -> absl::Status {
      {
        absl::MutexLock lock(&mu_);
        absl::Status s = InTransaction([&]() -> absl::Status {
          if (absl::Status own = CheckOwned(id, owner); !own.ok()) return own;
          Stmt update(
              Prepare("UPDATE jobs SET owner = '', lease_expiry_us = 0, "
                      "version = version + 1 WHERE id = ?"));
          update.Text(id);
          if (int rc = update.Step(); rc != SQLITE_DONE) {
            return Error(rc, "release_lease");
          }
          return absl::OkStatus();
        });
        if (!s.ok()) return s;
      }
      notifier_->Notify(id);
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
            absl::Status s = InTransaction([&]() -> absl::Status {
              std::vector<std::string> ids;
              {
                Stmt select(
                    Prepare("SELECT id FROM jobs WHERE state < 3 AND "
                            "lease_expiry_us < ? ORDER BY lease_expiry_us, id "
                            "LIMIT ?"));
                select.Int(absl::ToUnixMicros(now)).Int(limit);
                while (true) {
                  const int rc = select.Step();
                  if (rc == SQLITE_DONE) break;
                  if (rc != SQLITE_ROW) return Error(rc, "claim_orphans");
                  ids.push_back(select.ColText(0));
                }
              }
              const int64_t expiry = internal::ExpiryMicros(now, lease_ttl);
              for (const std::string& id : ids) {
                Stmt update(
                    Prepare("UPDATE jobs SET owner = ?, lease_expiry_us = ?, "
                            "version = version + 1 WHERE id = ?"));
                update.Text(owner).Int(expiry).Text(id);
                if (int rc = update.Step(); rc != SQLITE_DONE) {
                  return Error(rc, "claim_orphans");
                }
                absl::StatusOr<JobRecord> job =
                    ReadJob(id, RequestField::kInclude);
                if (!job.ok()) return job.status();
                claimed.push_back(*std::move(job));
              }
              return absl::OkStatus();
            });
            if (!s.ok()) return s;
          }
          for (const JobRecord& job : claimed) notifier_->Notify(job.id);
          return claimed;
        });
  }

  absl::StatusOr<JobRecord> WaitForChange(absl::string_view id,
                                          uint64_t seen_version,
                                          absl::Duration timeout) override {
    return notifier_->WaitForChange(id, seen_version, timeout);
  }

  std::unique_ptr<Subscription> Subscribe(absl::string_view id,
                                          ChangeCallback callback) override {
    return notifier_->Subscribe(id, std::move(callback));
  }

  absl::StatusOr<std::optional<CacheEntry>> CacheGet(
      absl::string_view key) override {
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
            return absl::InternalError(
                absl::StrCat("sqlite store ", path_,
                             ": a result-cache entry does not parse"));
          }
          if (int done = update.Step(); done != SQLITE_DONE) {
            return Error(done, "cache_get");
          }
          return std::optional<CacheEntry>(std::move(entry));
        });
  }

  absl::StatusOr<bool> CachePut(absl::string_view key,
                                const v1::PartitionUpdate& best) override {
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
      SearchClaim claim;
      absl::MutexLock lock(&mu_);
      absl::Status s = InTransaction([&]() -> absl::Status {
        {
          Stmt select(
              Prepare("SELECT job_id, owner, expiry_us FROM search_claims "
                      "WHERE problem_key = ?"));
          select.Text(problem_key);
          const int rc = select.Step();
          if (rc == SQLITE_ROW) {
            const std::string holder = select.ColText(0);
            const int64_t expiry = select.ColInt(2);
            if (holder != job_id && expiry > absl::ToUnixMicros(now)) {
              claim = SearchClaim{false, holder, select.ColText(1),
                                  DecodeTime(expiry)};
              return absl::OkStatus();
            }
          } else if (rc != SQLITE_DONE) {
            return Error(rc, "claim_search");
          }
        }
        const int64_t expiry = internal::ExpiryMicros(now, ttl);
        Stmt put(Prepare(
            "INSERT OR REPLACE INTO search_claims (problem_key, job_id, "
            "owner, expiry_us) VALUES (?, ?, ?, ?)"));
        put.Text(problem_key).Text(job_id).Text(owner).Int(expiry);
        if (int rc = put.Step(); rc != SQLITE_DONE) {
          return Error(rc, "claim_search");
        }
        claim = SearchClaim{true, std::string(job_id), std::string(owner),
                            DecodeTime(expiry)};
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
      return claim;
    });
  }

  absl::Status ReleaseSearch(absl::string_view problem_key,
                             absl::string_view job_id) override {
    return stats_.Run("release_search", [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      Stmt del(Prepare(
          "DELETE FROM search_claims WHERE problem_key = ? AND job_id = ?"));
      del.Text(problem_key).Text(job_id);
      const int rc = del.Step();
      return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "release_search");
    });
  }

  absl::Status Ping() override {
    return stats_.Run("ping", [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      Stmt stmt(Prepare("SELECT count(*) FROM jobs"));
      const int rc = stmt.Step();
      return rc == SQLITE_ROW ? absl::OkStatus() : Error(rc, "ping");
    });
  }

  StoreStats Stats() const override { return stats_.Snapshot(); }

  // Runs once, before the store is handed out: the file checks and the
  // schema. The messages name the path because they end the server's
  // start-up.
  absl::Status Open() {
    absl::MutexLock lock(&mu_);
    int64_t app_id = 0, user_version = 0;
    std::vector<std::string> tables;
    {
      // The first read of the file: a file that is not a database fails
      // here (SQLITE_NOTADB), a damaged schema page too (SQLITE_CORRUPT).
      int rc = ReadPragma("application_id", &app_id);
      if (rc == SQLITE_OK) rc = ReadPragma("user_version", &user_version);
      if (rc == SQLITE_OK) {
        Stmt stmt(
            Prepare("SELECT name FROM sqlite_master WHERE type = 'table' "
                    "ORDER BY name"));
        while ((rc = stmt.Step()) == SQLITE_ROW) {
          tables.push_back(stmt.ColText(0));
        }
        if (rc == SQLITE_DONE) rc = SQLITE_OK;
      }
      if (rc != SQLITE_OK) return FileError(rc);
    }
    const bool fresh = app_id == 0 && user_version == 0 && tables.empty();
    if (!fresh && app_id != kSqliteApplicationId) {
      if (tables.size() > 5) {
        tables.resize(5);
        tables.push_back("...");
      }
      return absl::FailedPreconditionError(absl::StrFormat(
          "--store sqlite:%s: the file is an SQLite database of another "
          "application (application_id 0x%08x, tables: %s), not an mcmpart "
          "state store; it was left unchanged. Point --store at a new file",
          path_, static_cast<uint32_t>(app_id),
          tables.empty() ? "none" : absl::StrJoin(tables, ", ")));
    }
    if (!fresh && user_version != kSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--store sqlite:%s: the state store has schema version %d, this "
          "mcmpart-server reads version %d%s; it was left unchanged",
          path_, user_version, kSchemaVersion,
          user_version > kSchemaVersion ? " (written by a newer mcmpart?)"
                                        : ""));
    }
    // WAL before the schema: the mode is a property of the file.
    {
      Stmt stmt(Prepare("PRAGMA journal_mode = WAL"));
      const int rc = stmt.Step();
      if (rc != SQLITE_ROW) return FileError(rc);
      if (stmt.ColText(0) != "wal") {
        return absl::FailedPreconditionError(absl::StrCat(
            "--store sqlite:", path_,
            ": cannot turn on WAL mode (journal mode stays '", stmt.ColText(0),
            "'); put the file on a local file system"));
      }
    }
    if (int rc = Exec("PRAGMA synchronous = NORMAL"); rc != SQLITE_OK) {
      return FileError(rc);
    }
    if (fresh) {
      absl::Status s = InTransaction([&]() -> absl::Status {
        for (const char* sql : kSchemaV1) {
          if (int rc = Exec(sql); rc != SQLITE_OK) return FileError(rc);
        }
        for (const std::string& sql :
             {absl::StrCat("PRAGMA application_id = ", kSqliteApplicationId),
              absl::StrCat("PRAGMA user_version = ", kSchemaVersion)}) {
          if (int rc = Exec(sql.c_str()); rc != SQLITE_OK) return FileError(rc);
        }
        return absl::OkStatus();
      });
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status FileError(int rc) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int primary = rc & 0xff;
    const std::string detail =
        absl::StrCat(sqlite3_errmsg(db_), " (", sqlite3_errstr(rc), ")");
    if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--store sqlite:", path_,
          ": the file is not a usable SQLite database: ", detail,
          ". Move it away (a new store is created) or restore a good copy"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("--store sqlite:", path_, ": ", detail));
  }

  int ReadPragma(absl::string_view name, int64_t* value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sqlite3_stmt* raw = nullptr;
    const std::string sql = absl::StrCat("PRAGMA ", name);
    int rc = sqlite3_prepare_v2(db_, sql.c_str(), -1, &raw, nullptr);
    if (rc != SQLITE_OK) return rc;
    rc = sqlite3_step(raw);
    if (rc == SQLITE_ROW) {
      *value = sqlite3_column_int64(raw, 0);
      rc = SQLITE_OK;
    }
    sqlite3_finalize(raw);
    return rc;
  }

  int Exec(const char* sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  }

  absl::Status Error(int rc, absl::string_view op) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return absl::Status(CodeOf(rc),
                        absl::StrCat("sqlite store ", path_, ": ", op, ": ",
                                     sqlite3_errmsg(db_)));
  }

  // A statement prepared once and kept (SQLITE_PREPARE_PERSISTENT).
  Prepared Prepare(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = stmts_.find(sql);
    if (it != stmts_.end()) return Prepared{it->second, SQLITE_OK};
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(
        db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return Prepared{nullptr, rc};
    }
    stmts_[sql] = stmt;
    return Prepared{stmt, SQLITE_OK};
  }

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

  // Owner and unfinished, inside a transaction.
  absl::Status CheckOwned(absl::string_view id, absl::string_view owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Stmt stmt(Prepare("SELECT owner, state FROM jobs WHERE id = ?"));
    stmt.Text(id);
    const int rc = stmt.Step();
    if (rc == SQLITE_DONE) return internal::JobNotFound(id);
    if (rc != SQLITE_ROW) return Error(rc, "check owner");
    const std::string actual = stmt.ColText(0);
    if (actual != owner) return internal::NotOwner(id, owner, actual);
    const auto state = static_cast<JobState>(stmt.ColInt(1));
    if (IsTerminal(state)) return internal::AlreadyEnded(id, state);
    return absl::OkStatus();
  }

  // Binds status..final_update and cancel_requested of an INSERT in
  // kJobColumns order.
  static void BindProgressTail(Stmt& stmt, const JobProgress& p, bool cancel) {
    stmt.Int(EncodeTime(p.start_time))
        .Int(EncodeTime(p.end_time))
        .Int(static_cast<int>(p.status.code()))
        .Text(p.status.message())
        .Text(p.end_reason)
        .Real(p.elapsed_s)
        .Int(p.samples)
        .Real(p.bound_s)
        .Int(cancel ? 1 : 0);
    BindUpdate(stmt, p.best);
    BindUpdate(stmt, p.final_update);
  }

  static void BindUpdate(Stmt& stmt,
                         const std::optional<v1::PartitionUpdate>& update) {
    if (!update) {
      stmt.Null();
      return;
    }
    std::string bytes;
    update->SerializeToString(&bytes);
    stmt.Blob(bytes);
  }

  absl::StatusOr<JobRecord> RowToJob(const Stmt& row) const {
    JobRecord job;
    job.id = row.ColText(0);
    job.owner = row.ColText(1);
    job.lease_expiry = DecodeTime(row.ColInt(2));
    job.progress.state = static_cast<JobState>(row.ColInt(3));
    job.labels.strategy = row.ColText(4);
    job.labels.graph_name = row.ColText(5);
    job.labels.hardware_name = row.ColText(6);
    job.labels.num_nodes = static_cast<int32_t>(row.ColInt(7));
    job.create_time = DecodeTime(row.ColInt(8));
    job.progress.start_time = DecodeTime(row.ColInt(9));
    job.progress.end_time = DecodeTime(row.ColInt(10));
    job.progress.status = absl::Status(
        internal::DecodeStatusCode(row.ColInt(11)), row.ColText(12));
    job.progress.end_reason = row.ColText(13);
    job.progress.elapsed_s = row.ColReal(14);
    job.progress.samples = row.ColInt(15);
    job.progress.bound_s = row.ColReal(16);
    job.cancel_requested = row.ColInt(17) != 0;
    job.version = static_cast<uint64_t>(row.ColInt(18));
    for (auto [col, field] : {std::pair{19, &job.progress.best},
                              std::pair{20, &job.progress.final_update}}) {
      if (row.ColIsNull(col)) continue;
      field->emplace();
      if (!(*field)->ParseFromString(row.ColText(col))) {
        return absl::InternalError(absl::StrCat("sqlite store ", path_,
                                                ": job ", job.id,
                                                ": an update does not parse"));
      }
    }
    return job;
  }

  absl::StatusOr<JobRecord> ReadJob(absl::string_view id, RequestField request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<JobRecord> job;
    {
      Stmt stmt(Prepare(
          absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?")));
      stmt.Text(id);
      const int rc = stmt.Step();
      if (rc == SQLITE_DONE) return internal::JobNotFound(id);
      if (rc != SQLITE_ROW) return Error(rc, "get_job");
      job = RowToJob(stmt);
    }
    if (!job.ok() || request == RequestField::kOmit) return job;
    Stmt stmt(Prepare("SELECT request FROM job_requests WHERE id = ?"));
    stmt.Text(id);
    const int rc = stmt.Step();
    if (rc == SQLITE_ROW) {
      if (!job->request.ParseFromString(stmt.ColText(0))) {
        return absl::InternalError(
            absl::StrCat("sqlite store ", path_, ": job ", job->id,
                         ": the request does not parse"));
      }
      job->has_request = true;
    } else if (rc != SQLITE_DONE) {
      return Error(rc, "get_job");
    }
    return job;
  }

  // Strictly increasing use stamps for the cache's LRU order, even when two
  // uses fall in one microsecond.
  int64_t NextUse() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    last_use_ = std::max(last_use_ + 1, absl::ToUnixMicros(absl::Now()));
    return last_use_;
  }

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

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> OpenSqliteStore(
    const std::string& path, const StoreOptions& options) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return absl::FailedPreconditionError(absl::StrCat(
        "--store sqlite:", path, ": cannot open or create the file: ", why,
        " (does the directory exist and is it writable?)"));
  }
  // A second process on the file waits this long for the write lock.
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(path, db, options);
  if (absl::Status s = store->Open(); !s.ok()) return s;
  return store;
}

}  // namespace mcmpart::store
