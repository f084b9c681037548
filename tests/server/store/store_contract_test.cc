// The contract of StateStore (server/store/store.h), run against every
// backend: memory, sqlite (a file in a temporary directory) and Redis (a
// real redis-server started for each test). Two "replicas" here are two
// owner ids on one store object; redis_store_test.cc has two store objects.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "server/store/store.h"
#include "tests/server/store/test_util.h"

namespace mcmpart::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using testing::EndedProgress;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::NewJob;
using testing::Update;

MATCHER_P(EqualsProto, expected, "") {
  return MessageDifferencer::Equals(arg, expected);
}

class StoreContractTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    StoreOptions options;
    options.cache_entries = 8;
    const std::string& backend = GetParam();
    std::string spec = backend;
    if (backend == "sqlite") {
      spec = absl::StrCat("sqlite:", dir_.File("state.db"));
    } else if (backend == "redis") {
      ASSERT_TRUE(redis_.Start()) << "cannot start redis-server";
      spec = redis_.spec();
    }
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        OpenStore(spec, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_EQ(store_->backend(), backend);
  }
  void TearDown() override { store_.reset(); }

  JobRecord Get(const std::string& id) {
    absl::StatusOr<JobRecord> job = store_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : JobRecord();
  }

  std::vector<std::string> Ids(const ListJobsOptions& options) {
    absl::StatusOr<std::vector<JobRecord>> jobs = store_->ListJobs(options);
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    std::vector<std::string> ids;
    if (jobs.ok()) {
      for (const JobRecord& j : *jobs) ids.push_back(j.id);
    }
    return ids;
  }

  testing::TempDir dir_;
  testing::RedisServer redis_;
  std::unique_ptr<StateStore> store_;
};

void ExpectSameProgress(const JobProgress& got, const JobProgress& want) {
  EXPECT_EQ(got.state, want.state);
  EXPECT_EQ(got.start_time, want.start_time);
  EXPECT_EQ(got.end_time, want.end_time);
  ASSERT_EQ(got.best.has_value(), want.best.has_value());
  if (want.best) {
    EXPECT_THAT(*got.best, EqualsProto(*want.best));
  }
  ASSERT_EQ(got.final_update.has_value(), want.final_update.has_value());
  if (want.final_update) {
    EXPECT_THAT(*got.final_update, EqualsProto(*want.final_update));
  }
  EXPECT_EQ(got.status, want.status);
  EXPECT_EQ(got.end_reason, want.end_reason);
  EXPECT_EQ(got.elapsed_s, want.elapsed_s);
  EXPECT_EQ(got.samples, want.samples);
  EXPECT_EQ(got.bound_s, want.bound_s);
}

TEST_P(StoreContractTest, CreateAndGetRoundTripEveryField) {
  JobRecord job = NewJob("job-1", "replica-a");
  job.progress = EndedProgress();
  job.progress.state = v1::Job::RUNNING;  // unfinished, but every field set
  job.cancel_requested = true;
  job.version = 77;  // ignored: the store starts at 1
  ASSERT_TRUE(store_->CreateJob(job).ok());

  absl::StatusOr<JobRecord> got =
      store_->GetJob("job-1", RequestField::kInclude);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, "job-1");
  EXPECT_EQ(got->owner, "replica-a");
  EXPECT_EQ(got->lease_expiry, job.lease_expiry);
  EXPECT_TRUE(got->has_request);
  EXPECT_THAT(got->request, EqualsProto(job.request));
  EXPECT_EQ(got->labels.strategy, "anneal");
  EXPECT_EQ(got->labels.graph_name, "resnet50");
  EXPECT_EQ(got->labels.hardware_name, "ring4");
  EXPECT_EQ(got->labels.num_nodes, 122);
  EXPECT_EQ(got->create_time, job.create_time);
  ExpectSameProgress(got->progress, job.progress);
  EXPECT_TRUE(got->cancel_requested);
  EXPECT_EQ(got->version, 1u);

  // Without the request unless asked (it may be megabytes of ONNX).
  JobRecord lean = Get("job-1");
  EXPECT_FALSE(lean.has_request);
  EXPECT_THAT(lean.request, EqualsProto(v1::PartitionRequest()));
  ExpectSameProgress(lean.progress, job.progress);
}

