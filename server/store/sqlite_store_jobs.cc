// The sqlite backend's job records: creating, updating, reading, listing,
// cancelling and purging jobs, each change in one transaction.
#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/sqlite_store_internal.h"

namespace mcmpart::store::sqlite_internal {
namespace {

using internal::DecodeTime;
using internal::EncodeTime;

constexpr absl::string_view kJobColumns =
    "id, owner, lease_expiry_us, state, strategy, graph_name, hardware_name, "
    "num_nodes, create_us, start_us, end_us, status_code, status_message, "
    "end_reason, elapsed_s, samples, bound_s, cancel_requested, version, "
    "best, final_update";

}  // namespace

absl::Status SqliteStore::CreateJob(const JobRecord& job) {
  return stats_.Run("create_job", [&]() -> absl::Status {
    if (absl::Status s = internal::RequireNonEmpty(job.id, "job id"); !s.ok()) {
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

absl::StatusOr<uint64_t> SqliteStore::UpdateJob(absl::string_view id,
                                                absl::string_view owner,
                                                const JobProgress& progress) {
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

absl::StatusOr<JobRecord> SqliteStore::GetJob(absl::string_view id,
                                              RequestField request) {
  return stats_.Run("get_job", [&]() -> absl::StatusOr<JobRecord> {
    absl::MutexLock lock(&mu_);
    return ReadJob(id, request);
  });
}

absl::StatusOr<std::vector<JobRecord>> SqliteStore::ListJobs(
    const ListJobsOptions& options) {
  return stats_.Run(
      "list_jobs", [&]() -> absl::StatusOr<std::vector<JobRecord>> {
        std::string sql = absl::StrCat("SELECT ", kJobColumns, " FROM jobs");
        if (!options.states.empty()) {
          // Sorted and unique: one statement per set of states.
          std::vector<int> states(options.states.begin(), options.states.end());
          std::sort(states.begin(), states.end());
          states.erase(std::unique(states.begin(), states.end()), states.end());
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

absl::StatusOr<JobRecord> SqliteStore::RequestCancel(absl::string_view id) {
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

absl::StatusOr<int> SqliteStore::PurgeEnded(absl::Duration max_age,
                                            int max_count) {
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
          if (select.ColInt(1) < cutoff || (max_count >= 0 && i >= max_count)) {
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
        Stmt claims(Prepare("DELETE FROM search_claims WHERE expiry_us <= ?"));
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

absl::Status SqliteStore::CheckOwned(absl::string_view id,
                                     absl::string_view owner) {
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

void SqliteStore::BindProgressTail(Stmt& stmt, const JobProgress& p,
                                   bool cancel) {
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

void SqliteStore::BindUpdate(Stmt& stmt,
                             const std::optional<v1::PartitionUpdate>& update) {
  if (!update) {
    stmt.Null();
    return;
  }
  std::string bytes;
  update->SerializeToString(&bytes);
  stmt.Blob(bytes);
}

absl::StatusOr<JobRecord> SqliteStore::RowToJob(const Stmt& row) const {
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
  job.progress.status =
      absl::Status(internal::DecodeStatusCode(row.ColInt(11)), row.ColText(12));
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
      return absl::InternalError(absl::StrCat("sqlite store ", path_, ": job ",
                                              job.id,
                                              ": an update does not parse"));
    }
  }
  return job;
}

absl::StatusOr<JobRecord> SqliteStore::ReadJob(absl::string_view id,
                                               RequestField request) {
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
      return absl::InternalError(absl::StrCat("sqlite store ", path_, ": job ",
                                              job->id,
                                              ": the request does not parse"));
    }
    job->has_request = true;
  } else if (rc != SQLITE_DONE) {
    return Error(rc, "get_job");
  }
  return job;
}

}  // namespace mcmpart::store::sqlite_internal
