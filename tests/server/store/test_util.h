// Helpers for the state store tests: a temporary directory, a real
// redis-server on a free loopback port, and records with every field set.
#ifndef MCMPART_TESTS_SERVER_STORE_TEST_UTIL_H_
#define MCMPART_TESTS_SERVER_STORE_TEST_UTIL_H_

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "server/store/store.h"
#include "tests/common/net_util.h"

namespace mcmpart::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with the object.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(base != nullptr && *base ? base : "/tmp", "/store-XXXXXX");
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }
  std::string File(absl::string_view name) const {
    return absl::StrCat(path_, "/", name);
  }

 private:
  std::string path_;
};

// A redis-server child process on 127.0.0.1, without persistence, killed
// with the object (and with the test process: PR_SET_PDEATHSIG).
class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer() { Kill(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts on a free port (a few tries, in case another test took it).
  bool Start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = mcmpart::testing::FreePort();
      if (StartOnPort()) return true;
    }
    return false;
  }
  // Starts again on the same port after Kill (Redis "coming back").
  bool Restart() { return StartOnPort(); }

  void Kill() {
    if (pid_ <= 0) return;
    Resume();
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // SIGSTOP: accepts connections (the kernel does) but answers nothing.
  void Pause() {
    if (pid_ > 0) kill(pid_, SIGSTOP);
  }
  void Resume() {
    if (pid_ > 0) kill(pid_, SIGCONT);
  }

  int port() const { return port_; }
  std::string spec(int db = -1) const {
    return db < 0 ? absl::StrCat("redis://127.0.0.1:", port_)
                  : absl::StrCat("redis://127.0.0.1:", port_, "/", db);
  }

 private:
  bool StartOnPort() {
    const std::string port = absl::StrCat(port_);
    const std::string dir = dir_.path();
    const std::string log = dir_.File("redis.log");
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      const char* argv[] = {
          "redis-server", "--port",      port.c_str(), "--bind",
          "127.0.0.1",    "--save",      "",           "--appendonly",
          "no",           "--dir",       dir.c_str(),  "--loglevel",
          "warning",      "--daemonize", "no",         "--logfile",
          log.c_str(),    nullptr};
      execvp("redis-server", const_cast<char**>(argv));
      _exit(127);
    }
    if (pid < 0) return false;
    pid_ = pid;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (absl::Now() < until) {
      if (mcmpart::testing::CanConnect(port_)) return true;
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited: port taken?
        pid_ = -1;
        return false;
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
    Kill();
    return false;
  }

  TempDir dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

inline v1::PartitionUpdate Update(double throughput, bool proved = false,
                                  int64_t samples = 10) {
  v1::PartitionUpdate u;
  (*u.mutable_placement()->mutable_assignment())["conv1"] = 0;
  (*u.mutable_placement()->mutable_assignment())["fc"] = 1;
  u.mutable_evaluation()->set_valid(true);
  u.mutable_evaluation()->set_throughput_per_s(throughput);
  u.mutable_evaluation()->set_proved_optimal(proved);
  u.set_samples(samples);
  u.set_elapsed_s(0.25);
  u.set_strategy("anneal");
  return u;
}

// Times to the microsecond, as the store keeps them.
inline absl::Time Micros(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

// A queued job of `owner` whose lease lasts `ttl`, with every field set.
inline JobRecord NewJob(const std::string& id, const std::string& owner,
                        absl::Duration ttl = absl::Seconds(30)) {
  JobRecord job;
  job.id = id;
  job.owner = owner;
  job.lease_expiry = Micros(absl::Now() + ttl);
  job.request.set_strategy("anneal");
  job.request.set_seed(42);
  job.request.mutable_budget()->set_time_s(12.5);
  job.request.mutable_problem()->set_preset("ring4");
  job.request.mutable_problem()->set_onnx_model(std::string("\0onnx\xff", 6));
  job.labels = JobLabels{"anneal", "resnet50", "ring4", 122};
  job.create_time = Micros(absl::Now());
  return job;
}

// A finished progress record with every field set.
inline JobProgress EndedProgress() {
  JobProgress p;
  p.state = v1::Job::FAILED;
  p.start_time = Micros(absl::Now() - absl::Seconds(3));
  p.end_time = Micros(absl::Now());
  p.best = Update(1234.5);
  p.final_update = Update(1234.5);
  p.final_update->set_final(true);
  p.final_update->set_end_reason("deadline");
  p.status = absl::DeadlineExceededError("the deadline ended the search");
  p.end_reason = "deadline";
  p.elapsed_s = 2.75;
  p.samples = 987654321012;
  p.bound_s = 1.5e-4;
  return p;
}

}  // namespace mcmpart::store::testing

#endif  // MCMPART_TESTS_SERVER_STORE_TEST_UTIL_H_
