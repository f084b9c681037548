// The Redis backend beyond the shared contract: two store objects (two
// replicas) on one redis-server see each other's jobs, cache and claims and
// each other's changes within 100 ms; Redis going away gives UNAVAILABLE
// quickly, never a crash or a hang, and the store reconnects when it is
// back. Each test starts its own redis-server on a free loopback port.
#include "server/store/redis_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/store/test_util.h"

namespace mcmpart::store {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::NewJob;
using testing::Update;

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(redis_.Start()); }

  StoreOptions FastOptions() {
    StoreOptions options;
    options.redis_command_timeout = absl::Milliseconds(300);
    options.redis_connect_timeout = absl::Milliseconds(300);
    return options;
  }

  std::unique_ptr<StateStore> OpenReplica(StoreOptions options) {
    absl::StatusOr<std::unique_ptr<StateStore>> store =
        OpenStore(redis_.spec(), options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::unique_ptr<StateStore> OpenReplica() {
    return OpenReplica(FastOptions());
  }

  // A raw command, as another client would send it.
  std::string Raw(const std::string& command) {
    redisContext* c = redisConnect("127.0.0.1", redis_.port());
    std::string out;
    if (c != nullptr && !c->err) {
      auto* r = static_cast<redisReply*>(redisCommand(c, command.c_str()));
      if (r != nullptr) {
        if (r->str != nullptr) out.assign(r->str, r->len);
        if (r->type == REDIS_REPLY_INTEGER) out = absl::StrCat(r->integer);
        freeReplyObject(r);
      }
    }
    redisFree(c);
    return out;
  }

  testing::RedisServer redis_;
};

TEST_F(RedisStoreTest, TwoReplicasShareJobsCacheAndClaims) {
  std::unique_ptr<StateStore> a = OpenReplica();
  std::unique_ptr<StateStore> b = OpenReplica();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(a->CreateJob(NewJob("job-1", "replica-a")).ok());
  absl::StatusOr<JobRecord> seen = b->GetJob("job-1", RequestField::kInclude);
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->owner, "replica-a");
  EXPECT_EQ(seen->request.seed(), 42u);
  absl::StatusOr<std::vector<JobRecord>> listed = b->ListJobs({});
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);

  // B cannot write A's job; B cancels it and A sees the flag.
  EXPECT_TRUE(absl::IsFailedPrecondition(
      b->UpdateJob("job-1", "replica-b", JobProgress()).status()));
  ASSERT_TRUE(b->RequestCancel("job-1").ok());
  absl::StatusOr<LeaseInfo> lease =
      a->RenewLease("job-1", "replica-a", absl::Seconds(30));
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->cancel_requested);

  ASSERT_TRUE(a->CachePut("key", Update(500)).ok());
  absl::StatusOr<std::optional<CacheEntry>> cached = b->CacheGet("key");
  ASSERT_TRUE(cached.ok() && cached->has_value());
  EXPECT_EQ((*cached)->best.evaluation().throughput_per_s(), 500);
  absl::StatusOr<bool> stored = b->CachePut("key", Update(400));
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(*stored);

  absl::StatusOr<SearchClaim> claim =
      a->ClaimSearch("problem", "job-1", "replica-a", absl::Seconds(30));
  ASSERT_TRUE(claim.ok() && claim->owned);
  claim = b->ClaimSearch("problem", "job-2", "replica-b", absl::Seconds(30));
  ASSERT_TRUE(claim.ok());
  EXPECT_FALSE(claim->owned);
  EXPECT_EQ(claim->job_id, "job-1");
  EXPECT_EQ(claim->owner, "replica-a");
}

