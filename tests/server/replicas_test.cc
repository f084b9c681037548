// Replicas sharing a state store, against real processes: redis-server
// started by the test on a free loopback port and several mcmpart-server
// processes on it; and one server on a sqlite file killed and restarted.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "solver/graph_io.h"
#include "tests/server/server_process.h"
#include "tests/server/store/test_util.h"

namespace mcmpart::server::testing {
namespace {

using ::testing::HasSubstr;

v1::SubmitJobRequest Job(const std::string& strategy, double seconds) {
  absl::StatusOr<std::string> onnx =
      ReadFile(std::string(MCMPART_TEST_DATA_DIR) + "/graphs/resnet18.onnx");
  EXPECT_TRUE(onnx.ok());
  v1::SubmitJobRequest r;
  r.mutable_request()->mutable_problem()->set_onnx_model(onnx.ok() ? *onnx
                                                                   : "");
  r.mutable_request()->mutable_problem()->set_preset("ring4");
  r.mutable_request()->set_strategy(strategy);
  r.mutable_request()->mutable_budget()->set_time_s(seconds);
  r.mutable_request()->set_seed(3);
  return r;
}

std::string Submit(const ServerProcess& s, const v1::SubmitJobRequest& r) {
  grpc::ClientContext ctx;
  v1::Job job;
  const grpc::Status status = s.Stub()->SubmitJob(&ctx, r, &job);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return job.id();
}

grpc::Status Get(const ServerProcess& s, const std::string& id, v1::Job* job) {
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  v1::GetJobRequest r;
  r.set_id(id);
  return s.Stub()->GetJob(&ctx, r, job);
}

// Polls GetJob on `s` until `done` holds or `timeout`.
template <typename Pred>
v1::Job WaitFor(const ServerProcess& s, const std::string& id, Pred done,
                absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  v1::Job job;
  while (absl::Now() < until) {
    if (Get(s, id, &job).ok() && done(job)) return job;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return job;
}

std::vector<std::string> Replica(const std::string& store,
                                 const std::string& name) {
  return {"--workers=1", absl::StrCat("--store=", store),
          absl::StrCat("--replica-id=", name), "--lease-ttl=1s"};
}

TEST(ReplicasTest, AnyReplicaGetsWatchesAndCancelsAJobOfAnother) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ServerProcess c(Replica(redis.spec(), "c"));
  ASSERT_TRUE(a.started() && b.started() && c.started());
  const std::string id = Submit(a, Job("random", 30));
  ASSERT_FALSE(id.empty());

  // An id no replica knows: the store's answer, word for word.
  v1::Job unknown;
  const grpc::Status missing = Get(b, "job-none", &unknown);
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(missing.error_message(),
            "no job 'job-none': unknown to every replica, or ended more than "
            "--job-retention ago or before the last --max-finished-jobs");

  // Get and list on the others.
  v1::Job on_a, on_b;
  ASSERT_TRUE(Get(a, id, &on_a).ok());
  ASSERT_TRUE(Get(b, id, &on_b).ok());
  EXPECT_EQ(on_b.id(), id);
  EXPECT_EQ(on_b.graph_name(), on_a.graph_name());
  EXPECT_EQ(on_b.hardware_name(), "ring4");
  EXPECT_EQ(on_b.num_nodes(), 49);
  {
    grpc::ClientContext ctx;
    v1::ListJobsResponse list;
    ASSERT_TRUE(c.Stub()->ListJobs(&ctx, v1::ListJobsRequest(), &list).ok());
    ASSERT_EQ(list.jobs_size(), 1);
    EXPECT_EQ(list.jobs(0).id(), id);
  }

  // A watcher on b sees the improvements found on a.
  grpc::ClientContext watch;
  v1::WatchJobRequest wr;
  wr.set_id(id);
  auto reader = b.Stub()->WatchJob(&watch, wr);
  v1::PartitionUpdate u;
  ASSERT_TRUE(reader->Read(&u));
  EXPECT_GT(u.evaluation().throughput_per_s(), 0);
  EXPECT_EQ(u.job_id(), id);

  // Cancelled from c: the owner a stops, and b's watcher gets the end.
  const absl::Time cancel_at = absl::Now();
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest cr;
    cr.set_id(id);
    v1::Job job;
    ASSERT_TRUE(c.Stub()->CancelJob(&ctx, cr, &job).ok());
  }
  v1::PartitionUpdate last;
  while (reader->Read(&u)) last = u;
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(last.final());
  EXPECT_EQ(last.end_reason(), "cancelled");
  EXPECT_LT(absl::Now() - cancel_at, absl::Seconds(1));
  v1::Job ended;
  ASSERT_TRUE(Get(a, id, &ended).ok());
  EXPECT_EQ(ended.end_reason(), "cancelled");
}

TEST(ReplicasTest, TheResultCacheIsShared) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a.started() && b.started());
  const std::string first = Submit(a, Job("anneal", 1));
  const v1::Job done = WaitFor(
      a, first,
      [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(10));
  ASSERT_EQ(done.state(), v1::Job::SUCCEEDED);
  const std::string second = Submit(b, Job("anneal", 1));
  v1::Job cached;
  ASSERT_TRUE(Get(b, second, &cached).ok());
  EXPECT_EQ(cached.end_reason(), "cached");
  EXPECT_TRUE(cached.best().from_cache());
  EXPECT_EQ(cached.best().evaluation().throughput_per_s(),
            done.best().evaluation().throughput_per_s());
  EXPECT_EQ(b.Metric("mcmpart_shared_cache_hits_total"), 1);
}

