// A real mcmpart-server process for tests: started on free loopback ports,
// waited for until healthy, killed at the end; with its memory figures and
// its /metrics text.
#ifndef MCMPART_TESTS_SERVER_SERVER_PROCESS_H_
#define MCMPART_TESTS_SERVER_SERVER_PROCESS_H_

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "tests/common/net_util.h"

namespace mcmpart::server::testing {

// grpc.health.v1 status of `service` ("" = the server), UNKNOWN when the
// call fails.
inline grpc::health::v1::HealthCheckResponse::ServingStatus HealthOf(
    const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status s = stub->Check(&context, request, &response);
  return s.ok() ? response.status()
                : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

class ServerProcess {
 public:
  // Starts MCMPART_SERVER_BINARY with `flags` after --host, --port,
  // --metrics-host, --metrics-port and --no-log-jobs; returns once health
  // says SERVING (started() tells whether it did within 20 s).
  explicit ServerProcess(const std::vector<std::string>& flags) {
    port_ = mcmpart::testing::FreePort();
    metrics_port_ = mcmpart::testing::FreePort();
    std::vector<std::string> args = {
        MCMPART_SERVER_BINARY,
        "--host=127.0.0.1",
        absl::StrCat("--port=", port_),
        "--metrics-host=127.0.0.1",
        absl::StrCat("--metrics-port=", metrics_port_),
        "--no-log-jobs"};
    args.insert(args.end(), flags.begin(), flags.end());
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    const absl::Time until = absl::Now() + absl::Seconds(20);
    // Plain connects first: a channel that saw the port closed backs off.
    while (!mcmpart::testing::CanConnect(port_) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    grpc::ChannelArguments channel_args;
    channel_args.SetMaxReceiveMessageSize(64 << 20);
    channel_ = grpc::CreateCustomChannel(
        address(), grpc::InsecureChannelCredentials(), channel_args);
    while (absl::Now() < until) {
      if (HealthOf(channel_, "") ==
          grpc::health::v1::HealthCheckResponse::SERVING) {
        started_ = true;
        break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool started() const { return started_; }
  pid_t pid() const { return pid_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  std::unique_ptr<v1::Partitioner::Stub> Stub() const {
    return v1::Partitioner::NewStub(channel_);
  }

  // From /proc/PID/status: "VmHWM" (peak) or "VmRSS" (now), in bytes.
  int64_t MemoryBytes(const std::string& field) const {
    std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(in, line)) {
      if (!absl::StartsWith(line, field + ":")) continue;
      std::vector<std::string> parts =
          absl::StrSplit(line, ' ', absl::SkipEmpty());
      int64_t kib = 0;
      if (parts.size() >= 2 && absl::SimpleAtoi(parts[1], &kib)) {
        return kib * 1024;
      }
    }
    return -1;
  }

  // The /metrics text ("" when it cannot be read).
  std::string Metrics() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(metrics_port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
      if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size())) {
        char buf[4096];
        ssize_t n;
        while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, n);
      }
    }
    close(fd);
    return out;
  }

  // The value of the metric line that starts with `series` (name and
  // labels as exposed, e.g. `mcmpart_streams_open`); -1 when absent.
  double Metric(const std::string& series) const {
    for (absl::string_view line : absl::StrSplit(Metrics(), '\n')) {
      if (!absl::StartsWith(line, series + " ")) continue;
      double v = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
  int metrics_port_ = 0;
  bool started_ = false;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace mcmpart::server::testing

#endif  // MCMPART_TESTS_SERVER_SERVER_PROCESS_H_