TEST_F(RedisStoreTest, AReplicaResumesTheJobsOfOneThatDied) {
  std::unique_ptr<StateStore> b = OpenReplica();
  {
    std::unique_ptr<StateStore> a = OpenReplica();
    ASSERT_TRUE(
        a->CreateJob(NewJob("job-1", "replica-a", absl::Milliseconds(200)))
            .ok());
    JobProgress p;
    p.state = v1::Job::RUNNING;
    p.best = Update(77);
    p.samples = 1000;
    p.elapsed_s = 1.5;
    ASSERT_TRUE(a->UpdateJob("job-1", "replica-a", p).ok());
  }  // replica A is gone and renews nothing
  absl::StatusOr<std::vector<JobRecord>> claimed =
      b->ClaimOrphans("replica-b", absl::Seconds(30), 10);
  ASSERT_TRUE(claimed.ok());
  EXPECT_THAT(*claimed, IsEmpty());  // the lease has not ended yet
  absl::SleepFor(absl::Milliseconds(300));
  claimed = b->ClaimOrphans("replica-b", absl::Seconds(30), 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  const JobRecord& job = (*claimed)[0];
  EXPECT_EQ(job.owner, "replica-b");
  EXPECT_EQ(job.progress.samples, 1000);  // the budget already used
  EXPECT_EQ(job.progress.elapsed_s, 1.5);
  EXPECT_EQ(job.progress.best->evaluation().throughput_per_s(), 77);
  EXPECT_EQ(job.request.budget().time_s(), 12.5);
}

TEST_F(RedisStoreTest, ReplicasClaimingAtOnceNeverShareAJob) {
  std::unique_ptr<StateStore> a = OpenReplica();
  std::unique_ptr<StateStore> b = OpenReplica();
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    ASSERT_TRUE(
        a->CreateJob(NewJob(absl::StrCat("job-", i), "dead", -absl::Seconds(1)))
            .ok());
  }
  std::vector<std::string> got_a, got_b;
  auto claim = [](StateStore* store, std::string owner,
                  std::vector<std::string>* got) {
    for (int round = 0; round < 30; ++round) {
      absl::StatusOr<std::vector<JobRecord>> jobs =
          store->ClaimOrphans(owner, absl::Minutes(5), 3);
      ASSERT_TRUE(jobs.ok()) << jobs.status();
      for (const JobRecord& j : *jobs) got->push_back(j.id);
    }
  };
  std::thread ta(claim, a.get(), "a", &got_a);
  std::thread tb(claim, b.get(), "b", &got_b);
  ta.join();
  tb.join();
  std::set<std::string> all(got_a.begin(), got_a.end());
  for (const std::string& id : got_b) {
    EXPECT_FALSE(all.count(id)) << id << " was claimed twice";
    all.insert(id);
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kJobs));
}

TEST_F(RedisStoreTest, ChangesOnOneReplicaReachTheOtherWithin100ms) {
  std::unique_ptr<StateStore> owner = OpenReplica();
  std::unique_ptr<StateStore> watcher = OpenReplica();
  ASSERT_TRUE(owner->CreateJob(NewJob("job-1", "a")).ok());

  // Owner's subscription: cancels from the other replica.
  absl::Mutex mu;
  std::vector<absl::Time> cancel_seen;
  uint64_t last_cancel_version = 0;
  std::unique_ptr<Subscription> sub =
      owner->Subscribe("job-1", [&](const JobRecord& job) {
        absl::MutexLock lock(&mu);
        if (job.cancel_requested && job.version != last_cancel_version) {
          last_cancel_version = job.version;
          cancel_seen.push_back(absl::Now());
        }
      });
  absl::SleepFor(absl::Milliseconds(100));  // subscriber connected

  // Watcher's WaitForChange: updates from the owner.
  absl::Duration worst_watch = absl::ZeroDuration();
  uint64_t version = 1;
  JobProgress p;
  p.state = v1::Job::RUNNING;
  for (int i = 0; i < 20; ++i) {
    std::atomic<int64_t> written_us{0};
    std::thread writer([&] {
      absl::SleepFor(absl::Milliseconds(20));
      written_us = absl::ToUnixMicros(absl::Now());
      p.best = Update(100 + i);
      ASSERT_TRUE(owner->UpdateJob("job-1", "a", p).ok());
    });
    absl::StatusOr<JobRecord> job =
        watcher->WaitForChange("job-1", version, absl::Seconds(5));
    const absl::Time woke = absl::Now();
    writer.join();
    ASSERT_TRUE(job.ok()) << job.status();
    ASSERT_GT(job->version, version);
    version = job->version;
    worst_watch =
        std::max(worst_watch, woke - absl::FromUnixMicros(written_us));
  }
  EXPECT_LT(worst_watch, absl::Milliseconds(100));

  const absl::Time cancel_at = absl::Now();
  ASSERT_TRUE(watcher->RequestCancel("job-1").ok());
  absl::Duration cancel_latency;
  {
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(
        absl::Condition(
            +[](std::vector<absl::Time>* v) { return !v->empty(); },
            &cancel_seen),
        absl::Seconds(5)));
    cancel_latency = cancel_seen[0] - cancel_at;
  }
  EXPECT_LT(cancel_latency, absl::Milliseconds(100));
  EXPECT_GT(owner->Stats().notifications, 0u);
  std::cout << "redis cross-replica: worst watch wake-up "
            << absl::FormatDuration(worst_watch) << " over 20 updates; cancel "
            << "reached the owner after "
            << absl::FormatDuration(cancel_latency) << "\n";
  sub.reset();
}