// Two clients submitting the same problem at once, to two replicas: one
// search, one job.
TEST(ReplicasTest, TheSameProblemSubmittedTwiceIsSearchedOnce) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a.started() && b.started());
  std::string first, second;
  std::thread t1([&] { first = Submit(a, Job("random", 3)); });
  std::thread t2([&] { second = Submit(b, Job("random", 3)); });
  t1.join();
  t2.join();
  ASSERT_FALSE(first.empty());
  EXPECT_EQ(first, second);
  grpc::ClientContext ctx;
  v1::ListJobsResponse list;
  ASSERT_TRUE(a.Stub()->ListJobs(&ctx, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 1);
  EXPECT_EQ(a.Metric("mcmpart_inflight_joins_total") +
                b.Metric("mcmpart_inflight_joins_total"),
            1);
  // Once it has ended, the problem is searched again on request (or
  // answered from the cache).
  WaitFor(
      a, first, [](const v1::Job& j) { return j.state() != v1::Job::RUNNING; },
      absl::Seconds(10));
}

// A Partition call for a problem a submitted job is searching on another
// replica streams that job instead of searching again.
TEST(ReplicasTest, APartitionCallJoinsASubmittedSearchOfItsProblem) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a.started() && b.started());
  const std::string id = Submit(a, Job("random", 3));
  grpc::ClientContext ctx;
  auto reader = b.Stub()->Partition(&ctx, Job("random", 3).request());
  v1::PartitionUpdate u, last;
  int updates = 0;
  while (reader->Read(&u)) {
    last = u;
    ++updates;
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_GT(updates, 0);
  EXPECT_EQ(last.job_id(), id);
  EXPECT_TRUE(last.final());
  EXPECT_EQ(b.Metric("mcmpart_inflight_joins_total"), 1);
  grpc::ClientContext list_ctx;
  v1::ListJobsResponse list;
  ASSERT_TRUE(a.Stub()->ListJobs(&list_ctx, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 1);
}

// What one Partition call received.
struct Streamed {
  std::vector<v1::PartitionUpdate> updates;
  grpc::Status status;
  const v1::PartitionUpdate& last() const { return updates.back(); }
};

// Runs a Partition call to its end; `on_update` (may be empty) sees each
// update as it arrives.
Streamed Stream(const ServerProcess& s, grpc::ClientContext* ctx,
                const v1::PartitionRequest& r,
                const std::function<void(const v1::PartitionUpdate&)>&
                    on_update = nullptr) {
  Streamed out;
  auto reader = s.Stub()->Partition(ctx, r);
  v1::PartitionUpdate u;
  while (reader->Read(&u)) {
    out.updates.push_back(u);
    if (on_update) on_update(u);
  }
  out.status = reader->Finish();
  return out;
}

// Searches started on a worker, on one server: the count of its queue-wait
// histogram, one observation per search run.
double SearchesRun(const ServerProcess& s) {
  return s.Metric("mcmpart_queue_wait_seconds_count");
}

// The placement's evaluation by the server, to check what a call returned.
v1::Evaluation Evaluate(const ServerProcess& s, const v1::Placement& p) {
  v1::EvaluateRequest r;
  *r.mutable_problem() = Job("random", 1).request().problem();
  *r.mutable_placement() = p;
  grpc::ClientContext ctx;
  v1::Evaluation e;
  EXPECT_TRUE(s.Stub()->Evaluate(&ctx, r, &e).ok());
  return e;
}

void ExpectSameAnswer(const Streamed& x, const Streamed& y) {
  ASSERT_TRUE(x.status.ok()) << x.status.error_message();
  ASSERT_TRUE(y.status.ok()) << y.status.error_message();
  ASSERT_FALSE(x.updates.empty());
  ASSERT_FALSE(y.updates.empty());
  EXPECT_TRUE(x.last().final());
  EXPECT_TRUE(y.last().final());
  EXPECT_EQ(x.last().end_reason(), "budget");
  EXPECT_EQ(y.last().end_reason(), "budget");
  EXPECT_EQ(x.last().evaluation().throughput_per_s(),
            y.last().evaluation().throughput_per_s());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      x.last().placement(), y.last().placement()));
  // A plain call has no job to name.
  EXPECT_EQ(x.last().job_id(), "");
  EXPECT_EQ(y.last().job_id(), "");
}