TEST_P(StoreContractTest, AFreshJobHasNoBestAndTimesNotReached) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  JobRecord got = Get("job-1");
  EXPECT_EQ(got.progress.state, v1::Job::QUEUED);
  EXPECT_FALSE(got.progress.best.has_value());
  EXPECT_FALSE(got.progress.final_update.has_value());
  EXPECT_EQ(got.progress.start_time, absl::InfinitePast());
  EXPECT_EQ(got.progress.end_time, absl::InfinitePast());
  EXPECT_TRUE(got.progress.status.ok());
  EXPECT_FALSE(got.cancel_requested);
}

TEST_P(StoreContractTest, CreateRejectsATakenIdAndEmptyIds) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  absl::Status again = store_->CreateJob(NewJob("job-1", "b"));
  EXPECT_TRUE(absl::IsAlreadyExists(again)) << again;
  EXPECT_EQ(Get("job-1").owner, "a");
  EXPECT_TRUE(absl::IsInvalidArgument(store_->CreateJob(NewJob("", "a"))));
  EXPECT_TRUE(absl::IsInvalidArgument(store_->CreateJob(NewJob("x", ""))));
}

TEST_P(StoreContractTest, GetOfAnUnknownJobIsNotFound) {
  absl::StatusOr<JobRecord> got = store_->GetJob("job-nope");
  EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
  EXPECT_THAT(got.status().message(), HasSubstr("'job-nope'"));
}

TEST_P(StoreContractTest, TheOwnerUpdatesAndEachWriteBumpsTheVersion) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  JobProgress running;
  running.state = v1::Job::RUNNING;
  running.start_time = testing::Micros(absl::Now());
  running.best = Update(10);
  absl::StatusOr<uint64_t> v = store_->UpdateJob("job-1", "a", running);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 2u);
  ExpectSameProgress(Get("job-1").progress, running);

  const JobProgress ended = EndedProgress();
  v = store_->UpdateJob("job-1", "a", ended);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 3u);
  JobRecord got = Get("job-1");
  EXPECT_EQ(got.version, 3u);
  ExpectSameProgress(got.progress, ended);
  EXPECT_TRUE(got.done());
}

TEST_P(StoreContractTest, AReplicaThatIsNotTheOwnerCannotOverwrite) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  JobProgress p;
  p.state = v1::Job::RUNNING;
  p.best = Update(99);
  absl::StatusOr<uint64_t> v = store_->UpdateJob("job-1", "b", p);
  EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  EXPECT_THAT(v.status().message(),
              HasSubstr("is not owned by replica 'b' but by replica 'a'"));
  JobRecord got = Get("job-1");
  EXPECT_EQ(got.version, 1u);
  EXPECT_EQ(got.progress.state, v1::Job::QUEUED);
  EXPECT_FALSE(got.progress.best.has_value());
}

TEST_P(StoreContractTest, AnEndedJobTakesNoMoreWrites) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  ASSERT_TRUE(store_->UpdateJob("job-1", "a", EndedProgress()).ok());
  JobProgress p;
  p.state = v1::Job::RUNNING;
  absl::StatusOr<uint64_t> v = store_->UpdateJob("job-1", "a", p);
  EXPECT_TRUE(absl::IsFailedPrecondition(v.status())) << v.status();
  EXPECT_THAT(v.status().message(), HasSubstr("has already ended (failed)"));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->RenewLease("job-1", "a", absl::Seconds(5)).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->UpdateJob("job-x", "a", p).status()));
}

