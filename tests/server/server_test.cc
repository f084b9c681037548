// Integration tests: a real server on an ephemeral loopback port, called by
// a real gRPC client. Budgets are short so that the whole suite stays well
// under a minute on two cores.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "policy/policy.h"
#include "server/metrics_http.h"
#include "server/rl_strategy_factory.h"
#include "server/status.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/hardware.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "test_server.h"
#include "tests/common/net_util.h"

namespace mcmpart::server {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using testing::OnnxBytes;
using testing::ReadAll;
using testing::StackOptions;
using testing::TestStack;

v1::PartitionRequest Request(const std::string& model,
                             const std::string& preset,
                             const std::string& strategy, double seconds) {
  v1::PartitionRequest r;
  r.mutable_problem()->set_onnx_model(OnnxBytes(model));
  r.mutable_problem()->set_preset(preset);
  r.set_strategy(strategy);
  r.mutable_budget()->set_time_s(seconds);
  r.set_seed(7);
  return r;
}

// a -> b -> c with figures from the argument.
v1::Graph Chain(double param_bytes_b = 10) {
  v1::Graph g;
  g.set_name("chain");
  g.add_inputs("x");
  const char* names[] = {"a", "b", "c"};
  for (int i = 0; i < 3; ++i) {
    v1::Node* n = g.add_nodes();
    n->set_name(names[i]);
    n->set_op("MatMul");
    n->add_inputs(i == 0 ? "x" : names[i - 1]);
    n->set_flops(1e9);
    n->set_param_bytes(i == 1 ? param_bytes_b : 10);
    n->set_output_bytes(1000);
  }
  return g;
}

// Checks every update of a finished stream against the problem: all valid,
// strictly improving, the last final.
void ExpectValidImprovingStream(
    const v1::PartitionRequest& request,
    const std::vector<v1::PartitionUpdate>& updates) {
  ASSERT_GE(updates.size(), 2u);  // at least one improvement and the final
  absl::StatusOr<v1::Graph> proto = ImportOnnx(request.problem().onnx_model());
  ASSERT_TRUE(proto.ok());
  auto graph = std::make_shared<const Graph>(*Graph::FromProto(*proto));
  absl::StatusOr<v1::Hardware> hw = PresetHardware(request.problem().preset());
  ASSERT_TRUE(hw.ok());
  absl::StatusOr<Problem> problem = Problem::Create(graph, *hw);
  ASSERT_TRUE(problem.ok());
  Evaluator evaluator(*problem);
  double last = 0;
  for (size_t i = 0; i < updates.size(); ++i) {
    const v1::PartitionUpdate& u = updates[i];
    SCOPED_TRACE(absl::StrCat("update ", i));
    EXPECT_EQ(u.final(), i + 1 == updates.size());
    absl::StatusOr<Assignment> p = AssignmentFromProto(*problem, u.placement());
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(evaluator.IsValid(*p));
    EXPECT_TRUE(u.evaluation().valid());
    EXPECT_NEAR(evaluator.Score(*p).throughput_per_s,
                u.evaluation().throughput_per_s(),
                1e-9 * u.evaluation().throughput_per_s());
    EXPECT_EQ(u.strategy(), request.strategy());
    if (!u.final()) {
      EXPECT_GT(u.evaluation().throughput_per_s(), last);
      last = u.evaluation().throughput_per_s();
    } else {
      EXPECT_EQ(u.evaluation().throughput_per_s(), last);
    }
  }
}

TEST(ServerTest, PartitionStreamsStrictlyImprovingValidPlacements) {
  TestStack stack;
  const v1::PartitionRequest request =
      Request("resnet18", "ring4", "anneal", 1.0);
  grpc::ClientContext context;
  auto reader = stack.stub().Partition(&context, request);
  std::vector<v1::PartitionUpdate> updates;
  const grpc::Status status = ReadAll(*reader, &updates);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ExpectValidImprovingStream(request, updates);
  const v1::PartitionUpdate& last = updates.back();
  EXPECT_THAT(last.end_reason(), ::testing::AnyOf("budget", "converged"));
  EXPECT_GT(last.samples(), 0);
  EXPECT_GT(last.evaluation().quality(), 0);
  EXPECT_LE(last.evaluation().quality(), 1 + 1e-9);
  EXPECT_EQ(last.job_id(), "");
}

TEST(ServerTest, ResubmittingTheSameModelIsAnsweredFromTheCache) {
  TestStack stack;
  v1::PartitionRequest request =
      Request("squeezenet1_1", "ring4", "anneal", 0.3);
  {
    grpc::ClientContext context;
    std::vector<v1::PartitionUpdate> updates;
    ASSERT_TRUE(
        ReadAll(*stack.stub().Partition(&context, request), &updates).ok());
  }
  request.set_seed(99);  // the seed is not part of the problem's identity
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  std::vector<v1::PartitionUpdate> updates;
  ASSERT_TRUE(
      ReadAll(*stack.stub().Partition(&context, request), &updates).ok());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));
  // The job ended at once, so its final update is the whole answer.
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_TRUE(updates[0].from_cache());
  EXPECT_TRUE(updates[0].final());
  EXPECT_EQ(updates[0].end_reason(), "cached");
  EXPECT_TRUE(updates[0].evaluation().valid());
  EXPECT_GT(updates[0].placement().assignment_size(), 0);

  // keep_improving: the cached placement at once, then the search.
  request.set_keep_improving(true);
  grpc::ClientContext improving;
  auto reader = stack.stub().Partition(&improving, request);
  v1::PartitionUpdate u;
  ASSERT_TRUE(reader->Read(&u));
  EXPECT_TRUE(u.from_cache());
  EXPECT_FALSE(u.final());
  std::vector<v1::PartitionUpdate> rest;
  ASSERT_TRUE(ReadAll(*reader, &rest).ok());
  ASSERT_FALSE(rest.empty());
  EXPECT_TRUE(rest.back().final());
  EXPECT_GE(rest.back().evaluation().throughput_per_s(),
            u.evaluation().throughput_per_s());
}