TEST_F(RedisStoreTest, RedisDownIsUnavailableAndTheStoreReconnects) {
  std::unique_ptr<StateStore> store = OpenReplica();
  ASSERT_TRUE(store->CreateJob(NewJob("job-1", "a")).ok());
  redis_.Kill();

  for (int i = 0; i < 3; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<JobRecord> job = store->GetJob("job-1");
    EXPECT_TRUE(absl::IsUnavailable(job.status())) << job.status();
    EXPECT_THAT(job.status().message(),
                HasSubstr(absl::StrCat("the state store at Redis 127.0.0.1:",
                                       redis_.port(), " is unreachable")));
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  }
  EXPECT_TRUE(absl::IsUnavailable(store->CreateJob(NewJob("job-2", "a"))));
  EXPECT_TRUE(absl::IsUnavailable(
      store->UpdateJob("job-1", "a", JobProgress()).status()));
  EXPECT_TRUE(absl::IsUnavailable(store->CacheGet("k").status()));
  EXPECT_TRUE(absl::IsUnavailable(
      store->ClaimOrphans("a", absl::Seconds(1), 1).status()));
  EXPECT_TRUE(absl::IsUnavailable(store->Ping()));
  const absl::Time start = absl::Now();
  EXPECT_TRUE(absl::IsUnavailable(
      store->WaitForChange("job-1", 1, absl::Seconds(10)).status()));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  StoreStats stats = store->Stats();
  EXPECT_FALSE(stats.healthy);
  EXPECT_TRUE(absl::IsUnavailable(stats.last_error));
  EXPECT_GT(stats.ops.at("get_job").unavailable, 0u);

  // Back (empty: it kept nothing): calls work again without a new store.
  ASSERT_TRUE(redis_.Restart());
  const absl::Time back = absl::Now();
  absl::Status ping;
  while ((ping = store->Ping()).ok() == false &&
         absl::Now() - back < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_TRUE(ping.ok()) << ping;
  std::cout << "redis reconnected " << absl::FormatDuration(absl::Now() - back)
            << " after it came back\n";
  EXPECT_TRUE(absl::IsNotFound(store->GetJob("job-1").status()));
  ASSERT_TRUE(store->CreateJob(NewJob("job-1", "a")).ok());
  stats = store->Stats();
  EXPECT_TRUE(stats.healthy);
  EXPECT_GE(stats.reconnects, 1u);
  EXPECT_EQ(Raw("GET mcmpart:schema"), "1");  // written again

  // Notifications flow again between replicas.
  std::unique_ptr<StateStore> other = OpenReplica();
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    ASSERT_TRUE(other->RequestCancel("job-1").ok());
  });
  absl::StatusOr<JobRecord> job =
      store->WaitForChange("job-1", 1, absl::Seconds(5));
  writer.join();
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE(job->cancel_requested);
}