// The gap the submitted jobs' joins left: two plain Partition calls for one
// problem at once, on two replicas, run one search.
TEST(ReplicasTest, TwoPartitionCallsAtOnceOnTwoReplicasAreSearchedOnce) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a.started() && b.started());
  const v1::PartitionRequest r = Job("random", 2).request();
  Streamed on_a, on_b;
  std::thread t1([&] {
    grpc::ClientContext ctx;
    on_a = Stream(a, &ctx, r);
  });
  std::thread t2([&] {
    grpc::ClientContext ctx;
    on_b = Stream(b, &ctx, r);
  });
  t1.join();
  t2.join();
  ExpectSameAnswer(on_a, on_b);
  EXPECT_EQ(SearchesRun(a) + SearchesRun(b), 1);
  EXPECT_EQ(a.Metric("mcmpart_inflight_joins_total") +
                b.Metric("mcmpart_inflight_joins_total"),
            1);
  // The leading call is in the store for its followers, not in listings.
  grpc::ClientContext ctx;
  v1::ListJobsResponse list;
  ASSERT_TRUE(a.Stub()->ListJobs(&ctx, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
}

TEST(ReplicasTest, TwoPartitionCallsAtOnceOnOneMemoryReplicaAreSearchedOnce) {
  // Two workers: without the join both calls would search at once.
  ServerProcess one({"--workers=2", "--store=memory"});
  ASSERT_TRUE(one.started());
  const v1::PartitionRequest r = Job("random", 2).request();
  Streamed first, second;
  std::thread t1([&] {
    grpc::ClientContext ctx;
    first = Stream(one, &ctx, r);
  });
  std::thread t2([&] {
    grpc::ClientContext ctx;
    second = Stream(one, &ctx, r);
  });
  t1.join();
  t2.join();
  ExpectSameAnswer(first, second);
  EXPECT_EQ(SearchesRun(one), 1);
  EXPECT_EQ(one.Metric("mcmpart_inflight_joins_total"), 1);
  EXPECT_EQ(one.Metric("mcmpart_jobs_finished_total{end_reason=\"budget\","
                       "state=\"succeeded\"}"),
            1);
}

// The leader's client cancels while a joiner waits: the joiner is not left
// with less than the leader had streamed. `leader_at` and `joiner_at` may
// be one server.
struct CancelledLeader {
  Streamed leader, joiner;
  double leader_last = 0;  // throughput of the leader's last update
};
CancelledLeader CancelTheLeaderWhileAJoinerWaits(const ServerProcess& leader_at,
                                                 const ServerProcess& joiner_at,
                                                 double budget_s) {
  const v1::PartitionRequest r = Job("random", budget_s).request();
  CancelledLeader out;
  grpc::ClientContext leader_ctx;
  absl::Notification leading;
  std::thread leader([&] {
    out.leader =
        Stream(leader_at, &leader_ctx, r, [&](const v1::PartitionUpdate&) {
          if (!leading.HasBeenNotified()) leading.Notify();
        });
  });
  leading.WaitForNotification();
  absl::Notification following;
  std::thread joiner([&] {
    grpc::ClientContext ctx;
    out.joiner = Stream(joiner_at, &ctx, r, [&](const v1::PartitionUpdate&) {
      if (!following.HasBeenNotified()) following.Notify();
    });
  });
  following.WaitForNotification();
  absl::SleepFor(absl::Milliseconds(500));
  leader_ctx.TryCancel();
  leader.join();
  joiner.join();
  if (!out.leader.updates.empty()) {
    out.leader_last = out.leader.last().evaluation().throughput_per_s();
  }
  return out;
}

TEST(ReplicasTest, ALeaderCancelledOnAnotherReplicaIsContinuedByItsJoiner) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a.started() && b.started());
  const CancelledLeader run = CancelTheLeaderWhileAJoinerWaits(a, b, 3);
  EXPECT_EQ(run.leader.status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_FALSE(run.leader.updates.empty());
  EXPECT_FALSE(run.leader.last().final());
  ASSERT_TRUE(run.joiner.status.ok()) << run.joiner.status.error_message();
  const v1::PartitionUpdate& end = run.joiner.last();
  EXPECT_TRUE(end.final());
  EXPECT_EQ(end.end_reason(), "budget");
  EXPECT_GE(end.evaluation().throughput_per_s(), run.leader_last);
  // No update of the joiner's ever went back below one it had sent.
  for (size_t i = 1; i < run.joiner.updates.size(); ++i) {
    EXPECT_GE(run.joiner.updates[i].evaluation().throughput_per_s(),
              run.joiner.updates[i - 1].evaluation().throughput_per_s());
  }
  const v1::Evaluation checked = Evaluate(b, end.placement());
  EXPECT_TRUE(checked.valid());
  EXPECT_EQ(checked.throughput_per_s(), end.evaluation().throughput_per_s());
  // a stopped its search when its only caller left; b, which had joined
  // it, searched on from its best: one search each, one join.
  EXPECT_EQ(a.Metric("mcmpart_jobs_finished_total{end_reason=\"cancelled\","
                     "state=\"succeeded\"}"),
            1);
  EXPECT_EQ(SearchesRun(a), 1);
  EXPECT_EQ(SearchesRun(b), 1);
  EXPECT_EQ(b.Metric("mcmpart_inflight_joins_total"), 1);
  EXPECT_EQ(b.Metric("mcmpart_jobs_finished_total{end_reason=\"budget\","
                     "state=\"succeeded\"}"),
            1);
}

