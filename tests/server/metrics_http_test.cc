// The /metrics endpoint under hostile clients: a client trickling its
// request, clients that never read, more connections than the cap. Against
// the real mcmpart-server binary where the flags matter, and the
// MetricsEndpoint class on an ephemeral loopback port otherwise.
#include "server/metrics_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "tests/common/net_util.h"

namespace mcmpart::server {
namespace {

using ::mcmpart::testing::CanConnect;
using ::mcmpart::testing::FreePort;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A raw TCP client on the loopback port.
class Client {
 public:
  explicit Client(int port, int receive_buffer = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (receive_buffer > 0) {
      setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer,
                 sizeof(receive_buffer));
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ =
        connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return connected_; }
  void CloseWrite() { shutdown(fd_, SHUT_WR); }
  // False once the server has closed or reset the connection.
  bool Send(const std::string& data) {
    return send(fd_, data.data(), data.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(data.size());
  }
  // Reads until the server closes the connection or `timeout` passes;
  // *closed says which.
  std::string ReadUntilClosed(absl::Duration timeout, bool* closed) {
    std::string out;
    const absl::Time until = absl::Now() + timeout;
    *closed = false;
    char buf[4096];
    while (absl::Now() < until) {
      pollfd p{fd_, POLLIN, 0};
      const int ms =
          static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()) + 1);
      if (poll(&p, 1, ms) <= 0) continue;
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) {
        *closed = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// One whole GET; the answer, or "" when none came within `timeout`.
std::string Get(int port, const std::string& path,
                absl::Duration timeout = absl::Seconds(5)) {
  Client c(port);
  if (!c.connected()) return "";
  if (!c.Send(
          absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: localhost\r\n\r\n"))) {
    return "";
  }
  bool closed = false;
  return c.ReadUntilClosed(timeout, &closed);
}

std::shared_ptr<prometheus::Registry> RegistryWithACounter() {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("mcmpart_test_scrapes_total")
      .Help("a counter for the endpoint tests")
      .Register(*registry)
      .Add({})
      .Increment(3);
  return registry;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// The real binary: the metrics endpoint listens where --host does, and a
// client sending one byte every 1.5 s neither delays another scrape nor
// outlives the 2 s connection deadline.
TEST(MetricsEndpointBinaryTest, SlowClientNeitherDelaysScrapesNorOutlives2s) {
  const int port = FreePort();
  const int metrics_port = FreePort();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const std::string port_flag = absl::StrCat("--port=", port);
    const std::string metrics_flag =
        absl::StrCat("--metrics-port=", metrics_port);
    // No policies: only the endpoint matters here, and Torch is slow to load.
    setenv("MCMPART_POLICY_DIR", "/nonexistent", 1);
    execl(MCMPART_SERVER_BINARY, MCMPART_SERVER_BINARY, "--host=127.0.0.1",
          port_flag.c_str(), metrics_flag.c_str(), "--workers=1",
          "--no-log-jobs", static_cast<char*>(nullptr));
    _exit(127);
  }
  ASSERT_TRUE(
      WaitFor([&] { return CanConnect(metrics_port); }, absl::Seconds(20)));

  // The slow client: one byte of a valid request every 1.5 s, until the
  // server closes the connection.
  absl::Time slow_connected;
  absl::Time slow_closed = absl::InfiniteFuture();
  std::string slow_answer;
  std::thread slow([&] {
    Client c(metrics_port);
    slow_connected = absl::Now();
    const std::string request = "GET /metrics HTTP/1.1\r\n\r\n";
    for (char ch : request) {
      if (!c.Send(std::string(1, ch))) break;
      bool closed = false;
      slow_answer += c.ReadUntilClosed(absl::Milliseconds(1500), &closed);
      if (closed) {
        slow_closed = absl::Now();
        break;
      }
    }
  });
  absl::SleepFor(absl::Milliseconds(300));  // the slow client's first byte

  const absl::Time start = absl::Now();
  const std::string answer = Get(metrics_port, "/metrics", absl::Seconds(1));
  const absl::Duration took = absl::Now() - start;
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(answer, HasSubstr("\nmcmpart_jobs_running "));
  EXPECT_LT(took, absl::Seconds(1));
  slow.join();
  const absl::Duration held = slow_closed - slow_connected;
  EXPECT_GE(held, absl::Milliseconds(1900));
  EXPECT_LT(held, absl::Milliseconds(3000));
  EXPECT_THAT(slow_answer, StartsWith("HTTP/1.1 408 Request Timeout\r\n"));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  EXPECT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), 0);
}

TEST(MetricsEndpointTest, ConnectionsBeyondTheCapAreRefusedAtOnce) {
  MetricsOptions options;
  options.max_connections = 4;
  options.deadline = absl::Seconds(10);
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1", 0, RegistryWithACounter(), options);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();

  // Four silent clients hold every slot.
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<Client>(port));
    ASSERT_TRUE(held.back()->connected());
  }
  ASSERT_TRUE(WaitFor([&] { return (*endpoint)->open_connections() == 4; },
                      absl::Seconds(5)));