TEST_P(StoreContractTest, ListIsNewestFirstWithLimitAndStateFilter) {
  const absl::Time t0 = testing::Micros(absl::Now());
  for (int i = 0; i < 5; ++i) {
    JobRecord job = NewJob(absl::StrCat("job-", i), "a");
    job.create_time = t0 + absl::Seconds(i);
    if (i % 2 == 1) job.progress = EndedProgress();  // FAILED
    ASSERT_TRUE(store_->CreateJob(job).ok());
  }
  // Same create time: the larger id first.
  JobRecord tie = NewJob("job-4b", "a");
  tie.create_time = t0 + absl::Seconds(4);
  ASSERT_TRUE(store_->CreateJob(tie).ok());

  EXPECT_THAT(Ids({}), ElementsAre("job-4b", "job-4", "job-3", "job-2", "job-1",
                                   "job-0"));
  EXPECT_THAT(Ids({{}, 2}), ElementsAre("job-4b", "job-4"));
  EXPECT_THAT(Ids({{v1::Job::FAILED}, 0}), ElementsAre("job-3", "job-1"));
  EXPECT_THAT(Ids({{v1::Job::QUEUED}, 2}), ElementsAre("job-4b", "job-4"));
  EXPECT_THAT(Ids({{v1::Job::RUNNING}, 0}), IsEmpty());
  EXPECT_THAT(Ids({{v1::Job::FAILED, v1::Job::QUEUED, v1::Job::FAILED}, 3}),
              ElementsAre("job-4b", "job-4", "job-3"));
  absl::StatusOr<std::vector<JobRecord>> jobs = store_->ListJobs({});
  ASSERT_TRUE(jobs.ok());
  for (const JobRecord& j : *jobs) EXPECT_FALSE(j.has_request);
}

TEST_P(StoreContractTest, CancelSetsTheFlagOnceAndLeavesEndedJobsAlone) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  absl::StatusOr<JobRecord> c = store_->RequestCancel("job-1");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->cancel_requested);
  EXPECT_EQ(c->version, 2u);
  c = store_->RequestCancel("job-1");  // again: nothing changes
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->version, 2u);
  // The owner sees it when it renews its lease.
  absl::StatusOr<LeaseInfo> lease =
      store_->RenewLease("job-1", "a", absl::Seconds(5));
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_TRUE(lease->cancel_requested);
  EXPECT_EQ(lease->version, 2u);

  ASSERT_TRUE(store_->CreateJob(NewJob("job-2", "a")).ok());
  ASSERT_TRUE(store_->UpdateJob("job-2", "a", EndedProgress()).ok());
  c = store_->RequestCancel("job-2");
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->cancel_requested);
  EXPECT_EQ(c->version, 2u);
  EXPECT_TRUE(absl::IsNotFound(store_->RequestCancel("job-x").status()));
}

TEST_P(StoreContractTest, ClaimOrphansTakesExpiredLeasesOnly) {
  ASSERT_TRUE(
      store_->CreateJob(NewJob("job-1", "a", absl::Milliseconds(300))).ok());
  ASSERT_TRUE(store_->CreateJob(NewJob("job-2", "a", absl::Hours(1))).ok());
  JobRecord ended = NewJob("job-3", "a", absl::Milliseconds(1));
  ended.progress = EndedProgress();
  ASSERT_TRUE(store_->CreateJob(ended).ok());

  // Before the lease ends: nothing.
  absl::StatusOr<std::vector<JobRecord>> claimed =
      store_->ClaimOrphans("b", absl::Seconds(10), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_THAT(*claimed, IsEmpty());

  absl::SleepFor(absl::Milliseconds(400));
  const absl::Time before = absl::Now();
  claimed = store_->ClaimOrphans("b", absl::Seconds(10), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);  // not the live one, not the ended one
  const JobRecord& job = (*claimed)[0];
  EXPECT_EQ(job.id, "job-1");
  EXPECT_EQ(job.owner, "b");
  EXPECT_EQ(job.version, 2u);
  EXPECT_GE(job.lease_expiry, before + absl::Seconds(9));
  EXPECT_TRUE(job.has_request);
  EXPECT_THAT(job.request, EqualsProto(NewJob("x", "y").request));

  // The old owner lost it; the new one writes.
  JobProgress p;
  p.state = v1::Job::RUNNING;
  EXPECT_TRUE(
      absl::IsFailedPrecondition(store_->UpdateJob("job-1", "a", p).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->RenewLease("job-1", "a", absl::Seconds(1)).status()));
  EXPECT_TRUE(store_->UpdateJob("job-1", "b", p).ok());
  // Claimed with a fresh lease: no one else takes it.
  claimed = store_->ClaimOrphans("c", absl::Seconds(10), 10);
  ASSERT_TRUE(claimed.ok());
  EXPECT_THAT(*claimed, IsEmpty());

  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->ClaimOrphans("", absl::Seconds(1), 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->ClaimOrphans("b", absl::Seconds(1), 0).status()));
}