// The proved optima of the real models on the presets: the default
// strategy, auto, answers each with the proof well within a second and
// spends nothing of the 10 s budget.
TEST(ServerTest, AutoAnswersTheRealModelsProvedOptimalInUnderASecond) {
  StackOptions options;
  options.default_strategy = "";  // the registry's own default: auto
  TestStack stack(options);
  struct Case {
    const char* graph;
    const char* preset;
    double optimum_per_s;  // docs/benchmarks.md, "Exact search"
  };
  for (const Case& c :
       std::vector<Case>{{"resnet50", "ring4", 15331.5},
                         {"resnet50", "ring8", 17116.4},
                         {"googlenet", "ring4", 43059.8},
                         {"googlenet", "ring8", 58629.3},
                         {"inception_v3", "ring8", 28807.7},
                         {"inception_v3", "ring16", 28807.7},
                         {"mobilenet_v2", "ring4", 51462.9},
                         {"regnet_y_400mf", "ring8", 76673.9},
                         {"bert_base", "ring8", 10229.6},
                         {"bert_base", "ring16", 21241.2},
                         {"resnext50_32x4d", "ring4", 15331.5},
                         {"mnasnet1_0", "ring4", 76441.4},
                         {"mobilenet_v3_large", "ring4", 65790.7},
                         {"efficientnet_b0", "ring4", 31326.2},
                         {"shufflenet_v2", "ring8", 120838.3}}) {
    SCOPED_TRACE(absl::StrCat(c.graph, "/", c.preset));
    const v1::PartitionRequest request = Request(c.graph, c.preset, "", 10);
    const absl::Time start = absl::Now();
    grpc::ClientContext context;
    std::vector<v1::PartitionUpdate> updates;
    ASSERT_TRUE(
        ReadAll(*stack.stub().Partition(&context, request), &updates).ok());
    EXPECT_LT(absl::Now() - start, absl::Seconds(1));
    ASSERT_FALSE(updates.empty());
    for (size_t i = 0; i < updates.size(); ++i) {
      EXPECT_TRUE(updates[i].evaluation().valid());
      EXPECT_EQ(updates[i].final(), i + 1 == updates.size());
      if (i > 0 && !updates[i].final()) {
        EXPECT_GT(updates[i].evaluation().throughput_per_s(),
                  updates[i - 1].evaluation().throughput_per_s());
      }
    }
    const v1::PartitionUpdate& last = updates.back();
    EXPECT_EQ(last.strategy(), "auto");
    EXPECT_EQ(last.end_reason(), "converged");
    EXPECT_LT(last.elapsed_s(), 1.0);
    const v1::Evaluation& e = last.evaluation();
    EXPECT_TRUE(e.proved_optimal());
    EXPECT_EQ(e.gap(), 0);
    EXPECT_NEAR(e.bound_per_s() / e.throughput_per_s(), 1, 1e-9);
    EXPECT_NEAR(e.throughput_per_s(), c.optimum_per_s, 0.05);
  }

  // A proved optimum is final whatever the strategy: even annealing asked
  // to keep improving is answered from the cache at once.
  v1::PartitionRequest again = Request("googlenet", "ring4", "anneal", 5);
  again.set_keep_improving(true);
  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  std::vector<v1::PartitionUpdate> updates;
  ASSERT_TRUE(ReadAll(*stack.stub().Partition(&context, again), &updates).ok());
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(200));
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_TRUE(updates[0].from_cache());
  EXPECT_EQ(updates[0].end_reason(), "cached");
  EXPECT_TRUE(updates[0].evaluation().proved_optimal());
  EXPECT_NEAR(updates[0].evaluation().throughput_per_s(), 43059.8, 0.05);
}

// Time from the client's cancel (or deadline) to the worker being free.
absl::Duration WorkerFreedAfter(TestStack& stack, absl::Time since) {
  while (stack.jobs().running() > 0 && absl::Now() - since < absl::Seconds(5)) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return absl::Now() - since;
}

