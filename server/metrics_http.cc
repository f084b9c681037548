#include "server/metrics_http.h"

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "prometheus/text_serializer.h"

namespace mcmpart::server {
namespace {

using Clock = std::chrono::steady_clock;

// A request is read up to its blank line or this many bytes.
constexpr size_t kMaxRequestBytes = 16384;
// How often the loop wakes up at the latest, to notice the stop flag.
constexpr auto kStopPoll = std::chrono::milliseconds(100);

std::string Response(absl::string_view status, absl::string_view type,
                     absl::string_view body) {
  return absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", type,
                      "\r\nContent-Length: ", body.size(),
                      "\r\nConnection: close\r\n\r\n", body);
}

// One non-blocking write attempt of a short answer, for connections the
// endpoint will not serve: whatever the socket takes, then the caller
// closes it.
void SendOnce(int fd, const std::string& data) {
  (void)!send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

// One client connection, from accept to close.
struct Connection {
  int fd = -1;
  Clock::time_point deadline;
  std::string request;
  // Set once the request is complete: the answer and how much is sent.
  bool answering = false;
  std::string answer;
  size_t sent = 0;
  // The socket failed (reset, or the client went away): closed at once.
  bool broken = false;
};

// Sleeps until a socket is ready, the nearest deadline, or the stop poll.
// Afterwards polled[0] is the listening socket and polled[i + 1] conns[i].
void WaitForEvents(int listen_fd, const std::vector<Connection>& conns,
                   std::vector<pollfd>& polled) {
  Clock::time_point wake = Clock::now() + kStopPoll;
  polled.assign(1, pollfd{listen_fd, POLLIN, 0});
  for (const Connection& c : conns) {
    polled.push_back(
        pollfd{c.fd, static_cast<short>(c.answering ? POLLOUT : POLLIN), 0});
    wake = std::min(wake, c.deadline);
  }
  const auto wait =
      std::chrono::ceil<std::chrono::milliseconds>(wake - Clock::now());
  poll(polled.data(), polled.size(),
       static_cast<int>(std::max<int64_t>(0, wait.count())));
}

// Reads what is there without waiting. True when the request is complete:
// at its blank line, at the size cap or when the client stops sending. A
// failed socket is marked broken.
bool ReadRequest(Connection& c) {
  char buf[4096];
  while (true) {
    const ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      c.request.append(buf, static_cast<size_t>(n));
      if (c.request.size() >= kMaxRequestBytes ||
          c.request.find("\r\n\r\n") != std::string::npos) {
        return true;
      }
      continue;
    }
    if (n == 0) return true;  // half-closed: answer what came
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c.broken = true;
    return false;
  }
}

// Sends as much of the answer as the socket takes without waiting. A
// failed socket is marked broken.
void SendAnswer(Connection& c) {
  while (c.sent < c.answer.size()) {
    const ssize_t n =
        send(c.fd, c.answer.data() + c.sent, c.answer.size() - c.sent,
             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c.broken = true;
    break;
  }
}

// Closes the connections that are done (answered or broken) and those past
// their deadline; one still sending its request gets `timeout` first. Each
// deadline is counted in `timed_out` before the client can see the 408.
void CloseFinished(std::vector<Connection>& conns, Clock::time_point now,
                   const std::string& timeout,
                   std::atomic<int64_t>& timed_out) {
  for (size_t i = 0; i < conns.size();) {
    Connection& c = conns[i];
    const bool done = c.broken || (c.answering && c.sent == c.answer.size());
    if (done || c.deadline <= now) {
      if (!done) {
        ++timed_out;
        if (!c.answering) SendOnce(c.fd, timeout);
      }
      close(c.fd);
      conns[i] = std::move(conns.back());
      conns.pop_back();
      continue;
    }
    ++i;
  }
}

// Accepts every connection waiting: served while fewer than
// `max_connections` are held, else answered `busy` and closed, counted in
// `refused` before the client can see the 503.
void AcceptWaiting(int listen_fd, int max_connections, Clock::duration deadline,
                   const std::string& busy, std::vector<Connection>& conns,
                   std::atomic<int64_t>& refused) {
  while (true) {
    const int fd =
        accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
      if (errno == EINTR) continue;
      break;  // EAGAIN: none left; other errors: retried next round
    }
    if (static_cast<int>(conns.size()) >= max_connections) {
      ++refused;
      SendOnce(fd, busy);
      close(fd);
      continue;
    }
    Connection c;
    c.fd = fd;
    c.deadline = Clock::now() + deadline;
    conns.push_back(std::move(c));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& host, int port,
    std::shared_ptr<prometheus::Registry> registry,
    const MetricsOptions& options) {
  if (options.max_connections < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics: max_connections is ", options.max_connections,
                     "; must be at least 1"));
  }
  if (options.deadline <= absl::ZeroDuration() ||
      options.deadline == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics: the connection deadline is ",
                     absl::FormatDuration(options.deadline),
                     "; must be positive and finite"));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(),
                                 service.c_str(), &hints, &found);
      rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics host '", host, "' does not resolve: ", gai_strerror(rc)));
  }
  int fd = -1;
  std::string error = "no address";
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 64) == 0) break;
    error = std::strerror(errno);
    close(fd);
    fd = -1;
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", host, ":", port, ": ", error));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  std::unique_ptr<MetricsEndpoint> e(new MetricsEndpoint());
  e->listen_fd_ = fd;
  e->port_ = ntohs(bound.ss_family == AF_INET6
                       ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  e->options_ = options;
  e->registry_ = std::move(registry);
  e->thread_ = std::thread([p = e.get()] { p->Loop(); });
  return e;
}