TEST_F(RedisStoreTest, AStalledRedisCostsACallAtMostTheCommandTimeout) {
  std::unique_ptr<StateStore> store = OpenReplica();
  ASSERT_TRUE(store->CreateJob(NewJob("job-1", "a")).ok());
  redis_.Pause();
  const absl::Time start = absl::Now();
  absl::StatusOr<JobRecord> job = store->GetJob("job-1");
  const absl::Duration took = absl::Now() - start;
  redis_.Resume();
  EXPECT_TRUE(absl::IsUnavailable(job.status())) << job.status();
  EXPECT_THAT(job.status().message(), HasSubstr("no answer within 300ms"));
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_GE(took, absl::Milliseconds(250));
  // Answers again once Redis does.
  absl::Status ping;
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (!(ping = store->Ping()).ok() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(ping.ok()) << ping;
  EXPECT_TRUE(store->GetJob("job-1").ok());
}

TEST_F(RedisStoreTest, AnotherSchemaVersionIsRefused) {
  Raw("SET mcmpart:schema 99");
  absl::StatusOr<std::unique_ptr<StateStore>> store =
      OpenStore(redis_.spec(), FastOptions());
  EXPECT_EQ(store.status(),
            absl::FailedPreconditionError(absl::StrCat(
                "--store redis://127.0.0.1:", redis_.port(),
                "/0: the key mcmpart:schema holds schema version '99', this "
                "mcmpart-server reads version 1; use another database or "
                "StoreOptions::redis_key_prefix")));
}

TEST_F(RedisStoreTest, ADatabaseRedisDoesNotHaveIsRefused) {
  absl::StatusOr<std::unique_ptr<StateStore>> store =
      OpenStore(redis_.spec(99), FastOptions());
  EXPECT_TRUE(absl::IsInvalidArgument(store.status())) << store.status();
  EXPECT_THAT(store.status().message(),
              HasSubstr("refuses database 99: ERR DB index is out of range"));
}

TEST_F(RedisStoreTest, DatabasesAndPrefixesKeepDeploymentsApart) {
  std::unique_ptr<StateStore> a = OpenReplica();
  StoreOptions other_prefix = FastOptions();
  other_prefix.redis_key_prefix = "staging";
  std::unique_ptr<StateStore> b = OpenReplica(other_prefix);
  absl::StatusOr<std::unique_ptr<StateStore>> c =
      OpenStore(redis_.spec(1), FastOptions());
  ASSERT_TRUE(a && b && c.ok());
  ASSERT_TRUE(a->CreateJob(NewJob("job-1", "a")).ok());
  EXPECT_TRUE(absl::IsNotFound(b->GetJob("job-1").status()));
  EXPECT_TRUE(absl::IsNotFound((*c)->GetJob("job-1").status()));
  EXPECT_EQ(Raw("EXISTS mcmpart:job:job-1"), "1");
}

// Not a pass/fail figure: per-call latency over loopback on this machine,
// printed for docs/store.md.
TEST_F(RedisStoreTest, MeasuresPerCallLatency) {
  std::unique_ptr<StateStore> s = OpenReplica();
  constexpr int kJobs = 200;
  JobProgress running;
  running.state = v1::Job::RUNNING;
  running.best = Update(100);
  for (int i = 0; i < kJobs; ++i) {
    const std::string id = absl::StrCat("job-", i);
    ASSERT_TRUE(s->CreateJob(NewJob(id, "a")).ok());
    ASSERT_TRUE(s->UpdateJob(id, "a", running).ok());
    ASSERT_TRUE(s->GetJob(id).ok());
    ASSERT_TRUE(s->RenewLease(id, "a", absl::Seconds(30)).ok());
    ASSERT_TRUE(s->CachePut(id, Update(i)).ok());
    ASSERT_TRUE(s->CacheGet(id).ok());
  }
  ASSERT_TRUE(s->ListJobs({{}, 100}).ok());
  const StoreStats stats = s->Stats();
  for (const char* op : {"create_job", "update_job", "get_job", "renew_lease",
                         "cache_put", "cache_get", "list_jobs"}) {
    const OpStats& o = stats.ops.at(op);
    std::cout << "redis " << op << ": mean " << o.latency_sum_s / o.calls * 1e6
              << " us, max " << o.latency_max_s * 1e6 << " us over " << o.calls
              << " calls\n";
    EXPECT_LT(o.latency_sum_s / o.calls, 0.05) << op;
  }
}

}  // namespace
}  // namespace mcmpart::store