TEST(ServerTest, CancellingThePartitionCallStopsTheSearchWithin100ms) {
  TestStack stack;
  grpc::ClientContext context;
  auto reader = stack.stub().Partition(
      &context, Request("resnet50", "ring8", "anneal", 30));
  v1::PartitionUpdate first;
  ASSERT_TRUE(reader->Read(&first));
  ASSERT_EQ(stack.jobs().running(), 1);
  const absl::Time cancelled = absl::Now();
  context.TryCancel();
  const absl::Duration freed = WorkerFreedAfter(stack, cancelled);
  EXPECT_LT(freed, absl::Milliseconds(100));
  RecordProperty("cancel_to_free_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(freed)));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST(ServerTest, ClientDeadlineStopsTheSearchAndFreesTheWorker) {
  TestStack stack;
  grpc::ClientContext context;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(600);
  context.set_deadline(absl::ToChronoTime(deadline));
  auto reader = stack.stub().Partition(
      &context, Request("resnet50", "ring8", "anneal", 30));
  std::vector<v1::PartitionUpdate> updates;
  const grpc::Status status = ReadAll(*reader, &updates);
  const absl::Duration freed = WorkerFreedAfter(stack, deadline);
  EXPECT_LT(freed, absl::Milliseconds(100));
  // The search ends a little before the deadline so that its best arrives.
  ASSERT_TRUE(status.ok()) << status.error_code() << " "
                           << status.error_message();
  ASSERT_FALSE(updates.empty());
  EXPECT_TRUE(updates.back().final());
  EXPECT_EQ(updates.back().end_reason(), "deadline");
  EXPECT_TRUE(updates.back().evaluation().valid());
}

TEST(ServerTest, SpinningSearchIsStoppedByTheDeadlineWithin100ms) {
  TestStack stack;
  grpc::ClientContext context;
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  context.set_deadline(absl::ToChronoTime(deadline));
  v1::PartitionRequest request;
  *request.mutable_problem()->mutable_graph() = Chain();
  request.mutable_problem()->set_preset("ring4");
  request.set_strategy("spin");
  request.mutable_budget()->set_time_s(30);
  std::vector<v1::PartitionUpdate> updates;
  const grpc::Status status =
      ReadAll(*stack.stub().Partition(&context, request), &updates);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const absl::Duration freed = WorkerFreedAfter(stack, deadline);
  EXPECT_LT(freed, absl::Milliseconds(100));
  const int64_t returned = stack.spin().returned_at_ns.load();
  ASSERT_GT(returned, 0);
  EXPECT_LT(absl::FromUnixNanos(returned) - deadline, absl::Milliseconds(100));
}

TEST(ServerTest, FullQueueIsRefusedWithResourceExhausted) {
  StackOptions options;
  options.jobs.workers = 1;
  options.jobs.max_queue = 1;
  TestStack stack(options);
  v1::SubmitJobRequest submit;
  *submit.mutable_request()->mutable_problem()->mutable_graph() = Chain();
  submit.mutable_request()->mutable_problem()->set_preset("ring4");
  submit.mutable_request()->set_strategy("spin");
  submit.mutable_request()->mutable_budget()->set_time_s(30);
  // Three different problems (parameter bytes): identical ones would join
  // the first search instead of queueing.
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    *submit.mutable_request()->mutable_problem()->mutable_graph() =
        Chain(/*param_bytes_b=*/10 + i);
    grpc::ClientContext context;
    v1::Job job;
    ASSERT_TRUE(stack.stub().SubmitJob(&context, submit, &job).ok());
    ids.push_back(job.id());
  }
  *submit.mutable_request()->mutable_problem()->mutable_graph() =
      Chain(/*param_bytes_b=*/12);
  grpc::ClientContext context;
  std::vector<v1::PartitionUpdate> updates;
  const grpc::Status status =
      ReadAll(*stack.stub().Partition(&context, submit.request()), &updates);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("server busy"));
  EXPECT_THAT(status.error_message(), HasSubstr("--max-queue 1"));
  for (const std::string& id : ids) {
    grpc::ClientContext c;
    v1::CancelJobRequest cancel;
    cancel.set_id(id);
    v1::Job job;
    ASSERT_TRUE(stack.stub().CancelJob(&c, cancel, &job).ok());
    EXPECT_EQ(job.state(), v1::Job::CANCELLED);
  }
}

