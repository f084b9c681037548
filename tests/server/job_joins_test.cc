// In-flight joins in the job manager alone (no store, no network): one
// search per problem at a time, followers of a call job, and what a
// follower gets when the leader's caller goes away.
#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/job_manager.h"

namespace mcmpart::server {
namespace {

using ::testing::StartsWith;

v1::PartitionUpdate Update(double throughput, const std::string& chip_of_a) {
  v1::PartitionUpdate u;
  (*u.mutable_placement()->mutable_assignment())["a"] =
      chip_of_a == "1" ? 1 : 0;
  u.mutable_evaluation()->set_valid(true);
  u.mutable_evaluation()->set_throughput_per_s(throughput);
  u.set_samples(3);
  return u;
}

// Publishes `throughput` at once, then runs until stopped or `limit`;
// counts its runs in `runs`.
JobWork Work(std::atomic<int>* runs, double throughput, absl::Duration limit) {
  return [=](JobContext& ctx) -> absl::StatusOr<WorkResult> {
    ++*runs;
    ctx.Publish(Update(throughput, "0"));
    const absl::Time end = absl::Now() + limit;
    while (!ctx.stop().stop_requested() && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    return WorkResult{ctx.stop().stop_requested() ? "cancelled" : "budget", 7,
                      0.5};
  };
}

JobSpec Call(JobWork work, absl::Duration budget = absl::Seconds(30)) {
  JobSpec s;
  s.work = std::move(work);
  s.strategy = "test";
  s.cache_key = "problem/test/";
  s.time_budget = budget;
  s.retained = false;
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

JobManagerOptions Options() {
  JobManagerOptions o;
  o.workers = 2;
  o.max_queue = 4;
  o.join_searches = true;
  return o;
}

class Events : public JobEvents {
 public:
  void OnJoined() override { ++joined; }
  void OnStarted(const JobSnapshot&, absl::Duration) override { ++started; }
  std::atomic<int> joined{0}, started{0};
};

TEST(JobJoinsTest, TwoCallsForOneProblemRunOneSearch) {
  Events events;
  JobManager jobs(Options(), &events);
  std::atomic<int> runs{0};
  auto leader = jobs.Submit(Call(Work(&runs, 10, absl::Milliseconds(300))));
  auto follower = jobs.Submit(Call(Work(&runs, 99, absl::Milliseconds(300))));
  ASSERT_TRUE(leader.ok() && follower.ok());
  EXPECT_NE(leader->get(), follower->get());
  EXPECT_THAT((*leader)->id(), StartsWith("call-"));
  EXPECT_THAT((*follower)->id(), StartsWith("call-"));
  const JobSnapshot l = WaitDone(**leader);
  const JobSnapshot f = WaitDone(**follower);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(events.joined, 1);
  EXPECT_EQ(events.started, 1);
  EXPECT_EQ(l.end_reason, "budget");
  EXPECT_EQ(f.end_reason, "budget");
  EXPECT_EQ(f.state, JobState::kSucceeded);
  ASSERT_NE(f.final_update, nullptr);
  EXPECT_EQ(f.final_update->evaluation().throughput_per_s(), 10);
  EXPECT_EQ(f.final_update->job_id(), "");
  EXPECT_TRUE(f.final_update->final());
  EXPECT_TRUE(jobs.WaitIdle(absl::Now() + absl::Seconds(1)));
}

TEST(JobJoinsTest, ALeaderWhoseCallerLeavesRunsOnForItsFollower) {
  JobManager jobs(Options(), nullptr);
  std::atomic<int> runs{0};
  auto leader = jobs.Submit(Call(Work(&runs, 10, absl::Milliseconds(300))));
  auto follower = jobs.Submit(Call(Work(&runs, 99, absl::Seconds(30))));
  ASSERT_TRUE(leader.ok() && follower.ok());
  jobs.Release(**leader, StopCause::kCancelled);
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE((*leader)->Snapshot().done());
  const JobSnapshot l = WaitDone(**leader);
  const JobSnapshot f = WaitDone(**follower);
  EXPECT_EQ(l.end_reason, "budget");
  EXPECT_EQ(f.end_reason, "budget");
  EXPECT_EQ(f.final_update->evaluation().throughput_per_s(), 10);
  EXPECT_EQ(runs, 1);
}

TEST(JobJoinsTest, ALeaderWithoutFollowersIsCancelledWhenItsCallerLeaves) {
  JobManager jobs(Options(), nullptr);
  std::atomic<int> runs{0};
  auto leader = jobs.Submit(Call(Work(&runs, 10, absl::Seconds(30))));
  ASSERT_TRUE(leader.ok());
  while ((*leader)->Snapshot().best == nullptr) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  jobs.Release(**leader, StopCause::kCancelled);
  const JobSnapshot l = WaitDone(**leader, absl::Seconds(1));
  EXPECT_EQ(l.end_reason, "cancelled");
  EXPECT_EQ(l.state, JobState::kSucceeded);
}

// The leader's deadline ends it early; the follower, with a later one,
// continues from the leader's best with what is left of its own budget.
TEST(JobJoinsTest, AFollowerContinuesFromTheBestWhenItsLeaderStopsEarly) {
  Events events;
  JobManager jobs(Options(), &events);
  std::atomic<int> runs{0};
  JobSpec lead = Call(Work(&runs, 10, absl::Seconds(30)));
  lead.deadline = absl::Now() + absl::Milliseconds(200);
  auto leader = jobs.Submit(std::move(lead));
  ASSERT_TRUE(leader.ok());
  while ((*leader)->Snapshot().best == nullptr) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  absl::Mutex mu;
  std::string warm_chip;
  absl::Duration left;
  JobSpec follow = Call(Work(&runs, 99, absl::Seconds(30)), absl::Seconds(1));
  follow.restart = [&](const v1::Placement* warm, absl::Duration time_left,
                       int64_t samples_used) -> absl::StatusOr<JobWork> {
    absl::MutexLock lock(&mu);
    warm_chip =
        warm == nullptr ? "none" : std::to_string(warm->assignment().at("a"));
    left = time_left;
    EXPECT_EQ(samples_used, 3);
    return JobWork([&runs](JobContext& ctx) -> absl::StatusOr<WorkResult> {
      ++runs;
      EXPECT_EQ(ctx.best_throughput(), 10);  // the leader's, kept
      ctx.Publish(Update(20, "1"));
      return WorkResult{"budget", 11, 0.1};
    });
  };
  auto follower = jobs.Submit(std::move(follow));
  ASSERT_TRUE(follower.ok());
  const JobSnapshot l = WaitDone(**leader);
  const JobSnapshot f = WaitDone(**follower);
  EXPECT_EQ(l.end_reason, "deadline");
  EXPECT_EQ(l.final_update->evaluation().throughput_per_s(), 10);
  EXPECT_EQ(f.end_reason, "budget");
  EXPECT_EQ(f.state, JobState::kSucceeded);
  EXPECT_EQ(f.final_update->evaluation().throughput_per_s(), 20);
  EXPECT_EQ(f.final_update->placement().assignment().at("a"), 1);
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(events.started, 2);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(warm_chip, "0");
  EXPECT_GT(left, absl::Milliseconds(600));
  EXPECT_LE(left, absl::Seconds(1));
}

// A follower's own deadline ends it with the leader's best so far, and the
// leader, whose caller is still there, runs on.
TEST(JobJoinsTest, AFollowersOwnDeadlineStillApplies) {
  JobManager jobs(Options(), nullptr);
  std::atomic<int> runs{0};
  auto leader = jobs.Submit(Call(Work(&runs, 10, absl::Seconds(30))));
  ASSERT_TRUE(leader.ok());
  JobSpec follow = Call(Work(&runs, 99, absl::Seconds(30)));
  follow.deadline = absl::Now() + absl::Milliseconds(100);
  auto follower = jobs.Submit(std::move(follow));
  ASSERT_TRUE(follower.ok());
  const JobSnapshot f = WaitDone(**follower, absl::Seconds(2));
  EXPECT_EQ(f.end_reason, "deadline");
  EXPECT_EQ(f.state, JobState::kSucceeded);
  EXPECT_EQ(f.final_update->evaluation().throughput_per_s(), 10);
  EXPECT_FALSE((*leader)->Snapshot().done());
  jobs.Release(**leader, StopCause::kCancelled);
  EXPECT_EQ(WaitDone(**leader, absl::Seconds(1)).end_reason, "cancelled");
  EXPECT_EQ(runs, 1);
}

// Once every caller has gone, nobody holds the search: it stops.
TEST(JobJoinsTest, TheLastCallerLeavingCancelsTheSearch) {
  JobManager jobs(Options(), nullptr);
  std::atomic<int> runs{0};
  auto leader = jobs.Submit(Call(Work(&runs, 10, absl::Seconds(30))));
  auto follower = jobs.Submit(Call(Work(&runs, 10, absl::Seconds(30))));
  ASSERT_TRUE(leader.ok() && follower.ok());
  jobs.Release(**leader, StopCause::kCancelled);
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_FALSE((*leader)->Snapshot().done());
  jobs.Release(**follower, StopCause::kCancelled);
  const JobSnapshot f = WaitDone(**follower, absl::Seconds(1));
  const JobSnapshot l = WaitDone(**leader, absl::Seconds(1));
  EXPECT_EQ(f.end_reason, "cancelled");
  EXPECT_EQ(l.end_reason, "cancelled");
  EXPECT_TRUE(jobs.WaitIdle(absl::Now() + absl::Seconds(1)));
}

// A submitted job for a call's search follows it under an id of its own,
// is listed (the call job is not), and keeps the call's search alive.
TEST(JobJoinsTest, ASubmittedJobFollowsACallUnderItsOwnId) {
  JobManager jobs(Options(), nullptr);
  std::atomic<int> runs{0};
  auto leader = jobs.Submit(Call(Work(&runs, 10, absl::Milliseconds(300))));
  JobSpec submitted = Call(Work(&runs, 99, absl::Seconds(30)));
  submitted.retained = true;
  auto follower = jobs.Submit(std::move(submitted));
  ASSERT_TRUE(leader.ok() && follower.ok());
  EXPECT_THAT((*follower)->id(), StartsWith("job-"));
  ASSERT_TRUE(jobs.Find((*follower)->id()).ok());
  ASSERT_EQ(jobs.List().size(), 1u);
  EXPECT_EQ(jobs.List()[0].id, (*follower)->id());
  jobs.Release(**leader, StopCause::kCancelled);
  const JobSnapshot f = WaitDone(**follower);
  EXPECT_EQ(f.end_reason, "budget");
  EXPECT_EQ(f.final_update->job_id(), (*follower)->id());
  EXPECT_EQ(f.final_update->evaluation().throughput_per_s(), 10);
  EXPECT_EQ(runs, 1);
}

// Without join_searches every request searches (an embedder that wants
// each request run apart).
TEST(JobJoinsTest, WithoutJoinSearchesEveryRequestSearches) {
  JobManagerOptions o = Options();
  o.join_searches = false;
  JobManager jobs(o, nullptr);
  std::atomic<int> runs{0};
  auto first = jobs.Submit(Call(Work(&runs, 10, absl::Milliseconds(100))));
  auto second = jobs.Submit(Call(Work(&runs, 10, absl::Milliseconds(100))));
  ASSERT_TRUE(first.ok() && second.ok());
  WaitDone(**first);
  WaitDone(**second);
  EXPECT_EQ(runs, 2);
}

TEST(JobJoinsTest, TwoSubmittedJobsForOneProblemAreOneJob) {
  Events events;
  JobManager jobs(Options(), &events);
  std::atomic<int> runs{0};
  JobSpec a = Call(Work(&runs, 10, absl::Milliseconds(100)));
  a.retained = true;
  JobSpec b = Call(Work(&runs, 10, absl::Milliseconds(100)));
  b.retained = true;
  auto first = jobs.Submit(std::move(a));
  auto second = jobs.Submit(std::move(b));
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->get(), second->get());
  WaitDone(**first);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(events.joined, 1);
}

}  // namespace
}  // namespace mcmpart::server