  // The fifth is answered 503 and closed at once, not queued.
  absl::Time start = absl::Now();
  const std::string refused = Get(port, "/metrics", absl::Seconds(5));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
  EXPECT_THAT(refused, StartsWith("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_EQ((*endpoint)->refused(), 1);

  // The held ones are still served, each at once.
  for (const std::unique_ptr<Client>& c : held) {
    start = absl::Now();
    ASSERT_TRUE(c->Send("GET /metrics HTTP/1.1\r\n\r\n"));
    bool closed = false;
    const std::string answer = c->ReadUntilClosed(absl::Seconds(5), &closed);
    EXPECT_TRUE(closed);
    EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
    EXPECT_THAT(answer, StartsWith("HTTP/1.1 200 OK\r\n"));
    EXPECT_THAT(answer, HasSubstr("\nmcmpart_test_scrapes_total 3\n"));
  }
  // With the slots free again, a new client is served.
  ASSERT_TRUE(WaitFor([&] { return (*endpoint)->open_connections() == 0; },
                      absl::Seconds(5)));
  EXPECT_THAT(Get(port, "/metrics"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_EQ((*endpoint)->refused(), 1);
  EXPECT_EQ((*endpoint)->timed_out(), 0);
}

// The deadline covers writing the answer: a client that asks and never
// reads (its window full) is closed at the deadline, and scrapes meanwhile
// are served.
TEST(MetricsEndpointTest, ClientThatNeverReadsIsClosedAtTheDeadline) {
  auto registry = std::make_shared<prometheus::Registry>();
  // An 8 MiB answer: more than the two sockets' buffers hold.
  prometheus::BuildCounter()
      .Name("mcmpart_test_big_total")
      .Help("a large label so that the answer outgrows the socket buffers")
      .Register(*registry)
      .Add({{"blob", std::string(8 << 20, 'x')}})
      .Increment();
  MetricsOptions options;
  options.deadline = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1", 0, registry, options);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();

  Client stalled(port, /*receive_buffer=*/4096);
  ASSERT_TRUE(stalled.Send("GET /metrics HTTP/1.1\r\n\r\n"));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return (*endpoint)->open_connections() == 1; },
                      absl::Seconds(1)));
  // Another client still gets the whole answer (it reads), well within the
  // deadline of its own.
  const std::string other = Get(port, "/metrics", absl::Seconds(5));
  EXPECT_THAT(other, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_GT(other.size(), size_t{8} << 20);
  ASSERT_TRUE(
      WaitFor([&] { return (*endpoint)->timed_out() == 1; }, absl::Seconds(3)));
  const absl::Duration held = absl::Now() - start;
  EXPECT_GE(held, absl::Milliseconds(900));
  EXPECT_LT(held, absl::Milliseconds(2000));
  EXPECT_EQ((*endpoint)->open_connections(), 0);
}

TEST(MetricsEndpointTest, OtherPathsAre404AndOtherMethods405) {
  absl::StatusOr<std::unique_ptr<MetricsEndpoint>> endpoint =
      MetricsEndpoint::Start("127.0.0.1", 0, RegistryWithACounter());
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  const int port = (*endpoint)->port();
  EXPECT_THAT(Get(port, "/metrics?x=1"), StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(Get(port, "/"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(Get(port, "/metricsx"), StartsWith("HTTP/1.1 404 Not Found\r\n"));
  Client post(port);
  ASSERT_TRUE(post.Send("POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"));
  bool closed = false;
  EXPECT_THAT(post.ReadUntilClosed(absl::Seconds(5), &closed),
              StartsWith("HTTP/1.1 405 Method Not Allowed\r\n"));
  // A request without its blank line, half-closed, is answered too.
  Client half(port);
  ASSERT_TRUE(half.Send("GET /metrics HTTP/1.0\r\n"));
  half.CloseWrite();
  EXPECT_THAT(half.ReadUntilClosed(absl::Seconds(5), &closed),
              StartsWith("HTTP/1.1 200 OK\r\n"));
}

TEST(MetricsEndpointTest, BadOptionsAreRefused) {
  MetricsOptions options;
  options.max_connections = 0;
  EXPECT_EQ(
      MetricsEndpoint::Start("127.0.0.1", 0, RegistryWithACounter(), options)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  options = MetricsOptions();
  options.deadline = absl::ZeroDuration();
  EXPECT_EQ(
      MetricsEndpoint::Start("127.0.0.1", 0, RegistryWithACounter(), options)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      MetricsEndpoint::Start("no-such-host.invalid", 0, RegistryWithACounter())
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mcmpart::server
