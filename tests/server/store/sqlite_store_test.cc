// The sqlite backend beyond the shared contract: the file survives a
// restart, is in WAL mode and carries its schema version; files that are
// not ours are clear start-up errors and are left unchanged.
#include "server/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/store/test_util.h"

namespace mcmpart::store {
namespace {

using ::testing::HasSubstr;
using testing::NewJob;
using ::testing::StartsWith;
using testing::Update;

// Runs SQL on the file directly, as another program would.
std::string Sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  std::string out;
  char* error = nullptr;
  sqlite3_exec(
      db, sql.c_str(),
      [](void* arg, int n, char** values, char**) {
        auto* text = static_cast<std::string*>(arg);
        for (int i = 0; i < n; ++i) {
          if (!text->empty()) *text += "|";
          *text += values[i] != nullptr ? values[i] : "NULL";
        }
        return 0;
      },
      &out, &error);
  if (error != nullptr) {
    out = std::string("error: ") + error;
    sqlite3_free(error);
  }
  sqlite3_close(db);
  return out;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<StateStore>> Open(StoreOptions options = {}) {
    return OpenSqliteStore(path_, options);
  }
  testing::TempDir dir_;
  const std::string path_ = dir_.File("state.db");
};

TEST_F(SqliteStoreTest, JobsCacheAndClaimsSurviveAReopen) {
  {
    absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->CreateJob(NewJob("job-1", "a")).ok());
    ASSERT_TRUE(
        (*store)->UpdateJob("job-1", "a", testing::EndedProgress()).ok());
    ASSERT_TRUE((*store)->CreateJob(NewJob("job-2", "a")).ok());
    ASSERT_TRUE((*store)->CachePut("key", Update(321, true)).ok());
    ASSERT_TRUE((*store)->ClaimSearch("p", "job-2", "a", absl::Hours(1)).ok());
  }
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<JobRecord> job =
      (*store)->GetJob("job-1", RequestField::kInclude);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->version, 2u);
  EXPECT_EQ(job->progress.state, v1::Job::FAILED);
  EXPECT_EQ(job->progress.samples, 987654321012);
  EXPECT_TRUE(job->has_request);
  EXPECT_EQ(job->request.seed(), 42u);
  absl::StatusOr<std::vector<JobRecord>> all = (*store)->ListJobs({});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
  absl::StatusOr<std::optional<CacheEntry>> cached = (*store)->CacheGet("key");
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_TRUE((*cached)->proved_optimal);
  EXPECT_EQ((*cached)->best.evaluation().throughput_per_s(), 321);
  absl::StatusOr<SearchClaim> claim =
      (*store)->ClaimSearch("p", "job-3", "b", absl::Hours(1));
  ASSERT_TRUE(claim.ok());
  EXPECT_FALSE(claim->owned);
  EXPECT_EQ(claim->job_id, "job-2");
  // The writes go on from the stored version.
  absl::StatusOr<uint64_t> v =
      (*store)->UpdateJob("job-2", "a", testing::EndedProgress());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 2u);
}

TEST_F(SqliteStoreTest, TwoStoresOnOneFileSeeEachOtherByPolling) {
  StoreOptions options;
  options.poll_interval = absl::Milliseconds(100);
  absl::StatusOr<std::unique_ptr<StateStore>> a = Open(options);
  absl::StatusOr<std::unique_ptr<StateStore>> b = Open(options);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->CreateJob(NewJob("job-1", "a")).ok());
  // The owner check is in the file, not in one store object.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*b)->UpdateJob("job-1", "b", JobProgress()).status()));
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(30));
    ASSERT_TRUE((*b)->RequestCancel("job-1").ok());
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<JobRecord> job =
      (*a)->WaitForChange("job-1", 1, absl::Seconds(5));
  canceller.join();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->cancel_requested);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
}