TEST_P(StoreContractTest, ClaimOrphansHonoursTheLimitOldestLeaseFirst) {
  for (int i = 0; i < 3; ++i) {
    JobRecord job = NewJob(absl::StrCat("job-", i), "a");
    job.lease_expiry = testing::Micros(absl::Now() - absl::Seconds(10 - i));
    ASSERT_TRUE(store_->CreateJob(job).ok());
  }
  absl::StatusOr<std::vector<JobRecord>> claimed =
      store_->ClaimOrphans("b", absl::Seconds(10), 2);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  EXPECT_EQ((*claimed)[0].id, "job-0");
  EXPECT_EQ((*claimed)[1].id, "job-1");
  claimed = store_->ClaimOrphans("c", absl::Seconds(10), 2);
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].id, "job-2");
}

TEST_P(StoreContractTest, RenewingTheLeaseKeepsClaimersAway) {
  ASSERT_TRUE(
      store_->CreateJob(NewJob("job-1", "a", absl::Milliseconds(200))).ok());
  for (int i = 0; i < 4; ++i) {
    absl::StatusOr<LeaseInfo> lease =
        store_->RenewLease("job-1", "a", absl::Milliseconds(200));
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_FALSE(lease->cancel_requested);
    EXPECT_EQ(lease->version, 1u);  // renewing is not a change
    absl::SleepFor(absl::Milliseconds(100));
    absl::StatusOr<std::vector<JobRecord>> claimed =
        store_->ClaimOrphans("b", absl::Seconds(10), 10);
    ASSERT_TRUE(claimed.ok());
    EXPECT_THAT(*claimed, IsEmpty());
  }
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->RenewLease("job-1", "b", absl::Seconds(1)).status()));
  EXPECT_TRUE(absl::IsNotFound(
      store_->RenewLease("job-x", "a", absl::Seconds(1)).status()));
}

TEST_P(StoreContractTest, ReleasedJobsAreClaimedAtOnce) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a", absl::Hours(1))).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store_->ReleaseLease("job-1", "b")));
  ASSERT_TRUE(store_->ReleaseLease("job-1", "a").ok());
  JobRecord got = Get("job-1");
  EXPECT_EQ(got.owner, "");
  EXPECT_EQ(got.version, 2u);
  EXPECT_TRUE(absl::IsFailedPrecondition(
      store_->UpdateJob("job-1", "a", JobProgress()).status()));
  absl::StatusOr<std::vector<JobRecord>> claimed =
      store_->ClaimOrphans("b", absl::Seconds(10), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  EXPECT_EQ((*claimed)[0].owner, "b");
}

TEST_P(StoreContractTest, PurgeDropsOldAndSurplusEndedJobsOnly) {
  const absl::Time now = testing::Micros(absl::Now());
  for (int i = 0; i < 5; ++i) {
    JobRecord job = NewJob(absl::StrCat("job-", i), "a");
    job.progress = EndedProgress();
    job.progress.end_time = now - absl::Minutes(10 * i);  // job-0 newest
    ASSERT_TRUE(store_->CreateJob(job).ok());
  }
  ASSERT_TRUE(store_->CreateJob(NewJob("live", "a", -absl::Hours(1))).ok());

  absl::StatusOr<int> purged = store_->PurgeEnded(absl::Minutes(25), -1);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 2);  // 30 and 40 minutes ago
  EXPECT_THAT(Ids({}), ElementsAre("live", "job-2", "job-1", "job-0"));
  purged = store_->PurgeEnded(absl::InfiniteDuration(), 1);
  ASSERT_TRUE(purged.ok()) << purged.status();
  EXPECT_EQ(*purged, 2);
  EXPECT_THAT(Ids({}), ElementsAre("live", "job-0"));
  EXPECT_TRUE(absl::IsNotFound(
      store_->GetJob("job-1", RequestField::kInclude).status()));
  purged = store_->PurgeEnded(absl::ZeroDuration(), 0);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  EXPECT_THAT(Ids({}), ElementsAre("live"));
}