MetricsEndpoint::~MetricsEndpoint() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
}

std::string MetricsEndpoint::Answer(const std::string& request) const {
  const std::string line = request.substr(0, request.find("\r\n"));
  if (absl::StartsWith(line, "GET /metrics ") ||
      absl::StartsWith(line, "GET /metrics?")) {
    return Response(
        "200 OK", "text/plain; version=0.0.4; charset=utf-8",
        prometheus::TextSerializer().Serialize(registry_->Collect()));
  }
  if (!absl::StartsWith(line, "GET ")) {
    return Response("405 Method Not Allowed", "text/plain; charset=utf-8",
                    "only GET\n");
  }
  return Response("404 Not Found", "text/plain; charset=utf-8",
                  "not found; metrics are at /metrics\n");
}

// Each round: wait for the sockets, serve the ready ones, close what is
// done or late, accept what is waiting.
void MetricsEndpoint::Loop() {
  const auto deadline = std::chrono::duration_cast<Clock::duration>(
      absl::ToChronoNanoseconds(options_.deadline));
  const std::string busy =
      Response("503 Service Unavailable", "text/plain; charset=utf-8",
               "too many metrics connections; retry later\n");
  const std::string timeout =
      Response("408 Request Timeout", "text/plain; charset=utf-8",
               "the request did not arrive in time\n");
  std::vector<Connection> conns;
  std::vector<pollfd> polled;
  while (!stop_) {
    WaitForEvents(listen_fd_, conns, polled);
    const Clock::time_point now = Clock::now();
    for (size_t i = 0; i < conns.size(); ++i) {
      Connection& c = conns[i];
      if (polled[i + 1].revents == 0) continue;
      if (!c.answering && !c.broken && ReadRequest(c)) {
        c.answering = true;
        c.answer = Answer(c.request);
        c.request.clear();
      }
      if (c.answering && !c.broken) SendAnswer(c);
    }
    CloseFinished(conns, now, timeout, timed_out_);
    open_ = static_cast<int>(conns.size());
    AcceptWaiting(listen_fd_, options_.max_connections, deadline, busy, conns,
                  refused_);
    open_ = static_cast<int>(conns.size());
  }
  for (const Connection& c : conns) close(c.fd);
}

}  // namespace mcmpart::server