TEST(ServerTest, JobsSurviveDisconnectsAndReattachingReplaysTheBest) {
  TestStack stack;
  v1::SubmitJobRequest submit;
  *submit.mutable_request() = Request("resnet18", "ring4", "anneal", 1.5);
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stack.stub().SubmitJob(&context, submit, &job).ok());
  }
  EXPECT_FALSE(job.id().empty());
  EXPECT_THAT(job.state(), ::testing::AnyOf(v1::Job::QUEUED, v1::Job::RUNNING));
  v1::WatchJobRequest watch;
  watch.set_id(job.id());
  double first_seen = 0;
  {
    // Watch, take one update, then drop the call as a crashed client would.
    grpc::ClientContext context;
    auto reader = stack.stub().WatchJob(&context, watch);
    v1::PartitionUpdate u;
    ASSERT_TRUE(reader->Read(&u));
    EXPECT_EQ(u.job_id(), job.id());
    first_seen = u.evaluation().throughput_per_s();
    context.TryCancel();
    reader->Finish();
  }
  absl::SleepFor(absl::Milliseconds(200));
  v1::Job current;
  {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_id(job.id());
    ASSERT_TRUE(stack.stub().GetJob(&context, get, &current).ok());
  }
  ASSERT_TRUE(current.has_best());
  EXPECT_GE(current.best().evaluation().throughput_per_s(), first_seen);
  // Re-attach: the first update is the best so far, then the rest.
  grpc::ClientContext context;
  std::vector<v1::PartitionUpdate> updates;
  const grpc::Status status =
      ReadAll(*stack.stub().WatchJob(&context, watch), &updates);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(updates.empty());
  EXPECT_GE(updates.front().evaluation().throughput_per_s(),
            current.best().evaluation().throughput_per_s());
  EXPECT_TRUE(updates.back().final());
  // After the end, watching replays the final update alone.
  grpc::ClientContext again;
  std::vector<v1::PartitionUpdate> replay;
  ASSERT_TRUE(ReadAll(*stack.stub().WatchJob(&again, watch), &replay).ok());
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
      replay[0], updates.back()));
  // ListJobs shows it.
  grpc::ClientContext list_context;
  v1::ListJobsResponse list;
  ASSERT_TRUE(
      stack.stub().ListJobs(&list_context, v1::ListJobsRequest(), &list).ok());
  ASSERT_EQ(list.jobs_size(), 1);
  EXPECT_EQ(list.jobs(0).id(), job.id());
  EXPECT_EQ(list.jobs(0).state(), v1::Job::SUCCEEDED);
}

grpc::Status PartitionStatus(TestStack& stack,
                             const v1::PartitionRequest& request) {
  grpc::ClientContext context;
  std::vector<v1::PartitionUpdate> updates;
  return ReadAll(*stack.stub().Partition(&context, request), &updates);
}

v1::PartitionRequest ChainRequest(const v1::Graph& graph) {
  v1::PartitionRequest r;
  *r.mutable_problem()->mutable_graph() = graph;
  r.mutable_problem()->set_preset("ring4");
  r.set_strategy("anneal");
  r.mutable_budget()->set_time_s(0.2);
  return r;
}

TEST(ServerTest, BadInputGetsExactStatusesAndMessages) {
  StackOptions options;
  options.engine.max_nodes = 1000;
  options.server.max_message_bytes = 256 << 10;
  TestStack stack(options);

  {  // Malformed graph: the message names the node.
    v1::Graph g = Chain();
    g.mutable_nodes(2)->set_inputs(0, "nowhere");
    const grpc::Status s = PartitionStatus(stack, ChainRequest(g));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(),
              "node 'c': input 'nowhere' is neither a node nor a graph input");
  }
  {  // Infeasible: one node's weights exceed every chip's SRAM.
    const grpc::Status s =
        PartitionStatus(stack, ChainRequest(Chain(/*param_bytes_b=*/1e9)));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("'b'"));
  }
  {  // use_all_chips with more chips than nodes: a well-formed request for
     // an instance without any valid placement.
    v1::PartitionRequest r = ChainRequest(Chain());
    r.mutable_problem()->mutable_constraints()->set_use_all_chips(true);
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(s.error_message(),
              "constraints.use_all_chips needs a node on each of the 4 chips, "
              "but the graph has only 3 nodes");
  }
  {  // Too many nodes.
    v1::Graph g;
    for (int i = 0; i < 1001; ++i) {
      v1::Node* n = g.add_nodes();
      n->set_name(absl::StrCat("n", i));
      if (i > 0) n->add_inputs(absl::StrCat("n", i - 1));
    }
    const grpc::Status s = PartitionStatus(stack, ChainRequest(g));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(),
              "the graph has 1001 nodes; this server accepts at most 1000 "
              "(--max-nodes)");
  }
  {  // Too many bytes: refused by the transport before any handler.
    v1::PartitionRequest r = ChainRequest(Chain());
    r.mutable_problem()->set_onnx_model(std::string(300 << 10, 'x'));
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(s.error_message(), HasSubstr("larger than max"));
  }
  {  // Unknown preset.
    v1::PartitionRequest r = ChainRequest(Chain());
    r.mutable_problem()->set_preset("ring5");
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("'ring5'"));
    EXPECT_THAT(s.error_message(), HasSubstr("ring4"));
  }
  {  // Unknown policy.
    v1::PartitionRequest r = ChainRequest(Chain());
    r.set_policy("no-such-policy");
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(),
                HasSubstr("unknown policy 'no-such-policy'"));
  }
  {  // Unknown strategy.
    v1::PartitionRequest r = ChainRequest(Chain());
    r.set_strategy("magic");
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("unknown strategy 'magic'"));
  }
  {  // No graph; negative budget; corrupt ONNX.
    v1::PartitionRequest r = ChainRequest(Chain());
    r.mutable_problem()->clear_graph();
    EXPECT_THAT(PartitionStatus(stack, r).error_message(),
                HasSubstr("the request has no graph"));
    r = ChainRequest(Chain());
    r.mutable_budget()->set_time_s(-1);
    EXPECT_EQ(PartitionStatus(stack, r).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    r.mutable_problem()->set_onnx_model("not an onnx model");
    r.mutable_budget()->set_time_s(1);
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("problem.onnx_model: "));
  }
  {  // Unknown job.
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_id("job-nope");
    v1::Job job;
    const grpc::Status s = stack.stub().GetJob(&context, get, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(),
              "no job 'job-nope' on this server: unknown, ended more than "
              "--job-retention ago or before the last --max-finished-jobs, or "
              "lost when the server restarted");
  }
  // The server is still fine.
  EXPECT_TRUE(PartitionStatus(stack, ChainRequest(Chain())).ok());
}