TEST_P(StoreContractTest, AWaiterOfAPurgedJobGetsNotFound) {
  JobRecord job = NewJob("job-1", "a");
  job.progress = EndedProgress();
  ASSERT_TRUE(store_->CreateJob(job).ok());
  std::thread purger([&] {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(store_->PurgeEnded(absl::ZeroDuration(), 0).ok());
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<JobRecord> got =
      store_->WaitForChange("job-1", 1, absl::Seconds(5));
  purger.join();
  EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
}

TEST_P(StoreContractTest, WaitForChangeWakesOnAWriteWithin100ms) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  std::atomic<int64_t> written_us{0};
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    written_us = absl::ToUnixMicros(absl::Now());
    JobProgress p;
    p.state = v1::Job::RUNNING;
    ASSERT_TRUE(store_->UpdateJob("job-1", "a", p).ok());
  });
  absl::StatusOr<JobRecord> job =
      store_->WaitForChange("job-1", 1, absl::Seconds(5));
  const int64_t woke_us = absl::ToUnixMicros(absl::Now());
  writer.join();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->version, 2u);
  EXPECT_EQ(job->progress.state, v1::Job::RUNNING);
  EXPECT_LT(woke_us - written_us, 100'000);
}

TEST_P(StoreContractTest, WaitForChangeReturnsAtOnceOrAfterTheTimeout) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  absl::Time start = absl::Now();
  absl::StatusOr<JobRecord> job =
      store_->WaitForChange("job-1", 0, absl::Seconds(5));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->version, 1u);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(100));

  start = absl::Now();
  job = store_->WaitForChange("job-1", 1, absl::Milliseconds(150));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->version, 1u);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(150));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(absl::IsNotFound(
      store_->WaitForChange("job-x", 0, absl::Milliseconds(10)).status()));
}

TEST_P(StoreContractTest, TheOwnersSubscriptionSeesACancelWithin100ms) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  absl::Mutex mu;
  std::vector<uint64_t> versions;
  bool cancelled = false;
  absl::Time cancel_seen;
  std::unique_ptr<Subscription> sub =
      store_->Subscribe("job-1", [&](const JobRecord& job) {
        absl::MutexLock lock(&mu);
        versions.push_back(job.version);
        if (job.cancel_requested && !cancelled) {
          cancelled = true;
          cancel_seen = absl::Now();
        }
      });
  {  // The first report: the version at subscription time.
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(
            +[](std::vector<uint64_t>* v) { return !v->empty(); }, &versions),
        absl::Seconds(5)));
    EXPECT_EQ(versions[0], 1u);
  }
  const absl::Time cancel_at = absl::Now();
  ASSERT_TRUE(store_->RequestCancel("job-1").ok());
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&cancelled), absl::Seconds(5)));
    EXPECT_LT(cancel_seen - cancel_at, absl::Milliseconds(100));
  }
  sub.reset();
  // After the subscription ends, no more calls.
  size_t seen;
  {
    absl::MutexLock lock(&mu);
    seen = versions.size();
  }
  JobProgress p;
  p.state = v1::Job::RUNNING;
  ASSERT_TRUE(store_->UpdateJob("job-1", "a", p).ok());
  absl::SleepFor(absl::Milliseconds(50));
  absl::MutexLock lock(&mu);
  EXPECT_EQ(versions.size(), seen);
}