TEST(ReplicasTest, ALeaderCancelledOnItsReplicaSearchesOnForItsJoiner) {
  ServerProcess one({"--workers=2", "--store=memory"});
  ASSERT_TRUE(one.started());
  const CancelledLeader run = CancelTheLeaderWhileAJoinerWaits(one, one, 2);
  EXPECT_EQ(run.leader.status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(run.joiner.status.ok()) << run.joiner.status.error_message();
  const v1::PartitionUpdate& end = run.joiner.last();
  EXPECT_TRUE(end.final());
  EXPECT_EQ(end.end_reason(), "budget");
  EXPECT_GE(end.evaluation().throughput_per_s(), run.leader_last);
  EXPECT_TRUE(Evaluate(one, end.placement()).valid());
  // Held by the joiner, the search was not cancelled: it ran its budget,
  // once.
  EXPECT_EQ(SearchesRun(one), 1);
  EXPECT_EQ(one.Metric("mcmpart_inflight_joins_total"), 1);
  EXPECT_EQ(one.Metric("mcmpart_jobs_finished_total{end_reason=\"cancelled\","
                       "state=\"succeeded\"}"),
            -1);
  EXPECT_EQ(one.Metric("mcmpart_jobs_finished_total{end_reason=\"budget\","
                       "state=\"succeeded\"}"),
            1);
}

TEST(ReplicasTest, AKilledOwnersJobFinishesOnAnotherReplica) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  auto a = std::make_unique<ServerProcess>(Replica(redis.spec(), "a"));
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a->started() && b.started());
  const std::string id = Submit(*a, Job("random", 4));
  const v1::Job before = WaitFor(
      b, id, [](const v1::Job& j) { return j.has_best(); }, absl::Seconds(5));
  ASSERT_TRUE(before.has_best());
  absl::SleepFor(absl::Milliseconds(500));
  v1::Job at_kill;
  ASSERT_TRUE(Get(b, id, &at_kill).ok());
  ASSERT_EQ(kill(a->pid(), SIGKILL), 0);
  a.reset();
  const v1::Job after = WaitFor(
      b, id, [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(15));
  ASSERT_EQ(after.state(), v1::Job::SUCCEEDED) << after.DebugString();
  EXPECT_GE(after.best().evaluation().throughput_per_s(),
            at_kill.best().evaluation().throughput_per_s());
  EXPECT_EQ(b.Metric("mcmpart_jobs_resumed_total"), 1);
  // The budget is the job's, not each replica's: 4 s in all, not 4 s more.
  EXPECT_LT(after.best().elapsed_s() + 0.0, 4.5);
}

