// The server under hostile load, against a real mcmpart-server process:
// idle streams hold no threads, streams per client are bounded, health
// tells the truth when the server is saturated, malformed bytes get
// INVALID_ARGUMENT, and oversized graphs are refused before they are
// parsed, within a memory bound.
#include <grpcpp/generic/generic_stub.h>

#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "solver/graph_io.h"
#include "tests/server/server_process.h"

namespace mcmpart::server::testing {
namespace {

using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;

std::string ModelBytes(const std::string& model) {
  absl::StatusOr<std::string> bytes = ReadFile(
      std::string(MCMPART_TEST_DATA_DIR) + "/graphs/" + model + ".onnx");
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : "";
}

// A job that keeps a worker busy for `seconds` while finding little.
v1::SubmitJobRequest LongJob(double seconds) {
  v1::SubmitJobRequest r;
  v1::PartitionRequest* p = r.mutable_request();
  p->mutable_problem()->set_onnx_model(ModelBytes("resnet18"));
  p->mutable_problem()->set_preset("ring4");
  p->set_strategy("random");
  p->mutable_budget()->set_time_s(seconds);
  return r;
}

std::string SubmitLongJob(const ServerProcess& server, double seconds) {
  grpc::ClientContext context;
  v1::Job job;
  const grpc::Status s =
      server.Stub()->SubmitJob(&context, LongJob(seconds), &job);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return job.id();
}

void CancelJob(const ServerProcess& server, const std::string& id) {
  grpc::ClientContext context;
  v1::CancelJobRequest request;
  request.set_id(id);
  v1::Job job;
  server.Stub()->CancelJob(&context, request, &job);
}

// One call with raw request bytes, whatever the method's message types.
grpc::Status RawCall(const std::shared_ptr<grpc::Channel>& channel,
                     const std::string& method, const std::string& bytes,
                     absl::Duration timeout = absl::Seconds(10)) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  grpc::CompletionQueue cq;
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  auto call = stub.PrepareUnaryCall(
      &context, absl::StrCat("/mcmpart.v1.Partitioner/", method), request, &cq);
  call->StartCall();
  grpc::ByteBuffer reply;
  grpc::Status status;
  call->Finish(&reply, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// Waits until `series` reads `value` on the server's /metrics.
bool MetricReaches(const ServerProcess& server, const std::string& series,
                   double value, absl::Duration timeout = absl::Seconds(5)) {
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    if (server.Metric(series) == value) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return server.Metric(series) == value;
}

struct Watcher {
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::PartitionUpdate>> reader;
};

std::unique_ptr<Watcher> Watch(v1::Partitioner::Stub& stub,
                               const std::string& id) {
  auto w = std::make_unique<Watcher>();
  v1::WatchJobRequest request;
  request.set_id(id);
  w->reader = stub.WatchJob(&w->context, request);
  return w;
}

// The sync server held a thread per stream: 300 idle watchers against
// --max-threads 256 made every other call fail with RESOURCE_EXHAUSTED.
// Here 300 watchers against 16 threads leave other calls answered at once.
TEST(HostileLoadTest, IdleWatchersHoldNoThreadsAndLockNobodyOut) {
  ServerProcess server({"--workers=1", "--max-threads=16"});
  ASSERT_TRUE(server.started());
  const std::string id = SubmitLongJob(server, 60);
  ASSERT_FALSE(id.empty());
  auto stub = server.Stub();
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < 300; ++i) watchers.push_back(Watch(*stub, id));
  ASSERT_TRUE(MetricReaches(server, "mcmpart_streams_open", 300));

  const absl::Time start = absl::Now();
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(start + absl::Seconds(1)));
  v1::ListPoliciesResponse policies;
  const grpc::Status s =
      stub->ListPolicies(&context, v1::ListPoliciesRequest(), &policies);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  grpc::ClientContext get_context;
  get_context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  v1::GetJobRequest get;
  get.set_id(id);
  v1::Job job;
  EXPECT_TRUE(stub->GetJob(&get_context, get, &job).ok());
  EXPECT_EQ(job.state(), v1::Job::RUNNING);
  EXPECT_EQ(HealthOf(server.channel(), "mcmpart.v1.Partitioner"),
            HealthCheckResponse::SERVING);