TEST_P(StoreContractTest, CacheKeepsProvedEntriesAndOtherwiseTheBetter) {
  absl::StatusOr<std::optional<CacheEntry>> miss = store_->CacheGet("k");
  ASSERT_TRUE(miss.ok()) << miss.status();
  EXPECT_FALSE(miss->has_value());

  auto put = [&](double t, bool proved) {
    absl::StatusOr<bool> stored = store_->CachePut("k", Update(t, proved));
    EXPECT_TRUE(stored.ok()) << stored.status();
    return stored.ok() && *stored;
  };
  auto best = [&]() -> std::pair<double, bool> {
    absl::StatusOr<std::optional<CacheEntry>> e = store_->CacheGet("k");
    EXPECT_TRUE(e.ok() && e->has_value());
    if (!e.ok() || !e->has_value()) return {0, false};
    return {(*e)->best.evaluation().throughput_per_s(), (*e)->proved_optimal};
  };
  EXPECT_TRUE(put(100, false));
  EXPECT_FALSE(put(90, false));   // worse
  EXPECT_FALSE(put(100, false));  // not better
  EXPECT_TRUE(put(110, false));
  EXPECT_EQ(best(), std::make_pair(110.0, false));
  EXPECT_TRUE(put(105, true));  // a proof beats a higher unproved figure
  EXPECT_EQ(best(), std::make_pair(105.0, true));
  EXPECT_FALSE(put(500, false));  // nothing unproved replaces a proof
  EXPECT_EQ(best(), std::make_pair(105.0, true));

  absl::StatusOr<std::optional<CacheEntry>> e = store_->CacheGet("k");
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_THAT((*e)->best, EqualsProto(Update(105, true)));
}

TEST_P(StoreContractTest, ClaimSearchJoinsTheRunningSearchUntilItLapses) {
  absl::StatusOr<SearchClaim> a = store_->ClaimSearch(
      "problem", "job-a", "replica-a", absl::Milliseconds(300));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->owned);
  EXPECT_EQ(a->job_id, "job-a");

  absl::StatusOr<SearchClaim> b =
      store_->ClaimSearch("problem", "job-b", "replica-b", absl::Seconds(10));
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_FALSE(b->owned);
  EXPECT_EQ(b->job_id, "job-a");
  EXPECT_EQ(b->owner, "replica-a");
  EXPECT_GT(b->expiry, absl::Now());
  EXPECT_LE(b->expiry, absl::Now() + absl::Milliseconds(400));

  // The holder renews; releasing someone else's claim changes nothing.
  EXPECT_TRUE(store_
                  ->RenewSearch("problem", "job-a", "replica-a",
                                absl::Milliseconds(300))
                  .ok());
  EXPECT_TRUE(store_->ReleaseSearch("problem", "job-b").ok());
  b = store_->ClaimSearch("problem", "job-b", "replica-b", absl::Seconds(10));
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->owned);

  // A dead owner's claim lapses.
  absl::SleepFor(absl::Milliseconds(400));
  b = store_->ClaimSearch("problem", "job-b", "replica-b", absl::Seconds(10));
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->owned);
  absl::Status renew =
      store_->RenewSearch("problem", "job-a", "replica-a", absl::Seconds(1));
  EXPECT_TRUE(absl::IsFailedPrecondition(renew)) << renew;
  EXPECT_THAT(renew.message(), HasSubstr("job 'job-b' on replica 'replica-b'"));

  // Released by its holder: free at once.
  ASSERT_TRUE(store_->ReleaseSearch("problem", "job-b").ok());
  a = store_->ClaimSearch("problem", "job-a", "replica-a", absl::Seconds(1));
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->owned);
  EXPECT_TRUE(absl::IsInvalidArgument(
      store_->ClaimSearch("", "j", "o", absl::Seconds(1)).status()));
}

TEST_P(StoreContractTest, StatsCountCallsAndAnswers) {
  ASSERT_TRUE(store_->CreateJob(NewJob("job-1", "a")).ok());
  ASSERT_TRUE(store_->GetJob("job-1").ok());
  ASSERT_FALSE(store_->GetJob("job-x").ok());
  ASSERT_TRUE(store_->Ping().ok());
  const StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.backend, GetParam());
  EXPECT_TRUE(stats.healthy);
  ASSERT_TRUE(stats.ops.count("get_job"));
  const OpStats& get = stats.ops.at("get_job");
  EXPECT_GE(get.calls, 2u);
  EXPECT_EQ(get.errors, 0u);  // NOT_FOUND is an answer
  uint64_t bucketed = 0;
  for (uint64_t n : get.latency_buckets) bucketed += n;
  EXPECT_EQ(bucketed, get.calls);
  EXPECT_GT(get.latency_sum_s, 0);
  EXPECT_EQ(stats.ops.at("create_job").calls, 1u);
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreContractTest,
                         ::testing::Values("memory", "sqlite", "redis"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace mcmpart::store