// SIGTERM drains as without a store, but an unfinished job is handed back
// (not ended): another replica finishes it.
TEST(ReplicasTest, ADrainedReplicaHandsItsUnfinishedJobsBack) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  std::vector<std::string> flags = Replica(redis.spec(), "a");
  flags.push_back("--shutdown-grace=1s");  // the job outlasts the grace
  auto a = std::make_unique<ServerProcess>(flags);
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(a->started() && b.started());
  const std::string id = Submit(*a, Job("random", 4));
  WaitFor(
      b, id, [](const v1::Job& j) { return j.has_best(); }, absl::Seconds(5));
  ASSERT_EQ(kill(a->pid(), SIGTERM), 0);
  int status = 0;
  ASSERT_EQ(waitpid(a->pid(), &status, 0), a->pid());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  v1::Job handed;
  ASSERT_TRUE(Get(b, id, &handed).ok());
  EXPECT_NE(handed.state(), v1::Job::CANCELLED) << handed.DebugString();
  const v1::Job after = WaitFor(
      b, id, [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(15));
  EXPECT_EQ(after.state(), v1::Job::SUCCEEDED) << after.DebugString();
  EXPECT_EQ(b.Metric("mcmpart_jobs_resumed_total"), 1);
}

TEST(ReplicasTest, SqliteKeepsFinishedAndUnfinishedJobsAcrossKillMinus9) {
  store::testing::TempDir dir;
  const std::string spec = absl::StrCat("sqlite:", dir.File("state.db"));
  auto server = std::make_unique<ServerProcess>(Replica(spec, "one"));
  ASSERT_TRUE(server->started());
  const std::string finished = Submit(*server, Job("anneal", 0.5));
  const std::string unfinished = Submit(*server, Job("random", 4));
  WaitFor(
      *server, finished,
      [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(10));
  WaitFor(
      *server, unfinished, [](const v1::Job& j) { return j.has_best(); },
      absl::Seconds(10));
  ASSERT_EQ(kill(server->pid(), SIGKILL), 0);
  server.reset();

  ServerProcess restarted(Replica(spec, "one"));
  ASSERT_TRUE(restarted.started());
  v1::Job job;
  ASSERT_TRUE(Get(restarted, finished, &job).ok());
  EXPECT_EQ(job.state(), v1::Job::SUCCEEDED);
  const v1::Job resumed = WaitFor(
      restarted, unfinished,
      [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(15));
  EXPECT_EQ(resumed.state(), v1::Job::SUCCEEDED);
  EXPECT_EQ(restarted.Metric("mcmpart_jobs_resumed_total"), 1);
}

// With Redis down the server serves from memory and says so: health of
// "mcmpart.store" NOT_SERVING (its own and the service's stay SERVING),
// mcmpart_store_healthy 0; and it catches up when Redis returns.
TEST(ReplicasTest, WithRedisDownTheServerServesFromMemoryAndSaysSo) {
  store::testing::RedisServer redis;
  ASSERT_TRUE(redis.Start());
  ServerProcess a(Replica(redis.spec(), "a"));
  ASSERT_TRUE(a.started());
  EXPECT_EQ(HealthOf(a.channel(), "mcmpart.store"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  redis.Kill();
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (HealthOf(a.channel(), "mcmpart.store") !=
             grpc::health::v1::HealthCheckResponse::NOT_SERVING &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(HealthOf(a.channel(), "mcmpart.store"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(HealthOf(a.channel(), ""),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(HealthOf(a.channel(), "mcmpart.v1.Partitioner"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(a.Metric("mcmpart_store_healthy"), 0);
  // Still serving: a job submitted now runs, and is found here.
  const std::string id = Submit(a, Job("anneal", 0.5));
  ASSERT_FALSE(id.empty());
  const v1::Job done = WaitFor(
      a, id, [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(10));
  EXPECT_EQ(done.state(), v1::Job::SUCCEEDED);
  // Redis returns (empty: no persistence): the job is written again.
  ASSERT_TRUE(redis.Restart());
  const absl::Time back = absl::Now() + absl::Seconds(5);
  while (HealthOf(a.channel(), "mcmpart.store") !=
             grpc::health::v1::HealthCheckResponse::SERVING &&
         absl::Now() < back) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(HealthOf(a.channel(), "mcmpart.store"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  ServerProcess b(Replica(redis.spec(), "b"));
  ASSERT_TRUE(b.started());
  const v1::Job seen = WaitFor(
      b, id, [](const v1::Job& j) { return j.state() == v1::Job::SUCCEEDED; },
      absl::Seconds(5));
  EXPECT_EQ(seen.state(), v1::Job::SUCCEEDED);
}

// Runs the server binary to its exit; returns the exit code and stderr.
std::pair<int, std::string> RunToExit(const std::vector<std::string>& flags) {
  store::testing::TempDir dir;
  const std::string err = dir.File("stderr");
  const pid_t pid = fork();
  if (pid == 0) {
    const int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    std::vector<std::string> args = {MCMPART_SERVER_BINARY, "--port=0",
                                     "--metrics-port=0"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::ifstream in(err);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

TEST(ReplicasTest, ACorruptOrForeignStoreFileIsAClearStartUpError) {
  store::testing::TempDir dir;
  const std::string garbage = dir.File("garbage.db");
  std::ofstream(garbage) << std::string(8192, 'x');
  const auto [code, text] =
      RunToExit({absl::StrCat("--store=sqlite:", garbage)});
  EXPECT_EQ(code, 2);
  EXPECT_THAT(text, HasSubstr("mcmpart-server: --store: "));
  EXPECT_THAT(text, HasSubstr(garbage));
  const auto [bad_code, bad_text] = RunToExit({"--store=postgres://x"});
  EXPECT_EQ(bad_code, 2);
  EXPECT_THAT(bad_text, HasSubstr("mcmpart-server: --store: "));
}

}  // namespace
}  // namespace mcmpart::server::testing