TEST_F(SqliteStoreTest, TheFileIsInWalModeWithOurIdAndSchemaVersion) {
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->CreateJob(NewJob("job-1", "a")).ok());
  EXPECT_EQ(Sql(path_, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(Sql(path_, "PRAGMA user_version"), absl::StrCat(kSchemaVersion));
  EXPECT_EQ(Sql(path_, "PRAGMA application_id"),
            absl::StrCat(kSqliteApplicationId));
  EXPECT_EQ(Sql(path_,
                "SELECT group_concat(name, ',') FROM (SELECT name FROM "
                "sqlite_master WHERE type = 'table' ORDER BY name)"),
            "job_requests,jobs,result_cache,search_claims");
  EXPECT_EQ(Sql(path_, "SELECT id, owner FROM jobs"), "job-1|a");
}

TEST_F(SqliteStoreTest, AnotherSchemaVersionIsRefused) {
  ASSERT_TRUE(Open().ok());
  Sql(path_, "PRAGMA user_version = 2");
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  EXPECT_EQ(store.status(),
            absl::FailedPreconditionError(absl::StrCat(
                "--store sqlite:", path_,
                ": the state store has schema version 2, this mcmpart-server "
                "reads version 1 (written by a newer mcmpart?); it was left "
                "unchanged")));
  EXPECT_EQ(Sql(path_, "PRAGMA user_version"), "2");
}

TEST_F(SqliteStoreTest, AFileThatIsNotADatabaseIsAClearError) {
  {
    std::ofstream out(path_, std::ios::binary);
    out << std::string(8192, 'z');
  }
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  ASSERT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_THAT(std::string(store.status().message()),
              StartsWith(absl::StrCat(
                  "--store sqlite:", path_,
                  ": the file is not a usable SQLite database: file is not a "
                  "database")));
  EXPECT_THAT(store.status().message(), HasSubstr("Move it away"));
  // Not touched.
  std::ifstream in(path_, std::ios::binary);
  std::string content((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(content, std::string(8192, 'z'));
}

TEST_F(SqliteStoreTest, ADamagedStoreIsAClearError) {
  {
    absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(
          (*store)->CreateJob(NewJob(absl::StrCat("job-", i), "a")).ok());
    }
  }
  {
    // Garbage over page 1 after the file header: the schema table's root.
    std::fstream f(path_, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    const std::string junk(3000, '\x5a');
    f.write(junk.data(), junk.size());
  }
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  ASSERT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_THAT(std::string(store.status().message()),
              StartsWith(absl::StrCat("--store sqlite:", path_,
                                      ": the file is not a usable SQLite "
                                      "database: ")));
}

TEST_F(SqliteStoreTest, AnotherApplicationsDatabaseIsRefusedAndLeftUnchanged) {
  Sql(path_, "CREATE TABLE users (name TEXT); CREATE TABLE orders (id INT)");
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  EXPECT_EQ(store.status(),
            absl::FailedPreconditionError(absl::StrCat(
                "--store sqlite:", path_,
                ": the file is an SQLite database of another application "
                "(application_id 0x00000000, tables: orders, users), not an "
                "mcmpart state store; it was left unchanged. Point --store at "
                "a new file")));
  EXPECT_EQ(Sql(path_, "PRAGMA journal_mode"), "delete");
  EXPECT_EQ(Sql(path_, "SELECT count(*) FROM sqlite_master"), "2");
}

TEST_F(SqliteStoreTest, AnEmptyFileBecomesAStore) {
  { std::ofstream out(path_); }
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  ASSERT_TRUE(store.ok()) << store.status();
  absl::Status created = (*store)->CreateJob(NewJob("job-1", "a"));
  EXPECT_TRUE(created.ok()) << created;
}

TEST_F(SqliteStoreTest, AFileThatCannotBeCreatedNamesThePath) {
  const std::string path = dir_.File("no/such/dir/state.db");
  absl::StatusOr<std::unique_ptr<StateStore>> store = OpenSqliteStore(path, {});
  EXPECT_EQ(store.status(),
            absl::FailedPreconditionError(absl::StrCat(
                "--store sqlite:", path,
                ": cannot open or create the file: unable to open database "
                "file (does the directory exist and is it writable?)")));
}

TEST_F(SqliteStoreTest, TheCacheKeepsTheMostRecentlyUsedEntries) {
  StoreOptions options;
  options.cache_entries = 2;
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open(options);
  ASSERT_TRUE(store.ok());
  StateStore& s = **store;
  ASSERT_TRUE(s.CachePut("a", Update(1)).ok());
  ASSERT_TRUE(s.CachePut("b", Update(1)).ok());
  ASSERT_TRUE(s.CacheGet("a").ok());  // a is now the most recent
  ASSERT_TRUE(s.CachePut("c", Update(1)).ok());
  EXPECT_EQ(Sql(path_,
                "SELECT group_concat(key, ',') FROM (SELECT key FROM "
                "result_cache ORDER BY key)"),
            "a,c");
}

// Not a pass/fail figure: per-call latency on this machine, printed for
// docs/store.md.
TEST_F(SqliteStoreTest, MeasuresPerCallLatency) {
  absl::StatusOr<std::unique_ptr<StateStore>> store = Open();
  ASSERT_TRUE(store.ok());
  StateStore& s = **store;
  constexpr int kJobs = 200;
  JobProgress running;
  running.state = v1::Job::RUNNING;
  running.best = Update(100);
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = absl::StrCat("job-", i);
    ASSERT_TRUE(s.CreateJob(NewJob(id, "a")).ok());
    ASSERT_TRUE(s.UpdateJob(id, "a", running).ok());
    ASSERT_TRUE(s.GetJob(id).ok());
    ASSERT_TRUE(s.RenewLease(id, "a", absl::Seconds(30)).ok());
    ASSERT_TRUE(s.CachePut(id, Update(i)).ok());
    ASSERT_TRUE(s.CacheGet(id).ok());
  }
  const StoreStats stats = s.Stats();
  for (const char* op : {"create_job", "update_job", "get_job", "renew_lease",
                         "cache_put", "cache_get"}) {
    const OpStats& o = stats.ops.at(op);
    std::cout << "sqlite " << op << ": mean " << o.latency_sum_s / o.calls * 1e6
              << " us, max " << o.latency_max_s * 1e6 << " us over " << o.calls
              << " calls\n";
    EXPECT_LT(o.latency_sum_s / o.calls, 0.05) << op;
  }
}

}  // namespace
}  // namespace mcmpart::store