// A name or id a client sends is quoted in a status message only as a
// short prefix and its length: a megabyte echoed whole would overflow the
// metadata limit of every client with default settings. Huge byte counts
// print as a short figure, not 309 digits.
TEST(ServerTest, StatusMessagesQuoteHugeInputsShortly) {
  TestStack stack;
  const std::string huge(1 << 20, 'm');
  const std::string quoted =
      "'" + std::string(64, 'm') + "...' (1048576 bytes)";
  {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_id(huge);
    v1::Job job;
    const grpc::Status s = stack.stub().GetJob(&context, get, &job);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(),
              "no job " + quoted +
                  " on this server: unknown, ended more than --job-retention "
                  "ago or before the last --max-finished-jobs, or lost when "
                  "the server restarted");
  }
  {
    grpc::ClientContext context;
    v1::ListPoliciesResponse list;
    ASSERT_TRUE(stack.stub().ListPolicies(&context, {}, &list).ok());
    v1::PartitionRequest r = ChainRequest(Chain());
    r.set_strategy(huge);
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(), "unknown strategy " + quoted +
                                     "; this server runs " +
                                     absl::StrJoin(list.strategies(), ", "));
  }
  {
    v1::PartitionRequest r = ChainRequest(Chain());
    r.set_policy(huge);
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_EQ(s.error_message(),
              "unknown policy " + quoted + "; this server has no policies");
  }
  {
    v1::PartitionRequest r = ChainRequest(Chain());
    r.mutable_problem()->set_preset(huge);
    const grpc::Status s = PartitionStatus(stack, r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(),
                ::testing::StartsWith("unknown hardware preset " + quoted +
                                      "; presets are "));
    EXPECT_LT(s.error_message().size(), 1000u);
  }
  {
    const grpc::Status s =
        PartitionStatus(stack, ChainRequest(Chain(/*param_bytes_b=*/1e308)));
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_EQ(s.error_message(),
              "node 'b' needs 1e+308 bytes of SRAM for its parameters and "
              "output, but the largest chip has 96.00 MiB (100663296 bytes)");
  }
}

TEST(ServerTest, EvaluateAndRepairOverRpc) {
  TestStack stack;
  v1::EvaluateRequest request;
  *request.mutable_problem()->mutable_graph() = Chain();
  request.mutable_problem()->set_preset("ring4");
  auto& a = *request.mutable_placement()->mutable_assignment();
  a["a"] = 0;
  a["b"] = 1;
  a["c"] = 1;
  {
    grpc::ClientContext context;
    v1::Evaluation e;
    ASSERT_TRUE(stack.stub().Evaluate(&context, request, &e).ok());
    EXPECT_TRUE(e.valid());
    EXPECT_EQ(e.chips_used(), 2);
    EXPECT_GT(e.throughput_per_s(), 0);
  }
  {
    a["c"] = 0;  // c before b: data would flow backwards
    grpc::ClientContext context;
    v1::Evaluation e;
    ASSERT_TRUE(stack.stub().Evaluate(&context, request, &e).ok());
    EXPECT_FALSE(e.valid());
    ASSERT_GT(e.violations_size(), 0);
    EXPECT_EQ(e.violations(0).constraint(), "acyclic");
  }
  {
    a["zz"] = 0;
    grpc::ClientContext context;
    v1::Evaluation e;
    const grpc::Status s = stack.stub().Evaluate(&context, request, &e);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("placement: "));
    EXPECT_THAT(s.error_message(), HasSubstr("zz"));
  }
  v1::RepairRequest repair;
  *repair.mutable_problem() = request.problem();
  (*repair.mutable_candidate()->mutable_assignment())["a"] = 1;
  (*repair.mutable_candidate()->mutable_assignment())["b"] = 0;
  grpc::ClientContext context;
  v1::RepairReport report;
  const grpc::Status s = stack.stub().Repair(&context, repair, &report);
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    GTEST_SKIP() << "solver/repair.cc has not landed: " << s.error_message();
  }
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(report.evaluation().valid());
  EXPECT_EQ(report.assignment_size(), 3);
}

