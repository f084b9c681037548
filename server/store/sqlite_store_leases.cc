// The sqlite backend's leases and search claims: renewing and releasing a
// job's lease, taking over the jobs whose lease ran out, and the claims
// that keep two searches of one problem from running at once.
#include <sqlite3.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "server/store/sqlite_store_internal.h"

namespace mcmpart::store::sqlite_internal {
namespace {

using internal::DecodeTime;

}  // namespace

absl::StatusOr<LeaseInfo> SqliteStore::RenewLease(absl::string_view id,
                                                  absl::string_view owner,
                                                  absl::Duration ttl) {
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

absl::Status SqliteStore::ReleaseLease(absl::string_view id,
                                       absl::string_view owner) {
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

absl::StatusOr<std::vector<JobRecord>> SqliteStore::ClaimOrphans(
    absl::string_view owner, absl::Duration lease_ttl, int limit) {
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

absl::StatusOr<SearchClaim> SqliteStore::ClaimSearch(
    absl::string_view problem_key, absl::string_view job_id,
    absl::string_view owner, absl::Duration ttl) {
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
      Stmt put(
          Prepare("INSERT OR REPLACE INTO search_claims (problem_key, job_id, "
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

absl::Status SqliteStore::ReleaseSearch(absl::string_view problem_key,
                                        absl::string_view job_id) {
  return stats_.Run("release_search", [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    Stmt del(Prepare(
        "DELETE FROM search_claims WHERE problem_key = ? AND job_id = ?"));
    del.Text(problem_key).Text(job_id);
    const int rc = del.Step();
    return rc == SQLITE_DONE ? absl::OkStatus() : Error(rc, "release_search");
  });
}

}  // namespace mcmpart::store::sqlite_internal
