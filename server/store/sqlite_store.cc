// The sqlite backend's set-up: opening and checking the file, creating the
// schema, the statement cache and transactions, and OpenSqliteStore. The
// calls on jobs, leases, claims and the cache are in sqlite_store_jobs.cc,
// sqlite_store_leases.cc and sqlite_store_cache.cc.
#include "server/store/sqlite_store.h"

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/store/change_notifier.h"
#include "server/store/sqlite_store_internal.h"

namespace mcmpart::store::sqlite_internal {
namespace {

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

}  // namespace

SqliteStore::SqliteStore(std::string path, sqlite3* db,
                         const StoreOptions& options)
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

SqliteStore::~SqliteStore() {
  // The notifier's thread reads through db_: stop it first.
  notifier_.reset();
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

absl::StatusOr<JobRecord> SqliteStore::WaitForChange(absl::string_view id,
                                                     uint64_t seen_version,
                                                     absl::Duration timeout) {
  return notifier_->WaitForChange(id, seen_version, timeout);
}

std::unique_ptr<Subscription> SqliteStore::Subscribe(absl::string_view id,
                                                     ChangeCallback callback) {
  return notifier_->Subscribe(id, std::move(callback));
}

absl::Status SqliteStore::Ping() {
  return stats_.Run("ping", [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    Stmt stmt(Prepare("SELECT count(*) FROM jobs"));
    const int rc = stmt.Step();
    return rc == SQLITE_ROW ? absl::OkStatus() : Error(rc, "ping");
  });
}

absl::Status SqliteStore::Open() {
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
        user_version > kSchemaVersion ? " (written by a newer mcmpart?)" : ""));
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

absl::Status SqliteStore::FileError(int rc) const {
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

int SqliteStore::ReadPragma(absl::string_view name, int64_t* value) {
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

int SqliteStore::Exec(const char* sql) {
  return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
}

absl::Status SqliteStore::Error(int rc, absl::string_view op) const {
  return absl::Status(CodeOf(rc), absl::StrCat("sqlite store ", path_, ": ", op,
                                               ": ", sqlite3_errmsg(db_)));
}

Prepared SqliteStore::Prepare(const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return Prepared{it->second, SQLITE_OK};
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.c_str(), -1,
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return Prepared{nullptr, rc};
  }
  stmts_[sql] = stmt;
  return Prepared{stmt, SQLITE_OK};
}

}  // namespace mcmpart::store::sqlite_internal

namespace mcmpart::store {

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
  auto store =
      std::make_unique<sqlite_internal::SqliteStore>(path, db, options);
  if (absl::Status s = store->Open(); !s.ok()) return s;
  return store;
}

}  // namespace mcmpart::store