// The grpc_code the server recorded for the first ended call of `method`
// (from grpc_server_handled_total), "" while none has ended: the server
// side's own record of when and how its handler returned.
std::string HandledCode(TestStack& stack, absl::string_view method) {
  const std::string label = absl::StrCat("grpc_method=\"", method, "\"");
  constexpr absl::string_view kCode = "grpc_code=\"";
  for (absl::string_view line :
       absl::StrSplit(stack.telemetry().Render(), '\n')) {
    if (!absl::StartsWith(line, "grpc_server_handled_total{") ||
        !absl::StrContains(line, label)) {
      continue;
    }
    const size_t at = line.find(kCode);
    if (at == absl::string_view::npos) continue;
    line.remove_prefix(at + kCode.size());
    return std::string(line.substr(0, line.find('"')));
  }
  return "";
}

// A uniformly random candidate of bert_base (615 nodes) on ring16, which
// keeps a repair busy until its time limit.
v1::RepairRequest RandomBertRepair(double time_limit_s) {
  const std::string onnx = OnnxBytes("bert_base");
  absl::StatusOr<v1::Graph> graph = ImportOnnx(onnx);
  EXPECT_TRUE(graph.ok()) << graph.status();
  v1::RepairRequest request;
  request.mutable_problem()->set_onnx_model(onnx);
  request.mutable_problem()->set_preset("ring16");
  request.set_time_limit_s(time_limit_s);
  std::mt19937 rng(7);
  auto& candidate = *request.mutable_candidate()->mutable_assignment();
  const v1::Graph nodes = graph.value_or(v1::Graph());
  for (const v1::Node& node : nodes.nodes()) {
    candidate[node.name()] = static_cast<int>(rng() % 16);
  }
  return request;
}

// A uniformly random candidate of bert_base (615 nodes) on ring16 keeps the
// repair busy until its time limit (10 s here, measured without a cancel);
// cancelling the call must stop it at once instead.
TEST(ServerTest, CancellingTheRepairCallStopsTheRepairWithin500ms) {
  TestStack stack;
  const v1::RepairRequest request = RandomBertRepair(10);

  grpc::ClientContext context;
  absl::Time cancelled;
  std::string ended_before_cancel;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(300));
    ended_before_cancel = HandledCode(stack, "Repair");
    cancelled = absl::Now();
    context.TryCancel();
  });
  v1::RepairReport report;
  const grpc::Status status = stack.stub().Repair(&context, request, &report);
  canceller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED)
      << status.error_message();
  ASSERT_EQ(ended_before_cancel, "")
      << "the repair ended before the cancel; this test needs a slower one";

  std::string code;
  while ((code = HandledCode(stack, "Repair")).empty() &&
         absl::Now() - cancelled < absl::Seconds(15)) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  const absl::Duration ended = absl::Now() - cancelled;
  EXPECT_LT(ended, absl::Milliseconds(500));
  RecordProperty("cancel_to_repair_end_ms",
                 static_cast<int>(absl::ToInt64Milliseconds(ended)));
  // What the server's metrics (and so its dashboards) record for the call:
  // the stopped repair returned no placement to anyone.
  EXPECT_EQ(code, "Canceled");
  EXPECT_THAT(stack.telemetry().Render(),
              HasSubstr("\nmcmpart_repair_failures_total 1\n"));
}

// Repair holds its handler thread and a core for up to its time limit,
// beside the workers' searches: only --max-repairs run at once, and the
// excess is refused at once rather than slowing everything down.
TEST(ServerTest, RepairsBeyondTheLimitAreRefusedWithResourceExhausted) {
  StackOptions options;
  options.engine.max_repairs = 2;
  TestStack stack(options);
  // A random candidate keeps each admitted repair busy for its whole limit,
  // long after the refused calls have returned.
  v1::RepairRequest request = RandomBertRepair(2);
  constexpr int kCalls = 8;
  std::vector<grpc::Status> statuses(kCalls);
  std::vector<v1::RepairReport> reports(kCalls);
  std::vector<std::thread> calls;
  for (int i = 0; i < kCalls; ++i) {
    calls.emplace_back([&, i] {
      grpc::ClientContext context;
      statuses[i] = stack.stub().Repair(&context, request, &reports[i]);
    });
  }
  for (std::thread& t : calls) t.join();
  int ok = 0, refused = 0;
  for (int i = 0; i < kCalls; ++i) {
    SCOPED_TRACE(absl::StrCat("call ", i));
    if (statuses[i].ok()) {
      ++ok;
      EXPECT_TRUE(reports[i].evaluation().valid());
    } else {
      ++refused;
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
      EXPECT_EQ(statuses[i].error_message(),
                "server busy: 2 repairs running, the limit (--max-repairs 2); "
                "retry later");
    }
  }
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(refused, kCalls - 2);
  const std::string metrics = stack.telemetry().Render();
  EXPECT_THAT(metrics, HasSubstr("\nmcmpart_repairs_rejected_total 6\n"));
  EXPECT_THAT(metrics, HasSubstr("\nmcmpart_repairs_total 2\n"));
  // The slots are free again.
  grpc::ClientContext context;
  v1::RepairReport report;
  request.set_time_limit_s(0.2);
  const grpc::Status again = stack.stub().Repair(&context, request, &report);
  EXPECT_NE(again.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << again.error_message();
}

TEST(ServerTest, ListPoliciesNamesTheStrategies) {
  TestStack stack;
  grpc::ClientContext context;
  v1::ListPoliciesResponse reply;
  ASSERT_TRUE(stack.stub()
                  .ListPolicies(&context, v1::ListPoliciesRequest(), &reply)
                  .ok());
  ASSERT_GT(reply.strategies_size(), 0);
  EXPECT_EQ(reply.strategies(0), "anneal");  // this stack's default
  EXPECT_THAT(reply.strategies(), ::testing::Contains("spin"));
}

HealthCheckResponse::ServingStatus Health(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  HealthCheckRequest request;
  request.set_service(service);
  HealthCheckResponse response;
  const grpc::Status s = stub->Check(&context, request, &response);
  return s.ok() ? response.status() : HealthCheckResponse::UNKNOWN;
}

TEST(ServerTest, ShutdownDrainsHealthFlipsAndRunningStreamsGetTheirBest) {
  TestStack stack;
  EXPECT_EQ(Health(stack.channel(), ""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(stack.channel(), "mcmpart.v1.Partitioner"),
            HealthCheckResponse::SERVING);
  grpc::ClientContext context;
  auto reader = stack.stub().Partition(
      &context, Request("resnet18", "ring4", "anneal", 30));
  v1::PartitionUpdate u;
  ASSERT_TRUE(reader->Read(&u));
  const absl::Time start = absl::Now();
  std::thread shutdown(
      [&] { stack.server().Shutdown(absl::Milliseconds(1500)); });
  // Health flips first, while the running search still has its grace.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Health(stack.channel(), "mcmpart.v1.Partitioner"),
            HealthCheckResponse::NOT_SERVING);
  {
    grpc::ClientContext c;
    std::vector<v1::PartitionUpdate> none;
    const grpc::Status s = ReadAll(
        *stack.stub().Partition(&c, Request("resnet18", "ring4", "anneal", 1)),
        &none);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  }
  std::vector<v1::PartitionUpdate> rest;
  const grpc::Status s = ReadAll(*reader, &rest);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(rest.empty());
  EXPECT_TRUE(rest.back().final());
  EXPECT_EQ(rest.back().end_reason(), "shutdown");
  EXPECT_TRUE(rest.back().evaluation().valid());
  shutdown.join();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(1500 + 300));
}

