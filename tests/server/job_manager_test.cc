// The job manager alone: no network, no solver. Work functions are small
// lambdas that publish made-up updates and honour the stop token.
#include "server/job_manager.h"

#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcmpart::server {
namespace {

using ::testing::HasSubstr;

v1::PartitionUpdate Update(double throughput, int64_t samples = 1) {
  v1::PartitionUpdate u;
  (*u.mutable_placement()->mutable_assignment())["a"] = 0;
  u.mutable_evaluation()->set_valid(true);
  u.mutable_evaluation()->set_throughput_per_s(throughput);
  u.set_samples(samples);
  return u;
}

// Runs until stopped (or `limit`), polling every millisecond like a
// strategy must.
JobWork SpinWork(absl::Duration limit = absl::Seconds(30),
                 double publish_first = 0) {
  return [=](JobContext& ctx) -> absl::StatusOr<WorkResult> {
    if (publish_first > 0) ctx.Publish(Update(publish_first));
    const absl::Time end = absl::Now() + limit;
    while (!ctx.stop().stop_requested() && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    return WorkResult{ctx.stop().stop_requested() ? "cancelled" : "budget", 7,
                      0.5};
  };
}

JobSpec Spec(JobWork work, std::string cache_key = "") {
  JobSpec s;
  s.work = std::move(work);
  s.strategy = "test";
  s.graph_name = "g";
  s.cache_key = std::move(cache_key);
  return s;
}

JobSnapshot WaitDone(Job& job, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time until = absl::Now() + timeout;
  JobSnapshot s = job.Snapshot();
  while (!s.done() && absl::Now() < until) {
    s = job.WaitForChange(s.version, until - absl::Now());
  }
  return s;
}

JobManagerOptions Options(int workers = 1, int max_queue = 4) {
  JobManagerOptions o;
  o.workers = workers;
  o.max_queue = max_queue;
  return o;
}

TEST(JobManagerTest, RunsWorkAndKeepsOnlyStrictImprovements) {
  JobManager jobs(Options(), nullptr);
  auto job =
      jobs.Submit(Spec([](JobContext& ctx) -> absl::StatusOr<WorkResult> {
        EXPECT_TRUE(ctx.Publish(Update(10)));
        EXPECT_FALSE(ctx.Publish(Update(10)));  // not strictly better
        EXPECT_FALSE(ctx.Publish(Update(5)));
        EXPECT_TRUE(ctx.Publish(Update(20, 3)));
        EXPECT_EQ(ctx.best_throughput(), 20);
        return WorkResult{"converged", 42, 1.5};
      }));
  ASSERT_TRUE(job.ok()) << job.status();
  const JobSnapshot s = WaitDone(**job);
  EXPECT_EQ(s.state, JobState::kSucceeded);
  EXPECT_TRUE(s.status.ok());
  EXPECT_EQ(s.end_reason, "converged");
  ASSERT_NE(s.final_update, nullptr);
  EXPECT_TRUE(s.final_update->final());
  EXPECT_EQ(s.final_update->evaluation().throughput_per_s(), 20);
  EXPECT_EQ(s.final_update->samples(), 42);
  EXPECT_EQ(s.final_update->end_reason(), "converged");
  EXPECT_EQ(s.final_update->job_id(), s.id);
  EXPECT_EQ(s.final_update->strategy(), "test");
}

TEST(JobManagerTest, FullQueueIsRefusedWithResourceExhausted) {
  JobManager jobs(Options(/*workers=*/1, /*max_queue=*/1), nullptr);
  auto a = jobs.Submit(Spec(SpinWork()));
  auto b = jobs.Submit(Spec(SpinWork()));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  auto c = jobs.Submit(Spec(SpinWork()));
  ASSERT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(c.status().message(), HasSubstr("server busy"));
  EXPECT_THAT(c.status().message(), HasSubstr("--max-queue 1"));
  jobs.Cancel(**a);
  jobs.Cancel(**b);
  EXPECT_EQ(WaitDone(**a).state, JobState::kCancelled);
  EXPECT_EQ(WaitDone(**b).state, JobState::kCancelled);
}

TEST(JobManagerTest, CancelStopsARunningJobWithItsBest) {
  JobManager jobs(Options(), nullptr);
  auto job = jobs.Submit(Spec(SpinWork(absl::Seconds(30), 12.5)));
  ASSERT_TRUE(job.ok());
  while ((*job)->Snapshot().best == nullptr)
    absl::SleepFor(absl::Milliseconds(1));
  const absl::Time t0 = absl::Now();
  auto cancelled = jobs.Cancel((*job)->id());
  ASSERT_TRUE(cancelled.ok());
  const JobSnapshot s = WaitDone(**job);
  EXPECT_LT(absl::Now() - t0, absl::Milliseconds(100));
  EXPECT_EQ(s.state, JobState::kSucceeded);
  EXPECT_EQ(s.end_reason, "cancelled");
  EXPECT_EQ(s.final_update->evaluation().throughput_per_s(), 12.5);
  EXPECT_TRUE(jobs.WaitIdle(absl::Now() + absl::Seconds(1)));
}

TEST(JobManagerTest, CancelQueuedJobEndsAtOnce) {
  JobManager jobs(Options(/*workers=*/1), nullptr);
  auto running = jobs.Submit(Spec(SpinWork()));
  ASSERT_TRUE(running.ok());
  while (jobs.running() == 0) absl::SleepFor(absl::Milliseconds(1));
  auto queued = jobs.Submit(Spec(SpinWork()));
  ASSERT_TRUE(queued.ok());
  jobs.Cancel(**queued);
  const JobSnapshot s = (*queued)->Snapshot();
  EXPECT_TRUE(s.done());
  EXPECT_EQ(s.state, JobState::kCancelled);
  EXPECT_EQ(s.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(jobs.queued(), 0);
  jobs.Cancel(**running);
}

TEST(JobManagerTest, DeadlineStopsTheWork) {
  ManualClock clock;
  JobManagerOptions o = Options();
  o.clock = &clock;
  JobManager jobs(o, nullptr);
  JobSpec spec = Spec(SpinWork(absl::Seconds(30), 3));
  spec.deadline = clock.Now() + absl::Milliseconds(100);
  auto job = jobs.Submit(std::move(spec));
  ASSERT_TRUE(job.ok());
  while ((*job)->Snapshot().best == nullptr) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_FALSE((*job)->Snapshot().done());
  clock.Advance(absl::Milliseconds(100));
  const JobSnapshot s = WaitDone(**job);
  EXPECT_LT(s.end_time - s.create_time, absl::Milliseconds(200));
  EXPECT_EQ(s.end_reason, "deadline");
  EXPECT_EQ(s.state, JobState::kSucceeded);
}

TEST(JobManagerTest, NoPlacementBeforeTheDeadlineFails) {
  JobManager jobs(Options(), nullptr);
  JobSpec spec = Spec(SpinWork());
  spec.deadline = absl::Now() + absl::Milliseconds(50);
  auto job = jobs.Submit(std::move(spec));
  ASSERT_TRUE(job.ok());
  const JobSnapshot s = WaitDone(**job);
  EXPECT_EQ(s.state, JobState::kFailed);
  EXPECT_EQ(s.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(s.status.message(), HasSubstr("before any valid placement"));
}

TEST(JobManagerTest, WorkErrorsAndExceptionsFailTheJobOnly) {
  JobManager jobs(Options(), nullptr);
  auto infeasible =
      jobs.Submit(Spec([](JobContext&) -> absl::StatusOr<WorkResult> {
        return absl::FailedPreconditionError("node 'x' needs 1 GiB");
      }));
  auto throws = jobs.Submit(Spec([](JobContext&) -> absl::StatusOr<WorkResult> {
    throw std::runtime_error("boom");
  }));
  ASSERT_TRUE(infeasible.ok() && throws.ok());
  JobSnapshot a = WaitDone(**infeasible);
  EXPECT_EQ(a.state, JobState::kFailed);
  EXPECT_EQ(a.status, absl::FailedPreconditionError("node 'x' needs 1 GiB"));
  JobSnapshot b = WaitDone(**throws);
  EXPECT_EQ(b.status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(b.status.message(), HasSubstr("boom"));
  // The workers survive.
  auto ok = jobs.Submit(Spec(SpinWork(absl::Milliseconds(5), 1)));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(WaitDone(**ok).state, JobState::kSucceeded);
}

TEST(JobManagerTest, CacheHitAnswersAtOnceWithoutAWorker) {
  JobManager jobs(Options(), nullptr);
  auto first = jobs.Submit(Spec(SpinWork(absl::Milliseconds(5), 50), "key"));
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(WaitDone(**first).state, JobState::kSucceeded);
  // Fill the only worker so that a job that needed it would wait.
  auto busy = jobs.Submit(Spec(SpinWork()));
  ASSERT_TRUE(busy.ok());
  std::atomic<bool> ran{false};
  JobSpec again = Spec(
      [&](JobContext&) -> absl::StatusOr<WorkResult> {
        ran = true;
        return WorkResult{};
      },
      "key");
  auto hit = jobs.Submit(std::move(again));
  ASSERT_TRUE(hit.ok());
  const JobSnapshot s = (*hit)->Snapshot();
  ASSERT_TRUE(s.done());
  EXPECT_EQ(s.end_reason, "cached");
  EXPECT_TRUE(s.final_update->from_cache());
  EXPECT_EQ(s.final_update->evaluation().throughput_per_s(), 50);
  EXPECT_FALSE(ran);
  jobs.Cancel(**busy);
}

TEST(JobManagerTest, CacheHitWithKeepImprovingPublishesOnlyBetter) {
  JobManager jobs(Options(), nullptr);
  auto first = jobs.Submit(Spec(SpinWork(absl::Milliseconds(5), 50), "key"));
  ASSERT_TRUE(first.ok());
  WaitDone(**first);
  absl::Notification checked;
  JobSpec again = Spec(
      [&](JobContext& ctx) -> absl::StatusOr<WorkResult> {
        checked.WaitForNotification();
        EXPECT_EQ(ctx.best_throughput(), 50);
        EXPECT_FALSE(ctx.Publish(Update(40)));
        EXPECT_TRUE(ctx.Publish(Update(60)));
        return WorkResult{"budget", 1, 0.1};
      },
      "key");
  again.keep_improving = true;
  auto job = jobs.Submit(std::move(again));
  ASSERT_TRUE(job.ok());
  EXPECT_TRUE((*job)->Snapshot().best->from_cache());  // sent at once
  checked.Notify();
  const JobSnapshot s = WaitDone(**job);
  EXPECT_FALSE(s.final_update->from_cache());
  EXPECT_EQ(s.final_update->evaluation().throughput_per_s(), 60);
  // The cache now holds the better one.
  auto third = jobs.Submit(Spec(SpinWork(), "key"));
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(WaitDone(**third).final_update->evaluation().throughput_per_s(),
            60);
}

TEST(JobManagerTest, PlainCallJobsAreNotListedAndEndedJobsExpire) {
  ManualClock clock;
  JobManagerOptions o = Options();
  o.clock = &clock;
  o.retention = absl::Minutes(5);
  JobManager jobs(o, nullptr);
  JobSpec plain = Spec(SpinWork(absl::Milliseconds(1), 1));
  plain.retained = false;
  auto p = jobs.Submit(std::move(plain));
  auto r = jobs.Submit(Spec(SpinWork(absl::Milliseconds(1), 1)));
  ASSERT_TRUE(p.ok() && r.ok());
  EXPECT_EQ(jobs.Find((*p)->id()).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(jobs.Find((*r)->id()).ok());
  EXPECT_EQ(jobs.List().size(), 1u);
  WaitDone(**r);
  EXPECT_EQ(WaitDone(**p).final_update->job_id(), "");
  // Kept until the retention has passed, then dropped by the janitor.
  clock.Advance(absl::Minutes(4));
  absl::SleepFor(o.janitor_period * 3);
  ASSERT_TRUE(jobs.Find((*r)->id()).ok());
  clock.Advance(absl::Minutes(1));
  const absl::Time until = absl::Now() + absl::Seconds(2);
  while (jobs.Find((*r)->id()).ok() && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(jobs.Find((*r)->id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(jobs.List().empty());
}

TEST(JobManagerTest, DrainRefusesNewWorkAndEndsRunningJobsWithTheirBest) {
  JobManager jobs(Options(/*workers=*/1), nullptr);
  auto running = jobs.Submit(Spec(SpinWork(absl::Seconds(30), 9)));
  auto queued = jobs.Submit(Spec(SpinWork()));
  ASSERT_TRUE(running.ok() && queued.ok());
  while ((*running)->Snapshot().best == nullptr) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  jobs.Drain(absl::Milliseconds(100));
  EXPECT_EQ(jobs.Submit(Spec(SpinWork())).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ((*queued)->Snapshot().end_reason, "shutdown");
  // Nothing was wrong with the queued job: the client should retry it on
  // another replica.
  EXPECT_EQ((*queued)->Snapshot().state, JobState::kCancelled);
  EXPECT_EQ((*queued)->Snapshot().status,
            absl::UnavailableError(
                "the server is shutting down and stopped the search before "
                "any valid placement was found (0 samples); retry on another "
                "replica"));
  ASSERT_TRUE(jobs.WaitIdle(absl::Now() + absl::Seconds(1)));
  const JobSnapshot s = (*running)->Snapshot();
  EXPECT_EQ(s.end_reason, "shutdown");
  EXPECT_EQ(s.state, JobState::kSucceeded);
  EXPECT_EQ(s.final_update->evaluation().throughput_per_s(), 9);
}

class CountingEvents : public JobEvents {
 public:
  void OnRejected() override { ++rejected; }
  void OnCacheHit() override { ++hits; }
  void OnStarted(const JobSnapshot&, absl::Duration) override { ++started; }
  void OnFinished(const JobSnapshot&, int64_t, double) override { ++finished; }
  std::atomic<int> rejected{0}, hits{0}, started{0}, finished{0};
};

TEST(JobManagerTest, ReportsEvents) {
  CountingEvents events;
  {
    JobManager jobs(Options(1, 0), &events);
    auto a = jobs.Submit(Spec(SpinWork(absl::Milliseconds(20), 1), "k"));
    ASSERT_TRUE(a.ok());
    EXPECT_EQ(jobs.Submit(Spec(SpinWork())).status().code(),
              absl::StatusCode::kResourceExhausted);
    WaitDone(**a);
    ASSERT_TRUE(jobs.WaitIdle(absl::Now() + absl::Seconds(1)));
    ASSERT_TRUE(jobs.Submit(Spec(SpinWork(), "k")).ok());
  }
  EXPECT_EQ(events.rejected, 1);
  EXPECT_EQ(events.hits, 1);
  EXPECT_EQ(events.started, 1);
  EXPECT_EQ(events.finished, 2);
}

}  // namespace
}  // namespace mcmpart::server
