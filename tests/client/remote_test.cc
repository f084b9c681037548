// The mcmpart commands that talk to mcmpart-server (partition, jobs,
// policies, evaluate/repair --server), driven as a user drives them: the
// real `mcmpart` binary against a real `mcmpart-server` process on an
// ephemeral loopback port.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph_io.h"
#include "solver/onnx_import.h"
#include "tests/common/net_util.h"

extern char** environ;

namespace mcmpart {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::ElementsAre;
using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

const std::string kData = MCMPART_TEST_DATA_DIR;

std::string Graph(const std::string& model) {
  return kData + "/graphs/" + model + ".onnx";
}

// Unique per process and per call: ctest runs every test as its own
// process, two at a time.
std::string Tmp(const std::string& name) {
  static std::atomic<int> counter{0};
  const ::testing::TestInfo* test =
      ::testing::UnitTest::GetInstance()->current_test_info();
  return absl::StrCat(::testing::TempDir(), "/remote_", getpid(), "_",
                      test ? test->name() : "suite", "_", counter++, "_", name);
}

std::string Slurp(const std::string& path) {
  absl::StatusOr<std::string> s = ReadFile(path);
  return s.ok() ? *s : "";
}

// The child's environment: ours without any MCMPART_* or GRPC_* setting a
// developer may have exported (they would change what is tested), plus
// `extra` ("NAME=VALUE").
std::vector<std::string> ChildEnv(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (absl::StartsWith(*e, "MCMPART_") || absl::StartsWith(*e, "GRPC_")) {
      continue;
    }
    env.push_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Starts `argv` with stdin from /dev/null and stdout/stderr on the given
// descriptors.
pid_t Spawn(const std::vector<std::string>& argv,
            const std::vector<std::string>& env, int out_fd, int err_fd) {
  std::vector<char*> args, envp;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    const int null = open("/dev/null", O_RDONLY);
    dup2(null, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(err_fd, STDERR_FILENO);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  return pid;
}

// The exit code (128 + signal when killed by one). A process that outlives
// `timeout` is killed and fails the test rather than hanging it.
int WaitExit(pid_t pid, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > until) {
      ADD_FAILURE() << "process " << pid << " still running after " << timeout
                    << "; killed";
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// Waits until the file holds `needle`; false after `timeout`.
bool WaitForText(const std::string& path, const std::string& needle,
                 absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (absl::Now() < until) {
    if (absl::StrContains(Slurp(path), needle)) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return false;
}

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// A CLI process still running, its output going to files.
struct CliProcess {
  pid_t pid = -1;
  std::string out_path;
  std::string err_path;

  CliResult Wait(absl::Duration timeout = absl::Seconds(60)) const {
    CliResult r;
    r.exit_code = WaitExit(pid, timeout);
    r.out = Slurp(out_path);
    r.err = Slurp(err_path);
    return r;
  }
};

CliProcess StartCli(const std::vector<std::string>& args,
                    const std::vector<std::string>& env = {}) {
  CliProcess p;
  p.out_path = Tmp("cli.out");
  p.err_path = Tmp("cli.err");
  const int out = open(p.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open(p.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> argv = {MCMPART_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  p.pid = Spawn(argv, ChildEnv(env), out, err);
  close(out);
  close(err);
  return p;
}

CliResult RunCli(const std::vector<std::string>& args,
                 const std::vector<std::string>& env = {}) {
  return StartCli(args, env).Wait();
}

using ::mcmpart::testing::FreePort;

using ::mcmpart::testing::CanConnect;

// The real mcmpart-server binary on 127.0.0.1 with `--port 0`; the port it
// chose is read from its `server_start` log line. The policy directory is
// pointed at nothing, so the server runs the classical strategies only and
// every figure below is the same whether or not pre-trained policies ship.
class ServerProcess {
 public:
  // `flags` come after the defaults below; the last of a repeated flag wins.
  explicit ServerProcess(std::vector<std::string> flags = {"--cache-entries=0"})
      : log_(Tmp("server.log")) {
    std::vector<std::string> argv = {MCMPART_SERVER_BINARY, "--host=127.0.0.1",
                                     "--port=0", "--metrics-port=0",
                                     "--shutdown-grace=2s"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_ = Spawn(argv, ChildEnv({"MCMPART_POLICY_DIR=/nonexistent"}), fd, fd);
    close(fd);
    const absl::Time until = absl::Now() + absl::Seconds(30);
    const std::regex port_re("\"event\":\"server_start\".*\"port\":([0-9]+)");
    while (absl::Now() < until) {
      std::smatch m;
      const std::string log = Slurp(log_);
      if (std::regex_search(log, m, port_re)) {
        port_ = std::stoi(m[1]);
        return;
      }
      int status;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "mcmpart-server exited at start:\n" << log;
        return;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    ADD_FAILURE() << "mcmpart-server did not start:\n" << Slurp(log_);
  }
  ~ServerProcess() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    EXPECT_EQ(WaitExit(pid_, absl::Seconds(10)), 0) << Slurp(log_);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return Slurp(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

template <typename Message>
Message ParseOrDie(const std::string& json) {
  Message m;
  const absl::Status s = ParseJson(json, &m);
  EXPECT_TRUE(s.ok()) << s << "\n" << json;
  return m;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// One line per improvement: "[ elapsed] throughput ...". Returns the part
// after the elapsed time, which is the same for the same search wherever it
// runs.
std::vector<std::string> ProgressLines(const std::string& err) {
  std::vector<std::string> out;
  const std::regex line_re(
      R"(\[ *[0-9.]+ (ns|us|ms|s)\] (throughput [0-9.e+]+ /s  quality [0-9.]+  )"
      R"(\+[0-9.]+% over first  [0-9]+ samples))");
  for (const std::string& line : Lines(err)) {
    std::smatch m;
    if (!std::regex_match(line, m, line_re)) break;
    out.push_back(m[2]);
  }
  return out;
}

double Throughput(const std::string& progress_line) {
  return std::stod(progress_line.substr(std::strlen("throughput ")));
}

// "throughput 15331.5 /s  quality 0.8348  +58.0% over first": a progress
// line without its sample count.
std::string Figures(const std::string& progress_line) {
  return progress_line.substr(0, progress_line.find(" over first") + 11);
}

// Polls `mcmpart jobs get` while the job waits for a worker, at most
// `timeout`; returns its state then.
v1::Job::State StateAfterQueue(const std::string& id,
                               const std::string& server_flag,
                               absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  v1::Job job;
  do {
    const CliResult r = RunCli({"jobs", "get", id, "--json", server_flag});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    job = ParseOrDie<v1::Job>(r.out);
  } while (job.state() == v1::Job::QUEUED && absl::Now() < until);
  return job.state();
}

// Submits a 30 s anneal job and waits until a worker runs it; returns its
// id, or "" (with a test failure) when it never started.
std::string SubmitRunningJob(const std::string& server_flag) {
  const CliResult r =
      RunCli({"jobs", "submit", Graph("resnet18"), "--preset", "ring4",
              "--strategy", "anneal", "--time-budget", "30s", server_flag});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return "";
  const std::string id = Lines(r.out).at(0);
  const v1::Job::State state =
      StateAfterQueue(id, server_flag, absl::Seconds(10));
  EXPECT_EQ(state, v1::Job::RUNNING);
  return state == v1::Job::RUNNING ? id : "";
}

// The shared server of the tests that need nothing special. Its result
// cache is off, so that a test's search never depends on another's.
class RemoteTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess(); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static std::string Server() { return "--server=" + server_->address(); }

  static ServerProcess* server_;
};

ServerProcess* RemoteTest::server_ = nullptr;

// The server's default strategy proves the optimum in milliseconds, and
// the answer says so.
TEST_F(RemoteTest, PartitionByDefaultIsProvedOptimal) {
  const absl::Time start = absl::Now();
  CliResult r = RunCli({"partition", Graph("googlenet"), "--preset", "ring4",
                        "--time-budget", "10s", Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_THAT(r.out, MatchesRegex("auto: [0-9]+ samples in [0-9.]+ [num]?s, "
                                  "ended by converged\n\n.*"));
  EXPECT_THAT(r.out, HasSubstr("  throughput  43059.8 /s"));
  EXPECT_THAT(r.out,
              HasSubstr("\n  optimality  proved optimal (exact search)\n"));
}

TEST_F(RemoteTest, PartitionWritesAPlacementFileThatEvaluatePasses) {
  const std::string file = Tmp("placement.json");
  CliResult r =
      RunCli({"partition", Graph("resnet18"), "--preset", "ring4", "--strategy",
              "anneal", "--time-budget", "1s", "--out", file, Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("anneal: [0-9]+ samples in [0-9.]+ [num]?s, "
                                  "ended by budget\n\n"
                                  "resnet18 on ring4: 49 nodes, 4 chips\n"
                                  "VALID placement\n.*"));
  EXPECT_THAT(r.out, HasSubstr("\n\nplacement written to " + file + "\n"));

  const auto report = ParseOrDie<v1::SearchReport>(Slurp(file));
  EXPECT_EQ(report.strategy(), "anneal");
  EXPECT_EQ(report.seed(), 0u);
  EXPECT_EQ(report.end_reason(), "budget");
  EXPECT_GT(report.samples(), 1000);
  EXPECT_GE(report.elapsed_s(), 0.9);
  EXPECT_LE(report.elapsed_s(), 1.5);
  EXPECT_EQ(report.assignment_size(), 49);
  EXPECT_TRUE(report.evaluation().valid());

  // The file is what `evaluate` reads, and the local cost model agrees
  // with the server's figures to the last bit.
  r = RunCli(
      {"evaluate", Graph("resnet18"), file, "--preset", "ring4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto local = ParseOrDie<v1::Evaluation>(r.out);
  EXPECT_TRUE(MessageDifferencer::Equals(local, report.evaluation()))
      << r.out << "\nvs\n"
      << report.evaluation().DebugString();
}

// The server runs the same strategy code with the same seed as
// `mcmpart search`, so a sample-limited random search finds the same
// placement and the same sequence of improvements. The server coalesces
// improvements closer than 20 ms; those lines may be missing, no others.
TEST_F(RemoteTest, JsonIsTheSearchReportAndMatchesTheLocalSearch) {
  const std::vector<std::string> problem = {
      Graph("resnet50"), "--preset", "ring4",     "--strategy", "random",
      "--seed",          "7",        "--samples", "300"};
  std::vector<std::string> args = {"partition"};
  args.insert(args.end(), problem.begin(), problem.end());
  args.insert(args.end(), {"--json", Server()});
  const CliResult remote = RunCli(args);
  ASSERT_EQ(remote.exit_code, 0) << remote.err;
  args = {"search"};
  args.insert(args.end(), problem.begin(), problem.end());
  args.push_back("--json");
  const CliResult local = RunCli(args);
  ASSERT_EQ(local.exit_code, 0) << local.err;

  // Strict parse: stdout is one mcmpart.v1.SearchReport and nothing else.
  const auto report = ParseOrDie<v1::SearchReport>(remote.out);
  const auto expected = ParseOrDie<v1::SearchReport>(local.out);
  EXPECT_EQ(report.strategy(), "random");
  EXPECT_EQ(report.seed(), 7u);
  EXPECT_EQ(report.samples(), 300);
  EXPECT_EQ(report.end_reason(), "budget");
  EXPECT_TRUE(
      MessageDifferencer::Equals(report.evaluation(), expected.evaluation()));
  v1::Placement got, want;
  *got.mutable_assignment() = report.assignment();
  *want.mutable_assignment() = expected.assignment();
  EXPECT_TRUE(MessageDifferencer::Equals(got, want));

  // Off a terminal: one plain line per improvement, a subsequence of the
  // local search's, starting with the same first and ending with the best.
  EXPECT_THAT(remote.err, ::testing::Not(HasSubstr("\r")));
  EXPECT_THAT(remote.err, ::testing::Not(HasSubstr("\033")));
  const std::vector<std::string> shown = ProgressLines(remote.err);
  const std::vector<std::string> all = ProgressLines(local.err);
  EXPECT_EQ(Lines(remote.err).size(), shown.size()) << remote.err;
  ASSERT_GE(all.size(), 3u) << local.err;
  ASSERT_GE(shown.size(), 2u) << remote.err;
  EXPECT_EQ(shown.front(), all.front());
  // Strictly better each time: the final update, which repeats the best, is
  // no new line.
  for (size_t i = 1; i < shown.size(); ++i) {
    EXPECT_GT(Throughput(shown[i]), Throughput(shown[i - 1])) << remote.err;
  }
  EXPECT_THAT(shown.front(), HasSubstr("  +0.0% over first  1 samples"));
  // The best may reach the client only with the search's end, carrying the
  // final sample count: compare it without the count.
  EXPECT_EQ(Figures(shown.back()), Figures(all.back()));
  size_t j = 0;
  for (size_t i = 0; i + 1 < shown.size(); ++i) {
    while (j < all.size() && all[j] != shown[i]) ++j;
    EXPECT_LT(j, all.size())
        << "not an improvement of the local search: " << shown[i] << "\n"
        << local.err;
  }
  EXPECT_THAT(shown.back(),
              HasSubstr(absl::StrFormat("throughput %.6g /s  quality %.4f",
                                        report.evaluation().throughput_per_s(),
                                        report.evaluation().quality())));
}

TEST_F(RemoteTest, ProgressOnATerminalIsOneSelfUpdatingLine) {
  int master = -1, slave = -1;
  ASSERT_EQ(openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
  const std::string file = Tmp("placement.json");
  const std::string out_path = Tmp("cli.out");
  const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const pid_t pid = Spawn(
      {MCMPART_CLI_PATH, "partition", Graph("googlenet"), "--preset", "ring4",
       "--strategy", "random", "--time-budget", "1s", "--out", file, Server()},
      ChildEnv({}), out, slave);
  close(out);
  close(slave);
  // Read the terminal while the command runs: a full pty would block it.
  std::string screen;
  int exit_code = -1;
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while (true) {
    pollfd p{master, POLLIN, 0};
    if (poll(&p, 1, 20) > 0) {
      char buf[4096];
      const ssize_t n = read(master, buf, sizeof(buf));
      if (n > 0) {
        screen.append(buf, n);
        continue;
      }
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      // Drain what is left, then the pty reports EIO.
      fcntl(master, F_SETFL, O_NONBLOCK);
      char buf[4096];
      ssize_t n;
      while ((n = read(master, buf, sizeof(buf))) > 0) screen.append(buf, n);
      break;
    }
    if (absl::Now() > until) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      FAIL() << "partition did not end:\n" << screen;
    }
  }
  close(master);
  ASSERT_EQ(exit_code, 0) << screen;

  // Every draw rewrites the one line; the line ends once, at the end (the
  // terminal turns "\n" into "\r\n").
  EXPECT_TRUE(absl::EndsWith(screen, "\r\n")) << screen;
  EXPECT_EQ(std::count(screen.begin(), screen.end(), '\n'), 1) << screen;
  EXPECT_THAT(screen, ::testing::Not(HasSubstr("throughput")));
  std::vector<std::string> draws =
      absl::StrSplit(screen.substr(0, screen.size() - 2), "\r\033[K");
  ASSERT_FALSE(draws.empty());
  EXPECT_EQ(draws.front(), "");  // the first draw starts the line afresh
  draws.erase(draws.begin());
  // On a loaded machine the clock may tick before the first placement.
  const std::regex waiting_re(
      R"(searching, no valid placement yet  [0-9]+\.[0-9]s / 1s)");
  while (!draws.empty() && std::regex_match(draws.front(), waiting_re)) {
    draws.erase(draws.begin());
  }
  ASSERT_GE(draws.size(), 2u) << screen;
  const std::regex draw_re(
      R"(best ([0-9.e+]+) /s  quality ([0-9.]+)  \+[0-9.]+% over first  )"
      R"([0-9]+ samples/s  [0-9]+\.[0-9]s / 1s)");
  for (const std::string& d : draws) {
    EXPECT_TRUE(std::regex_match(d, draw_re)) << "'" << d << "'";
  }
  EXPECT_THAT(draws.front(), HasSubstr("  +0.0% over first  "));
  // The line ends showing the best placement, the one in the file.
  const auto report = ParseOrDie<v1::SearchReport>(Slurp(file));
  EXPECT_THAT(draws.back(),
              StartsWith(absl::StrFormat("best %.6g /s  quality %.4f  ",
                                         report.evaluation().throughput_per_s(),
                                         report.evaluation().quality())));
}

TEST_F(RemoteTest, JobsSubmitWatchGetListCancel) {
  const std::regex id_re("(job-[0-9a-f]{8}-[0-9]+)\n");
  std::smatch m;

  // A short job, watched to its end.
  CliResult r =
      RunCli({"jobs", "submit", Graph("resnet18"), "--preset", "ring4",
              "--strategy", "anneal", "--time-budget", "1s", Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(std::regex_match(r.out, m, id_re)) << r.out;
  EXPECT_EQ(r.err, "");
  const std::string a = m[1];
  const std::string watched = Tmp("watched.json");
  r = RunCli({"jobs", "watch", a, "--out", watched, Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("anneal: [0-9]+ samples in [0-9.]+ [num]?s, "
                                  "ended by budget\n\nVALID placement: .*"));
  EXPECT_THAT(r.out, HasSubstr("\nplacement written to " + watched + "\n"));
  EXPECT_FALSE(ProgressLines(r.err).empty()) << r.err;
  const auto best = ParseOrDie<v1::SearchReport>(Slurp(watched));
  EXPECT_EQ(best.end_reason(), "budget");
  r = RunCli({"evaluate", Graph("resnet18"), watched, "--preset", "ring4"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  const std::string brief = absl::StrFormat(
      "  best: VALID placement: throughput %.6g /s, quality %.4f of the upper "
      "bound %.6g /s, bottleneck %s",
      best.evaluation().throughput_per_s(), best.evaluation().quality(),
      best.evaluation().upper_bound_per_s(), best.evaluation().bottleneck());
  r = RunCli({"jobs", "get", a, Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("job " + a +
                                ": succeeded (budget)\n"
                                "  resnet18 on ring4, 49 nodes, strategy "
                                "anneal\n" +
                                brief));
  r = RunCli({"jobs", "get", a, "--json", Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto job = ParseOrDie<v1::Job>(r.out);
  EXPECT_EQ(job.id(), a);
  EXPECT_EQ(job.state(), v1::Job::SUCCEEDED);
  EXPECT_EQ(job.end_reason(), "budget");
  v1::Placement got, want;
  *got.mutable_assignment() = job.best().placement().assignment();
  *want.mutable_assignment() = best.assignment();
  EXPECT_TRUE(MessageDifferencer::Equals(got, want));

  // A long job, cancelled while it runs; it keeps its best placement.
  // --json prints the job rather than its id.
  r = RunCli({"jobs", "submit", Graph("resnet50"), "--preset", "ring4",
              "--strategy", "random", "--time-budget", "30s", "--json",
              Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto submitted = ParseOrDie<v1::Job>(r.out);
  const std::string b = submitted.id();
  EXPECT_TRUE(std::regex_match(b + "\n", id_re)) << b;
  EXPECT_NE(b, a);
  EXPECT_EQ(submitted.strategy(), "random");
  EXPECT_EQ(submitted.graph_name(), "resnet50");
  EXPECT_EQ(submitted.hardware_name(), "ring4");
  EXPECT_EQ(submitted.num_nodes(), 122);
  EXPECT_THAT(submitted.state(),
              ::testing::AnyOf(v1::Job::QUEUED, v1::Job::RUNNING));
  const absl::Time until = absl::Now() + absl::Seconds(10);
  do {
    r = RunCli({"jobs", "get", b, Server()});
  } while (!absl::StrContains(r.out, "  best: ") && absl::Now() < until);
  EXPECT_THAT(r.out, StartsWith("job " + b +
                                ": running\n"
                                "  resnet50 on ring4, 122 nodes, strategy "
                                "random\n  best: VALID placement: "));

  const std::string header =
      "ID                   STATE      STRATEGY  GRAPH                HARDWARE "
      "      NODES       BEST/S  QUALITY\n";
  auto row = [](const std::string& id, const std::string& state,
                const std::string& strategy, const std::string& graph,
                int nodes) {
    return absl::StrFormat("%-20s %-10s %-9s %-20s %-12s %7d ", id, state,
                           strategy, graph, "ring4", nodes);
  };
  r = RunCli({"jobs", "list", "--limit", "2", Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0] + "\n", header);
  EXPECT_THAT(lines[1],
              StartsWith(row(b, "running", "random", "resnet50", 122)));
  EXPECT_EQ(
      lines[2],
      row(a, "succeeded", "anneal", "resnet18", 49) +
          absl::StrFormat(
              "%12s %8s",
              absl::StrFormat("%.6g", best.evaluation().throughput_per_s()),
              absl::StrFormat("%.4f", best.evaluation().quality())));

  r = RunCli({"jobs", "cancel", b, Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("job " + b +
                                ": succeeded (cancelled)\n"
                                "  resnet50 on ring4, 122 nodes, strategy "
                                "random\n  best: VALID placement: "));
  // Watching an ended job replays its final update.
  r = RunCli({"jobs", "watch", b, Server()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, MatchesRegex("random: [0-9]+ samples in [0-9.]+ [num]?s, "
                                  "ended by cancelled\n\nVALID placement: .*"));
  // Cancelling an ended job changes nothing.
  r = RunCli({"jobs", "cancel", a, Server()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("job " + a + ": succeeded (budget)\n"));

  r = RunCli({"jobs", "list", "--state", "running", Server()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, header);
  r = RunCli(
      {"jobs", "list", "--state", "succeeded", "--limit", "2", Server()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_THAT(lines[1],
              StartsWith(row(b, "succeeded", "random", "resnet50", 122)));
  EXPECT_THAT(lines[2],
              StartsWith(row(a, "succeeded", "anneal", "resnet18", 49)));
  r = RunCli({"jobs", "list", "--state", "done", Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart jobs list: --state is 'done'; use queued, running, "
            "succeeded, failed or cancelled\n");

  // Submitted and watched in one go; with --json stdout is the placement
  // file alone and the id goes to stderr.
  r = RunCli({"jobs", "submit", Graph("resnet18"), "--preset", "ring4",
              "--strategy", "anneal", "--samples", "1000", "--watch", "--json",
              Server()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto watched_report = ParseOrDie<v1::SearchReport>(r.out);
  EXPECT_EQ(watched_report.samples(), 1000);
  EXPECT_EQ(watched_report.end_reason(), "budget");
  EXPECT_TRUE(std::regex_search(
      r.err, std::regex("^mcmpart jobs submit: job job-[0-9a-f]{8}-[0-9]+\n")))
      << r.err;
  r = RunCli({"jobs", "submit", Graph("resnet18"), "--preset", "ring4", "--out",
              watched, Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, StartsWith("mcmpart jobs submit: --out goes with --watch "
                                "(a new job has no placement yet; `mcmpart "
                                "jobs watch ID --out FILE` later)\n"));

  r = RunCli({"jobs", "get", "job-nope", Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart jobs get: no job 'job-nope' on this server: unknown, "
            "ended more than --job-retention ago or before the last "
            "--max-finished-jobs, or lost when the server restarted\n");
}

// Ctrl-C: the CLI cancels the call, the server stops the search and frees
// its worker, and the best placement so far is still written.
TEST(RemoteInterruptTest, SigintStopsTheServerSearchAndKeepsTheBest) {
  ServerProcess server({"--cache-entries=0", "--workers=1"});
  const std::string server_flag = "--server=" + server.address();
  const std::string file = Tmp("interrupted.json");
  CliProcess cli = StartCli({"partition", Graph("googlenet"), "--preset",
                             "ring4", "--strategy", "random", "--time-budget",
                             "30s", "--out", file, server_flag});
  ASSERT_TRUE(WaitForText(cli.err_path, "\n", absl::Seconds(20)))
      << Slurp(cli.err_path);
  const absl::Time sent = absl::Now();
  ASSERT_EQ(kill(cli.pid, SIGINT), 0);
  CliResult r = cli.Wait(absl::Seconds(10));
  EXPECT_LT(absl::Now() - sent, absl::Seconds(2));
  ASSERT_EQ(r.exit_code, 130) << r.err;
  const std::vector<std::string> shown = ProgressLines(r.err);
  ASSERT_FALSE(shown.empty()) << r.err;
  EXPECT_THAT(r.err,
              EndsWith("\nmcmpart partition: interrupted; the search on the "
                       "server was stopped and its best placement kept\n"));
  EXPECT_THAT(r.out,
              MatchesRegex("random: interrupted; the best placement was "
                           "found after [0-9]+ samples in [0-9.]+ [num]?s\n"
                           "\ngooglenet on ring4: 139 nodes, 4 chips\n"
                           "VALID placement\n.*"));
  EXPECT_THAT(r.out, HasSubstr("\nplacement written to " + file + "\n"));

  const auto report = ParseOrDie<v1::SearchReport>(Slurp(file));
  EXPECT_EQ(report.end_reason(), "cancelled");
  EXPECT_EQ(report.strategy(), "random");
  EXPECT_TRUE(report.evaluation().valid());
  // The file holds the last improvement shown.
  EXPECT_THAT(shown.back(),
              StartsWith(absl::StrFormat("throughput %.6g /s  quality %.4f",
                                         report.evaluation().throughput_per_s(),
                                         report.evaluation().quality())));
  r = RunCli({"evaluate", Graph("googlenet"), file, "--preset", "ring4"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

  // The one worker is free again at once: had the 30 s search gone on, the
  // next job would wait in the queue for the rest of it.
  r = RunCli({"jobs", "submit", Graph("resnet18"), "--preset", "ring4",
              "--strategy", "anneal", "--time-budget", "1s", server_flag});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(StateAfterQueue(Lines(r.out).at(0), server_flag, absl::Seconds(2)),
            v1::Job::QUEUED);
}

TEST_F(RemoteTest, ServerAddressFromFlagElseEnvironmentElseDefault) {
  const std::string dead = absl::StrCat("127.0.0.1:", FreePort());
  const std::string expected =
      "policies:\n  (none loaded)\nstrategies: auto (default) exact anneal "
      "constructive random\n";
  CliResult r = RunCli({"policies"}, {"MCMPART_SERVER=" + server_->address()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);
  // --server wins over the environment.
  r = RunCli({"policies", Server()}, {"MCMPART_SERVER=" + dead});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);
  r = RunCli({"policies"}, {"MCMPART_SERVER=" + dead});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_THAT(r.err, StartsWith("mcmpart policies: cannot reach mcmpart-server "
                                "at " +
                                dead + " (MCMPART_SERVER): "));
  // Nothing given: localhost:50051, unless a developer's server is there.
  if (!CanConnect(50051)) {
    r = RunCli({"policies"});
    EXPECT_EQ(r.exit_code, 5);
    EXPECT_THAT(r.err, StartsWith("mcmpart policies: cannot reach "
                                  "mcmpart-server at localhost:50051 (the "
                                  "default): "));
  }
}

TEST(RemoteErrorTest, UnreachableServerExitsFiveAndSaysWhatToDo) {
  const int port = FreePort();
  const std::string addr = absl::StrCat("127.0.0.1:", port);
  const std::string reason = absl::StrCat(
      " (--server): failed to connect to all addresses; last error: UNKNOWN: "
      "ipv4:",
      addr,
      ": Failed to connect to remote host: Connection refused\n"
      "  Is it running? Start it with `mcmpart-server`, or give its address "
      "with --server ADDR or MCMPART_SERVER (and --tls or --tls-ca FILE if it "
      "speaks TLS).\n");
  CliResult r = RunCli({"policies", "--server", addr});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "mcmpart policies: cannot reach mcmpart-server at " + addr +
                       reason);
  r = RunCli(
      {"partition", Graph("resnet18"), "--preset", "ring4", "--server", addr});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.err, "mcmpart partition: cannot reach mcmpart-server at " + addr +
                       reason);
  r = RunCli({"jobs", "list", "--server", addr});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.err, "mcmpart jobs list: cannot reach mcmpart-server at " + addr +
                       reason);
}

// A draining server is reached but refuses new work: it says so, rather
// than "cannot reach".
TEST(RemoteErrorTest, DrainingServerIsUnavailable) {
  ServerProcess server(
      {"--cache-entries=0", "--workers=1", "--shutdown-grace=6s"});
  const std::string server_flag = "--server=" + server.address();
  // A running job holds the drain open for half the grace: time enough for
  // the next command even on a loaded machine.
  // A 30 s search holding the only worker, running (not still queued).
  const std::string id = SubmitRunningJob(server_flag);
  ASSERT_FALSE(id.empty());
  CliResult r;
  ASSERT_EQ(kill(server.pid(), SIGTERM), 0);
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (!absl::StrContains(server.log(), "\"event\":\"server_drain\"") &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  r = RunCli({"partition", Graph("resnet18"), "--preset", "ring4",
              "--time-budget", "1s", server_flag});
  EXPECT_EQ(r.exit_code, 5);
  EXPECT_EQ(r.err, "mcmpart partition: mcmpart-server at " + server.address() +
                       " is unavailable: the server is shutting down and "
                       "accepts no new work; retry on another replica\n");
  // Ending the job lets the server finish its drain now.
  r = RunCli({"jobs", "cancel", id, server_flag});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(RemoteTest, InfeasibleInstanceExitsThreeWithTheSolversExplanation) {
  const std::string why =
      "no valid placement exists: node '/classifier/classifier.0/Gemm' needs "
      "392.03 MiB (411074560 bytes) of SRAM for its parameters and output, "
      "but the largest chip has 96.00 MiB (100663296 bytes)\n";
  CliResult r = RunCli({"partition", Graph("vgg16"), "--preset", "ring8",
                        "--time-budget", "1s", Server()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "mcmpart partition: " + why);
  r = RunCli({"jobs", "submit", Graph("vgg16"), "--preset", "ring8", Server()});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.err, "mcmpart jobs submit: " + why);
}

TEST_F(RemoteTest, BadInputExitsTwoWithTheReason) {
  CliResult r = RunCli({"partition", kData + "/graphs/nope.onnx", "--preset",
                        "ring4", Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "mcmpart partition: " + kData +
                       "/graphs/nope.onnx: cannot open file\n");

  const std::string cycle = Tmp("cycle.json");
  ASSERT_TRUE(WriteFile(cycle, R"({"nodes": [
      {"name": "a", "inputs": ["b"]}, {"name": "b", "inputs": ["a"]}]})")
                  .ok());
  r = RunCli({"partition", cycle, "--preset", "ring4", Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "mcmpart partition: " + cycle +
                       ": graph has a cycle: 'a' -> 'b' -> 'a'\n");

  // Checked by the server.
  r = RunCli({"partition", Graph("resnet18"), "--preset", "ring4", "--strategy",
              "magic", Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart partition: unknown strategy 'magic'; this server runs "
            "auto, exact, anneal, constructive, random\n");

  r = RunCli({"partition", Graph("resnet18"), "--preset", "ring4", "--timeout",
              "soon", Server()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart partition: --timeout is 'soon'; use a duration such as "
            "500ms, 2s or 1m\n");

  // The same message as the local command.
  const std::string partial = Tmp("partial.json");
  ASSERT_TRUE(
      WriteFile(partial, R"({"assignment": {"/conv1/Conv": 0, "zz": 1}})")
          .ok());
  const std::vector<std::string> args = {"evaluate", Graph("resnet18"), partial,
                                         "--preset", "ring4"};
  r = RunCli(args);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "mcmpart evaluate: " + partial +
                       ": placement: unknown node 'zz'\n");
  std::vector<std::string> remote = args;
  remote.push_back(Server());
  const CliResult rr = RunCli(remote);
  EXPECT_EQ(rr.exit_code, 2);
  EXPECT_EQ(rr.err, r.err);
}

TEST(RemoteErrorTest, BusyServerRefusesTheJob) {
  ServerProcess server({"--cache-entries=0", "--workers=1", "--max-queue=0"});
  const std::string server_flag = "--server=" + server.address();
  // A 30 s search holding the only worker, running (not still queued).
  const std::string id = SubmitRunningJob(server_flag);
  ASSERT_FALSE(id.empty());
  CliResult r = RunCli({"partition", Graph("resnet18"), "--preset", "ring4",
                        "--time-budget", "1s", server_flag});
  EXPECT_EQ(r.exit_code, 6);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "mcmpart partition: the server refused the request: server busy: "
            "1 jobs running and 0 queued, the limit (--workers 1 + --max-queue "
            "0); retry later\n");
  r = RunCli({"jobs", "cancel", id, server_flag});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(RemoteTest, PoliciesListsTheStrategies) {
  CliResult r = RunCli({"policies", Server()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "policies:\n  (none loaded)\nstrategies: auto (default) exact "
            "anneal constructive random\n");
  r = RunCli({"policies", "--json", Server()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const auto list = ParseOrDie<v1::ListPoliciesResponse>(r.out);
  EXPECT_EQ(list.policies_size(), 0);
  EXPECT_THAT(list.strategies(),
              ElementsAre("auto", "exact", "anneal", "constructive",
                          "random"));
}

// evaluate and repair with --server give what the local commands give: the
// same text, the same exit code, the same figures.
TEST_F(RemoteTest, RemoteEvaluateAndRepairAgreeWithTheLocalCommands) {
  // Round-robin: every edge across chips, most of them too far.
  absl::StatusOr<v1::Graph> graph =
      LoadGraphFile(Graph("resnet18"), OnnxImportOptions());
  ASSERT_TRUE(graph.ok()) << graph.status();
  v1::Placement candidate;
  for (int v = 0; v < graph->nodes_size(); ++v) {
    (*candidate.mutable_assignment())[graph->nodes(v).name()] = v % 4;
  }
  const std::string file = Tmp("candidate.json");
  ASSERT_TRUE(WriteFile(file, ToJson(candidate)).ok());

  std::vector<std::string> args = {"evaluate", Graph("resnet18"), file,
                                   "--preset", "ring4"};
  CliResult local = RunCli(args);
  args.push_back(Server());
  CliResult remote = RunCli(args);
  EXPECT_EQ(local.exit_code, 1) << local.err;
  EXPECT_EQ(remote.exit_code, 1) << remote.err;
  EXPECT_THAT(local.out, HasSubstr("INVALID placement: "));
  EXPECT_EQ(remote.out, local.out);
  args.push_back("--json");
  remote = RunCli(args);
  args.erase(args.end() - 2);
  local = RunCli(args);
  EXPECT_TRUE(
      MessageDifferencer::Equals(ParseOrDie<v1::Evaluation>(remote.out),
                                 ParseOrDie<v1::Evaluation>(local.out)));

  const std::string repaired = Tmp("repaired.json");
  args = {"repair", Graph("resnet18"), file, "--preset", "ring4", "--json"};
  local = RunCli(args);
  args.insert(args.end(), {"--out", repaired, Server()});
  remote = RunCli(args);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_EQ(remote.exit_code, 0) << remote.err;
  auto want = ParseOrDie<v1::RepairReport>(local.out);
  auto got = ParseOrDie<v1::RepairReport>(remote.out);
  EXPECT_TRUE(got.optimal());
  EXPECT_GT(got.changed_nodes(), 0);
  EXPECT_TRUE(got.evaluation().valid());
  // Only the solver's time may differ.
  want.clear_solve_s();
  got.clear_solve_s();
  EXPECT_TRUE(MessageDifferencer::Equals(got, want))
      << got.DebugString() << "\nvs\n"
      << want.DebugString();
  EXPECT_EQ(Slurp(repaired), remote.out);
  CliResult e =
      RunCli({"evaluate", Graph("resnet18"), repaired, "--preset", "ring4"});
  EXPECT_EQ(e.exit_code, 0) << e.out << e.err;

  // A candidate may leave nodes out: both sides leave them free.
  v1::Placement partial;
  for (int v = 0; v < graph->nodes_size(); v += 2) {
    (*partial.mutable_assignment())[graph->nodes(v).name()] = v % 4;
  }
  const std::string partial_file = Tmp("partial.json");
  ASSERT_TRUE(WriteFile(partial_file, ToJson(partial)).ok());
  args = {"repair",   Graph("resnet18"), partial_file,
          "--preset", "ring4",           "--json"};
  local = RunCli(args);
  args.push_back(Server());
  remote = RunCli(args);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_EQ(remote.exit_code, 0) << remote.err;
  want = ParseOrDie<v1::RepairReport>(local.out);
  got = ParseOrDie<v1::RepairReport>(remote.out);
  EXPECT_EQ(got.assignment_size(), graph->nodes_size());
  want.clear_solve_s();
  got.clear_solve_s();
  EXPECT_TRUE(MessageDifferencer::Equals(got, want))
      << got.DebugString() << "\nvs\n"
      << want.DebugString();

  // The readable forms match too, but for the time the solver took.
  args = {"repair", Graph("resnet18"), file, "--preset", "ring4"};
  local = RunCli(args);
  args.push_back(Server());
  remote = RunCli(args);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  ASSERT_EQ(remote.exit_code, 0) << remote.err;
  auto without_time = [](const std::string& out) {
    return std::regex_replace(out, std::regex(", in [0-9.]+ [mun]?s\n"), "\n");
  };
  EXPECT_THAT(local.out, StartsWith("repaired: "));
  EXPECT_EQ(without_time(remote.out), without_time(local.out));
}

TEST(RemoteTlsTest, TlsFlagsMatchTheServers) {
  const std::string tls = kData + "/tls/";
  ServerProcess server({"--cache-entries=0", "--tls-cert=" + tls + "server.pem",
                        "--tls-key=" + tls + "server.key",
                        "--tls-client-ca=" + tls + "ca.pem"});
  const std::string addr = absl::StrCat("localhost:", server.port());
  const std::vector<std::string> mtls = {"--server",   addr,
                                         "--tls-ca",   tls + "ca.pem",
                                         "--tls-cert", tls + "client.pem",
                                         "--tls-key",  tls + "client.key"};
  std::vector<std::string> args = {"policies"};
  args.insert(args.end(), mtls.begin(), mtls.end());
  CliResult r = RunCli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "policies:\n  (none loaded)\nstrategies: auto (default) exact "
            "anneal constructive random\n");
  EXPECT_EQ(r.err, "");

  // A streamed search over TLS.
  const std::string file = Tmp("tls.json");
  args = {"partition", Graph("resnet18"), "--preset", "ring4", "--strategy",
          "anneal",    "--samples",       "1000",     "--out", file};
  args.insert(args.end(), mtls.begin(), mtls.end());
  r = RunCli(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ParseOrDie<v1::SearchReport>(Slurp(file)).samples(), 1000);

  // Plaintext, TLS checked against the system roots (which do not know
  // the test CA), or TLS without the client certificate the server demands:
  // no connection, and no gRPC log lines on the terminal.
  for (const std::vector<std::string>& flags :
       std::vector<std::vector<std::string>>{
           {"--server", addr},
           {"--server", addr, "--tls"},
           {"--server", addr, "--tls-ca", tls + "ca.pem"}}) {
    args = {"policies"};
    args.insert(args.end(), flags.begin(), flags.end());
    r = RunCli(args);
    EXPECT_EQ(r.exit_code, 5) << r.err;
    EXPECT_THAT(r.err, StartsWith("mcmpart policies: cannot reach "
                                  "mcmpart-server at " +
                                  addr + " (--server): "));
    EXPECT_EQ(Lines(r.err).size(), 2u) << r.err;
  }
  r = RunCli({"policies", "--server", addr, "--tls-cert", tls + "client.pem"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart policies: --tls-cert and --tls-key go together (mTLS)\n");
}

TEST(RemoteCacheTest, ASecondRequestIsAnsweredFromTheCacheAtOnce) {
  // The result cache on, as deployed.
  ServerProcess server(std::vector<std::string>{});
  const std::string server_flag = "--server=" + server.address();
  const std::string first = Tmp("first.json");
  const std::string second = Tmp("second.json");
  CliResult r =
      RunCli({"partition", Graph("resnet18"), "--preset", "ring4", "--strategy",
              "anneal", "--time-budget", "1s", "--out", first, server_flag});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const absl::Time start = absl::Now();
  r = RunCli({"partition", Graph("resnet18"), "--preset", "ring4", "--strategy",
              "anneal", "--time-budget", "1s", "--seed", "3", "--out", second,
              server_flag});
  // A search would take its 1 s budget.
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith("anneal: answered from the server's cache, no "
                                "search ran\n\nresnet18 on ring4: "));
  const std::vector<std::string> lines = Lines(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_THAT(lines[0], EndsWith("  (from the server's cache)"));
  const auto a = ParseOrDie<v1::SearchReport>(Slurp(first));
  const auto b = ParseOrDie<v1::SearchReport>(Slurp(second));
  EXPECT_EQ(b.end_reason(), "cached");
  EXPECT_TRUE(MessageDifferencer::Equals(a.evaluation(), b.evaluation()));
}

TEST_F(RemoteTest, TimeoutEndsTheSearchInTimeWithItsBest) {
  const absl::Time start = absl::Now();
  CliResult r = RunCli({"partition", Graph("resnet18"), "--preset", "ring4",
                        "--strategy", "anneal", "--time-budget", "30s",
                        "--timeout", "1s", "--json", Server()});
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(2500));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto report = ParseOrDie<v1::SearchReport>(r.out);
  // The server ends the search a little before the deadline, so that its
  // best still arrives.
  EXPECT_EQ(report.end_reason(), "deadline");
  EXPECT_TRUE(report.evaluation().valid());
  EXPECT_GE(report.elapsed_s(), 0.5);
  EXPECT_LT(report.elapsed_s(), 1.0);
}

TEST(RemoteHelpTest, HelpDocumentsTheExitCodes) {
  CliResult r = RunCli({"partition", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, StartsWith("Usage: mcmpart partition GRAPH (--preset "
                                "NAME [--chips N] | --hardware FILE)\n"
                                "         [--server ADDR] "));
  EXPECT_THAT(r.out,
              HasSubstr("Exit codes: 0 success, 2 bad input, 3 no valid "
                        "placement exists, 4 no\nvalid placement found in "
                        "time, 5 server unreachable, 6 refused by a busy\n"
                        "server or too large, 7 other server error, 130 "
                        "interrupted (Ctrl-C; the\nbest placement so far is "
                        "still written).\n"));
  r = RunCli({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("5 server unreachable, 6 refused by a busy "
                               "server, 7 other server error,\n130 "
                               "interrupted (Ctrl-C).\n"));
  for (const char* verb : {"submit", "watch", "get", "list", "cancel"}) {
    r = RunCli({"jobs", verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_THAT(r.out, StartsWith(absl::StrCat("Usage: mcmpart jobs ", verb)));
    EXPECT_THAT(r.out, HasSubstr("5 server unreachable"));
  }
  r = RunCli({"evaluate", "--server", "x", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, StartsWith("Usage: mcmpart evaluate GRAPH PLACEMENT.json "
                                "(--preset ... | --hardware ...)\n"
                                "         [--server ADDR] [--json]\n"));
  EXPECT_THAT(r.out,
              EndsWith("With --server: 5 server unreachable, 6 refused by a "
                       "busy server or too\nlarge, 7 other server error.\n"));
  // Every help fits a terminal.
  for (const std::vector<std::string>& command :
       std::vector<std::vector<std::string>>{{"partition"},
                                             {"jobs"},
                                             {"jobs", "submit"},
                                             {"jobs", "watch"},
                                             {"jobs", "get"},
                                             {"jobs", "list"},
                                             {"jobs", "cancel"},
                                             {"policies"},
                                             {"evaluate", "--server", "x"},
                                             {"repair", "--server", "x"}}) {
    std::vector<std::string> args = command;
    args.push_back("--help");
    r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << command[0];
    for (const std::string& line : Lines(r.out)) {
      EXPECT_LE(line.size(), 80u) << line;
    }
  }
}

}  // namespace
}  // namespace mcmpart