// A Partition still waiting for a worker when the drain begins has lost
// nothing but its place: it gets UNAVAILABLE, the answer that sends a
// client to another replica, not CANCELLED. So does a running search that
// the drain ends before it found any valid placement.
TEST(ServerTest, ShutdownAnswersQueuedAndUnplacedCallsUnavailable) {
  StackOptions options;
  options.jobs.workers = 1;
  TestStack stack(options);
  v1::PartitionRequest spin = ChainRequest(Chain());
  spin.set_strategy("spin");
  spin.mutable_budget()->set_time_s(30);
  grpc::ClientContext running_context, queued_context;
  auto running = stack.stub().Partition(&running_context, spin);
  while (stack.jobs().running() == 0) absl::SleepFor(absl::Milliseconds(1));
  // A different problem: the same one would join the running search.
  v1::PartitionRequest other = ChainRequest(Chain(/*param_bytes_b=*/11));
  other.set_strategy("spin");
  other.mutable_budget()->set_time_s(30);
  auto queued = stack.stub().Partition(&queued_context, other);
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (stack.jobs().queued() == 0 && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  ASSERT_EQ(stack.jobs().queued(), 1);
  std::thread shutdown(
      [&] { stack.server().Shutdown(absl::Milliseconds(1000)); });
  const std::string why =
      "the server is shutting down and stopped the search before any valid "
      "placement was found (0 samples); retry on another replica";
  std::vector<v1::PartitionUpdate> none;
  const grpc::Status q = ReadAll(*queued, &none);
  EXPECT_EQ(q.error_code(), grpc::StatusCode::UNAVAILABLE) << q.error_message();
  EXPECT_EQ(q.error_message(), why);
  EXPECT_TRUE(none.empty());
  const grpc::Status r = ReadAll(*running, &none);
  EXPECT_EQ(r.error_code(), grpc::StatusCode::UNAVAILABLE) << r.error_message();
  EXPECT_THAT(r.error_message(),
              ::testing::MatchesRegex("the server is shutting down and "
                                      "stopped the search before any valid "
                                      "placement was found \\([0-9]+ "
                                      "samples\\); retry on another replica"));
  EXPECT_TRUE(none.empty());
  shutdown.join();
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  const std::string req =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: localhost\r\n\r\n");
  (void)!write(fd, req.data(), req.size());
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, n);
  close(fd);
  return out;
}

