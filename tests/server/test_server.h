// A whole server stack in the test process (job manager, engine, gRPC
// server on an ephemeral loopback port) and a real gRPC client to it.
#ifndef MCMPART_TESTS_SERVER_TEST_SERVER_H_
#define MCMPART_TESTS_SERVER_TEST_SERVER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "server/engine.h"
#include "server/job_manager.h"
#include "server/log.h"
#include "server/server.h"
#include "server/strategy_factory.h"
#include "server/telemetry.h"
#include "solver/graph_io.h"
#include "solver/onnx_import.h"

namespace mcmpart::server::testing {

// "spin": finds nothing, polls its stop token every millisecond until it is
// set or the budget is used. Records when it returned, so that tests can
// measure how fast a cancel or deadline freed the worker.
class SpinStrategy : public Strategy {
 public:
  explicit SpinStrategy(std::atomic<int64_t>* returned_at_ns)
      : returned_at_ns_(returned_at_ns) {}
  absl::string_view name() const override { return "spin"; }
  absl::StatusOr<StrategyResult> Run(const Problem&, const Budget& budget,
                                     const StopToken& stop,
                                     const ImprovementCallback&) override {
    const absl::Time start = absl::Now();
    StrategyResult r;
    while (!stop.stop_requested() && absl::Now() - start < budget.time) {
      absl::SleepFor(absl::Milliseconds(1));
      ++r.samples;
    }
    r.reason =
        stop.stop_requested() ? EndReason::kCancelled : EndReason::kBudget;
    r.elapsed = absl::Now() - start;
    returned_at_ns_->store(absl::ToUnixNanos(absl::Now()));
    return r;
  }

 private:
  std::atomic<int64_t>* returned_at_ns_;
};

class SpinFactory : public StrategyFactory {
 public:
  std::vector<std::string> Names() const override { return {"spin"}; }
  absl::StatusOr<std::unique_ptr<Strategy>> Make(
      const StrategyRequest&) const override {
    return std::make_unique<SpinStrategy>(&returned_at_ns);
  }
  mutable std::atomic<int64_t> returned_at_ns{0};
};

struct StackOptions {
  JobManagerOptions jobs;
  EngineOptions engine;
  ServerOptions server;
  // Factories tried before the classical ones (e.g. rl), and the default.
  std::vector<const StrategyFactory*> extra_factories;
  std::string default_strategy = "anneal";
  StackOptions() {
    jobs.workers = 2;
    jobs.max_queue = 8;
    server.address = "127.0.0.1:0";
  }
};

class TestStack {
 public:
  explicit TestStack(StackOptions options = StackOptions())
      : telemetry_(/*log_jobs=*/false),
        registry_(Factories(options), options.default_strategy) {
    SetLogEnabled(false);
    jobs_ = std::make_unique<JobManager>(options.jobs, &telemetry_);
    engine_ = std::make_unique<Engine>(options.engine, &registry_, &telemetry_);
    auto server = PartitionServer::Start(options.server, engine_.get(),
                                         jobs_.get(), &telemetry_);
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return;
    server_ = *std::move(server);
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(
        address(), grpc::InsecureChannelCredentials(), args);
    stub_ = v1::Partitioner::NewStub(channel_);
  }
  ~TestStack() {
    if (server_) server_->Shutdown(absl::Seconds(1));
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(server_->port());
  }
  v1::Partitioner::Stub& stub() { return *stub_; }
  const std::shared_ptr<grpc::Channel>& channel() { return channel_; }
  JobManager& jobs() { return *jobs_; }
  PartitionServer& server() { return *server_; }
  Telemetry& telemetry() { return telemetry_; }
  SpinFactory& spin() { return spin_; }

 private:
  std::vector<const StrategyFactory*> Factories(const StackOptions& options) {
    std::vector<const StrategyFactory*> out = options.extra_factories;
    out.push_back(&classical_);
    out.push_back(&spin_);
    return out;
  }

  Telemetry telemetry_;
  ClassicalStrategyFactory classical_;
  SpinFactory spin_;
  StrategyRegistry registry_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<PartitionServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Partitioner::Stub> stub_;
};

inline std::string DataPath(const std::string& rel) {
  return std::string(MCMPART_TEST_DATA_DIR) + "/" + rel;
}

inline std::string OnnxBytes(const std::string& model) {
  absl::StatusOr<std::string> bytes =
      ReadFile(DataPath("graphs/" + model + ".onnx"));
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : "";
}

// Reads every update of a stream; returns the status.
inline grpc::Status ReadAll(
    grpc::ClientReaderInterface<v1::PartitionUpdate>& reader,
    std::vector<v1::PartitionUpdate>* updates) {
  v1::PartitionUpdate u;
  while (reader.Read(&u)) updates->push_back(u);
  return reader.Finish();
}

}  // namespace mcmpart::server::testing

#endif  // MCMPART_TESTS_SERVER_TEST_SERVER_H_