  for (auto& w : watchers) w->context.TryCancel();
  for (auto& w : watchers) {
    EXPECT_EQ(w->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(MetricReaches(server, "mcmpart_streams_open", 0));
  CancelJob(server, id);
}

TEST(HostileLoadTest, StreamsPerClientAreBounded) {
  ServerProcess server({"--workers=1", "--max-streams-per-client=4"});
  ASSERT_TRUE(server.started());
  const std::string id = SubmitLongJob(server, 60);
  auto stub = server.Stub();
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < 4; ++i) watchers.push_back(Watch(*stub, id));
  ASSERT_TRUE(MetricReaches(server, "mcmpart_streams_open", 4));

  std::unique_ptr<Watcher> fifth = Watch(*stub, id);
  v1::PartitionUpdate u;
  EXPECT_FALSE(fifth->reader->Read(&u));
  const grpc::Status refused = fifth->reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "this client has 4 streams open, the limit per client "
            "(--max-streams-per-client 4); close some first");
  EXPECT_EQ(
      server.Metric(
          "mcmpart_requests_refused_total{reason=\"streams_per_client\"}"),
      1);

  // A closed stream frees its slot.
  watchers[0]->context.TryCancel();
  watchers[0]->reader->Finish();
  ASSERT_TRUE(MetricReaches(server, "mcmpart_streams_open", 3));
  std::unique_ptr<Watcher> again = Watch(*stub, id);
  ASSERT_TRUE(MetricReaches(server, "mcmpart_streams_open", 4));
  for (auto& w : watchers) w->context.TryCancel();
  again->context.TryCancel();
  CancelJob(server, id);
}

TEST(HostileLoadTest, StreamsInAllAreBounded) {
  ServerProcess server({"--workers=1", "--max-streams=2"});
  ASSERT_TRUE(server.started());
  const std::string id = SubmitLongJob(server, 60);
  auto stub = server.Stub();
  std::vector<std::unique_ptr<Watcher>> watchers;
  for (int i = 0; i < 2; ++i) watchers.push_back(Watch(*stub, id));
  ASSERT_TRUE(MetricReaches(server, "mcmpart_streams_open", 2));
  std::unique_ptr<Watcher> third = Watch(*stub, id);
  v1::PartitionUpdate u;
  EXPECT_FALSE(third->reader->Read(&u));
  const grpc::Status refused = third->reader->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(refused.error_message(),
            "server busy: 2 streams open, the limit (--max-streams 2); retry "
            "later");
  EXPECT_EQ(server.Metric("mcmpart_requests_refused_total{reason=\"streams\"}"),
            1);
  for (auto& w : watchers) w->context.TryCancel();
  CancelJob(server, id);
}

// Readiness (the service name) says NOT_SERVING while new searches would be
// refused, so that load balancers send them elsewhere; liveness ("") stays
// SERVING so that a busy server is not restarted.
TEST(HostileLoadTest, HealthSaysNotServingWhileSaturated) {
  ServerProcess server({"--workers=1", "--max-queue=0"});
  ASSERT_TRUE(server.started());
  EXPECT_EQ(server.Metric("mcmpart_saturated"), 0);
  const std::string id = SubmitLongJob(server, 60);
  const absl::Time until = absl::Now() + absl::Seconds(2);
  while (HealthOf(server.channel(), "mcmpart.v1.Partitioner") !=
             HealthCheckResponse::NOT_SERVING &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(HealthOf(server.channel(), "mcmpart.v1.Partitioner"),
            HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(HealthOf(server.channel(), ""), HealthCheckResponse::SERVING);
  EXPECT_TRUE(MetricReaches(server, "mcmpart_saturated", 1));

  CancelJob(server, id);
  const absl::Time back = absl::Now() + absl::Seconds(2);
  while (HealthOf(server.channel(), "mcmpart.v1.Partitioner") !=
             HealthCheckResponse::SERVING &&
         absl::Now() < back) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(HealthOf(server.channel(), "mcmpart.v1.Partitioner"),
            HealthCheckResponse::SERVING);
  EXPECT_TRUE(MetricReaches(server, "mcmpart_saturated", 0));
}

struct MethodCase {
  const char* method;
  const char* message;
};

// gRPC's own deserializer answered INTERNAL with an empty message, before
// any handler and uncounted.
TEST(HostileLoadTest, MalformedBytesToEveryMethodAreInvalidArgument) {
  ServerProcess server({"--workers=1"});
  ASSERT_TRUE(server.started());
  const MethodCase methods[] = {
      {"Partition", "mcmpart.v1.PartitionRequest"},
      {"SubmitJob", "mcmpart.v1.SubmitJobRequest"},
      {"WatchJob", "mcmpart.v1.WatchJobRequest"},
      {"GetJob", "mcmpart.v1.GetJobRequest"},
      {"ListJobs", "mcmpart.v1.ListJobsRequest"},
      {"CancelJob", "mcmpart.v1.CancelJobRequest"},
      {"Evaluate", "mcmpart.v1.EvaluateRequest"},
      {"Repair", "mcmpart.v1.RepairRequest"},
      {"ListPolicies", "mcmpart.v1.ListPoliciesRequest"},
  };
  // Field 1, length-delimited, 127 bytes announced and 3 present.
  const std::string truncated("\x0a\x7f\x01\x02\x03", 5);
  // A tag varint longer than ten bytes.
  const std::string bad_varint(12, '\xff');
  for (const MethodCase& m : methods) {
    for (const std::string& bytes : {truncated, bad_varint}) {
      const grpc::Status s = RawCall(server.channel(), m.method, bytes);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << m.method;
      EXPECT_EQ(s.error_message(),
                absl::StrFormat("the request (%d bytes) could not be parsed as "
                                "%s: it is truncated, not protobuf, or has a "
                                "string field that is not UTF-8",
                                bytes.size(), m.message))
          << m.method;
    }
    EXPECT_EQ(server.Metric(absl::StrCat(
                  "mcmpart_requests_malformed_total{grpc_method=\"", m.method,
                  "\"}")),
              2)
        << m.method;
  }
  // A job id that is not UTF-8 (field 1 of GetJobRequest is a string).
  const grpc::Status utf8 =
      RawCall(server.channel(), "GetJob", std::string("\x0a\x02\xc3\x28", 4));
  EXPECT_EQ(utf8.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(utf8.error_message(), HasSubstr("could not be parsed"));

  // Random bytes: whatever they are, never INTERNAL or UNKNOWN; those that
  // do not parse as the method's message are INVALID_ARGUMENT.
  std::mt19937 rng(7);
  int invalid = 0;
  for (int i = 0; i < 90; ++i) {
    const MethodCase& m = methods[i % 9];
    std::string bytes(1 + rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    const grpc::Status s = RawCall(server.channel(), m.method, bytes);
    EXPECT_NE(s.error_code(), grpc::StatusCode::INTERNAL) << m.method;
    EXPECT_NE(s.error_code(), grpc::StatusCode::UNKNOWN) << m.method;
    if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT &&
        absl::StrContains(s.error_message(), "could not be parsed")) {
      ++invalid;
    }
  }
  EXPECT_GT(invalid, 45);
}

v1::PartitionRequest HugeChain(int nodes) {
  v1::PartitionRequest r;
  v1::Graph* g = r.mutable_problem()->mutable_graph();
  g->set_name("huge");
  for (int i = 0; i < nodes; ++i) {
    v1::Node* n = g->add_nodes();
    n->set_name(absl::StrCat("n", i));
    n->set_op("Relu");
    n->set_flops(1000);
    n->set_output_bytes(4096);
    if (i > 0) n->add_inputs(absl::StrCat("n", i - 1));
  }
  r.mutable_problem()->set_preset("ring4");
  r.set_strategy("anneal");
  return r;
}

// Eight concurrent 1M-node graphs were parsed whole before --max-nodes
// refused them: 263 MB each in flight, a 3.0 GB peak, 1.8 GB kept after.
TEST(HostileLoadTest, OversizedGraphsAreRefusedBeforeTheParseInBoundedMemory) {
  ServerProcess server({"--workers=1"});
  ASSERT_TRUE(server.started());
  const std::string bytes = HugeChain(1'000'000).SerializeAsString();
  ASSERT_GT(bytes.size(), 20u << 20);
  const int64_t before = server.MemoryBytes("VmRSS");
  std::vector<grpc::Status> statuses(8);
  std::vector<std::thread> clients;
  for (int i = 0; i < 8; ++i) {
    clients.emplace_back([&, i] {
      statuses[i] = RawCall(server.channel(), i % 2 ? "Partition" : "Evaluate",
                            bytes, absl::Seconds(60));
    });
  }
  for (std::thread& t : clients) t.join();
  for (const grpc::Status& s : statuses) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(),
              "the graph has 1000000 nodes; this server accepts at most "
              "100000 (--max-nodes)");
  }
  const int64_t peak = server.MemoryBytes("VmHWM");
  EXPECT_LT(peak, int64_t{1} << 30) << "peak RSS " << peak;
  EXPECT_EQ(server.Metric("mcmpart_requests_refused_total{reason=\"nodes\"}"),
            8);
  // The request buffers are given back to the system, not kept.
  absl::SleepFor(absl::Milliseconds(500));
  const int64_t after = server.MemoryBytes("VmRSS");
  std::cout << "8 x " << bytes.size() / (1 << 20) << " MiB graphs: RSS before "
            << before / (1 << 20) << " MiB, peak " << peak / (1 << 20)
            << " MiB, after " << after / (1 << 20) << " MiB\n";
  EXPECT_LT(after, before + (int64_t{128} << 20))
      << "RSS before " << before << ", after " << after << ", peak " << peak;
}

}  // namespace
}  // namespace mcmpart::server::testing