TEST(ServerTest, MetricsEndpointServesGrpcAndDomainFamilies) {
  TestStack stack;
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> metrics =
      MetricsEndpoint::Start("127.0.0.1", 0, stack.telemetry().registry());
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  // One good call, one refused, one cache hit.
  v1::PartitionRequest request = ChainRequest(Chain());
  ASSERT_TRUE(PartitionStatus(stack, request).ok());
  ASSERT_TRUE(PartitionStatus(stack, request).ok());
  request.set_strategy("magic");
  ASSERT_FALSE(PartitionStatus(stack, request).ok());
  // A stream is counted as handled when it is done, which may be just after
  // its client has the status: scrape until the refused call shows.
  std::string text;
  const absl::Time until = absl::Now() + absl::Seconds(5);
  do {
    text = HttpGet((*metrics)->port(), "/metrics");
  } while (!absl::StrContains(text, "grpc_code=\"NotFound\"") &&
           absl::Now() < until);
  EXPECT_THAT(text, HasSubstr("200 OK"));
  for (const char* family :
       {"grpc_server_started_total{", "grpc_server_handling_seconds_bucket{",
        "mcmpart_jobs_running", "mcmpart_jobs_queued", "mcmpart_samples_total",
        "mcmpart_repairs_total", "mcmpart_repair_seconds",
        "mcmpart_repair_failures_total", "mcmpart_cache_hits_total 1",
        "mcmpart_placement_quality_bucket", "mcmpart_fine_tune_seconds",
        "mcmpart_jobs_rejected_total", "mcmpart_repairs_rejected_total"}) {
    EXPECT_THAT(text, HasSubstr(family));
  }
  EXPECT_THAT(text, HasSubstr("grpc_code=\"OK\""));
  EXPECT_THAT(text, HasSubstr("grpc_code=\"NotFound\""));
  EXPECT_THAT(text, HasSubstr("grpc_method=\"Partition\""));
  EXPECT_THAT(HttpGet((*metrics)->port(), "/other"), HasSubstr("404"));
  EXPECT_THAT(text, HasSubstr("grpc_type=\"server_stream\""));
}

// The learned strategy through the server: a freshly initialised policy
// saved as a checkpoint directory, loaded once by the factory, fine-tuned
// per request.
TEST(ServerRlTest, RlStrategyStreamsValidImprovingPlacements) {
  const std::string dir = ::testing::TempDir() + "/mcmpart_server_policies";
  {
    absl::StatusOr<std::unique_ptr<policy::Policy>> p =
        policy::Policy::Create(policy::PolicyConfig(), /*seed=*/1);
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_TRUE((*p)->Save(dir + "/default").ok());
  }
  absl::Duration fine_tuned;
  absl::StatusOr<std::unique_ptr<RlStrategyFactory>> rl =
      RlStrategyFactory::Load(dir, [&](absl::Duration d) { fine_tuned = d; });
  ASSERT_TRUE(rl.ok()) << rl.status();
  ASSERT_EQ((*rl)->Policies().size(), 1u);
  EXPECT_TRUE((*rl)->Policies()[0].is_default());

  StackOptions options;
  options.extra_factories.push_back(rl->get());
  options.default_strategy = "rl";
  TestStack stack(options);
  v1::PartitionRequest request = Request("squeezenet1_1", "ring4", "", 1.5);
  grpc::ClientContext context;
  std::vector<v1::PartitionUpdate> updates;
  const grpc::Status status =
      ReadAll(*stack.stub().Partition(&context, request), &updates);
  ASSERT_TRUE(status.ok()) << status.error_message();
  request.set_strategy("rl");  // the default, as the updates say
  ExpectValidImprovingStream(request, updates);
  EXPECT_GT(fine_tuned, absl::ZeroDuration());

  request.set_policy("nope");
  EXPECT_EQ(PartitionStatus(stack, request).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext list_context;
  v1::ListPoliciesResponse list;
  ASSERT_TRUE(stack.stub().ListPolicies(&list_context, {}, &list).ok());
  ASSERT_EQ(list.policies_size(), 1);
  EXPECT_EQ(list.policies(0).name(), "default");
  EXPECT_EQ(list.strategies(0), "rl");
}

// The real binary: SIGTERM drains and the process exits within its grace.
using ::mcmpart::testing::FreePort;

using ::mcmpart::testing::CanConnect;

TEST(ServerBinaryTest, SigtermDrainsAndExitsWithinTheGrace) {
  const int port = FreePort();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string port_flag = absl::StrCat("--port=", port);
    execl(MCMPART_SERVER_BINARY, MCMPART_SERVER_BINARY, "--host=127.0.0.1",
          port_flag.c_str(), "--metrics-port=0", "--shutdown-grace=2s",
          "--workers=1", "--no-log-jobs", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait for the port with plain connects: a gRPC channel that saw the
  // port closed backs off for seconds before it tries again.
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (!CanConnect(port) && absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  while (Health(channel, "") != HealthCheckResponse::SERVING &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(Health(channel, ""), HealthCheckResponse::SERVING);
  auto stub = v1::Partitioner::NewStub(channel);
  grpc::ClientContext context;
  auto reader =
      stub->Partition(&context, Request("resnet18", "ring4", "anneal", 30));
  v1::PartitionUpdate u;
  ASSERT_TRUE(reader->Read(&u));
  const absl::Time start = absl::Now();
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  std::vector<v1::PartitionUpdate> rest;
  const grpc::Status s = ReadAll(*reader, &rest);
  EXPECT_TRUE(s.ok()) << s.error_message();
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back().end_reason(), "shutdown");
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(2500));
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

}  // namespace
}  // namespace mcmpart::server
