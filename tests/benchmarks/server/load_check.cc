// server_load_check: N concurrent clients send Partition calls for the
// shared graphs to a real mcmpart-server for a fixed time and report errors
// and the time to the first update (p50, p99). Not part of ctest: a
// measurement, run by hand (docs/benchmarks.md, "Server").
//
//   server_load_check [--target HOST:PORT] [--clients 16] [--duration 60s]
//                     [--budget 2s] [--workers 2] [--max-queue 16]
//                     [--keep-improving] [--replicas N] [--jobs]
//
// Without --target it starts the mcmpart-server binary built next to it on
// a free loopback port (with --workers and --max-queue) and stops it with
// SIGTERM at the end. With --replicas N (> 1) it starts a redis-server on a
// free loopback port and N servers sharing it (--store redis://...), and
// each call goes to the next replica. With --jobs a call is SubmitJob on
// one replica and WatchJob on another (Partition calls own their search
// and do not join others'); at the end it counts, from the store's job
// list, the graphs searched more than once.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "solver/graph_io.h"
#include "tests/common/net_util.h"

namespace {

// The shared graphs that have a valid placement on the preset given. Four
// fit no preset (one node's weights exceed a chip's SRAM): vgg16,
// gpt2_small (docs/problem.md), alexnet and bert_large; they would only
// measure the FAILED_PRECONDITION path.
struct Model {
  const char* name;
  const char* preset;
};
constexpr Model kModels[] = {
    {"bert_base", "ring8"},          {"efficientnet_b0", "ring4"},
    {"googlenet", "ring4"},          {"inception_v3", "ring4"},
    {"mnasnet1_0", "ring4"},         {"mobilenet_v2", "ring4"},
    {"mobilenet_v3_large", "ring4"}, {"regnet_y_400mf", "ring4"},
    {"resnet18", "ring4"},           {"resnet50", "ring4"},
    {"resnext50_32x4d", "ring4"},    {"shufflenet_v2", "ring4"},
    {"squeezenet1_1", "ring4"},
};

struct Args {
  std::string target;
  int clients = 16;
  absl::Duration duration = absl::Seconds(60);
  absl::Duration budget = absl::Seconds(2);
  int workers = 2;
  int max_queue = 16;
  // Every call searches (the cached placement is still sent first), so
  // the queue fills and RESOURCE_EXHAUSTED shows.
  bool keep_improving = false;
  int replicas = 1;
  bool jobs = false;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") return false;
    if (flag == "--keep-improving") {
      a->keep_improving = true;
      continue;
    }
    if (flag == "--jobs") {
      a->jobs = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string v = argv[++i];
    if (flag == "--target") {
      a->target = v;
    } else if (flag == "--clients") {
      if (!absl::SimpleAtoi(v, &a->clients) || a->clients < 1) return false;
    } else if (flag == "--duration") {
      if (!absl::ParseDuration(v, &a->duration)) return false;
    } else if (flag == "--budget") {
      if (!absl::ParseDuration(v, &a->budget)) return false;
    } else if (flag == "--workers") {
      if (!absl::SimpleAtoi(v, &a->workers)) return false;
    } else if (flag == "--max-queue") {
      if (!absl::SimpleAtoi(v, &a->max_queue)) return false;
    } else if (flag == "--replicas") {
      if (!absl::SimpleAtoi(v, &a->replicas) || a->replicas < 1) return false;
    } else {
      return false;
    }
  }
  return true;
}

using ::mcmpart::testing::FreePort;

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i =
      std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5));
  return v[i];
}

struct Stats {
  std::mutex mu;
  int64_t calls = 0, ok = 0, from_cache = 0;
  std::map<std::string, int64_t> errors;  // code name -> count
  std::vector<double> first_update_ms, first_update_cached_ms,
      first_update_search_ms, call_ms;
  std::vector<double> quality;
};

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    default:
      return "OTHER";
  }
}

pid_t Spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Starts `args.replicas` servers (and, for more than one, the redis-server
// they share); returns their addresses and fills `pids`.
std::vector<std::string> StartServers(const Args& args,
                                      std::vector<pid_t>* pids) {
  std::string store = "memory";
  if (args.replicas > 1) {
    const int redis_port = FreePort();
    pids->push_back(Spawn({"redis-server", "--port", absl::StrCat(redis_port),
                           "--bind", "127.0.0.1", "--save", "", "--appendonly",
                           "no", "--loglevel", "warning"}));
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (!mcmpart::testing::CanConnect(redis_port) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    store = absl::StrCat("redis://127.0.0.1:", redis_port);
  }
  std::vector<std::string> targets;
  for (int r = 0; r < args.replicas; ++r) {
    const int port = FreePort();
    targets.push_back(absl::StrCat("127.0.0.1:", port));
    pids->push_back(
        Spawn({MCMPART_SERVER_BINARY, "--host=127.0.0.1",
               absl::StrCat("--port=", port),
               absl::StrCat("--workers=", args.workers),
               absl::StrCat("--max-queue=", args.max_queue), "--metrics-port=0",
               "--no-log-jobs", absl::StrCat("--store=", store),
               absl::StrCat("--replica-id=replica-", r)}));
  }
  return targets;
}

// One job: SubmitJob on `submit`, WatchJob on `watch` until it ends.
grpc::Status RunJob(mcmpart::v1::Partitioner::Stub& submit,
                    mcmpart::v1::Partitioner::Stub& watch,
                    const mcmpart::v1::PartitionRequest& request,
                    absl::Time deadline, double* first_ms, bool* cached,
                    mcmpart::v1::PartitionUpdate* last) {
  const absl::Time t0 = absl::Now();
  mcmpart::v1::SubmitJobRequest sr;
  *sr.mutable_request() = request;
  mcmpart::v1::Job job;
  {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    grpc::Status s = submit.SubmitJob(&context, sr, &job);
    if (!s.ok()) return s;
  }
  mcmpart::v1::WatchJobRequest wr;
  wr.set_id(job.id());
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(deadline));
  auto reader = watch.WatchJob(&context, wr);
  mcmpart::v1::PartitionUpdate u;
  while (reader->Read(&u)) {
    if (*first_ms < 0) {
      *first_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
      *cached = u.from_cache();
    }
    *last = u;
  }
  return reader->Finish();
}

// Graphs with more than one job that searched (not answered from the
// cache), from the store's list of every job.
std::map<std::string, int> SearchedTwice(mcmpart::v1::Partitioner::Stub& stub) {
  grpc::ClientContext context;
  mcmpart::v1::ListJobsRequest request;
  request.set_limit(1 << 20);
  request.set_omit_placements(true);
  mcmpart::v1::ListJobsResponse list;
  std::map<std::string, int> searched;
  if (!stub.ListJobs(&context, request, &list).ok()) return searched;
  for (const auto& job : list.jobs()) {
    if (job.end_reason() != "cached") ++searched[job.graph_name()];
  }
  std::map<std::string, int> twice;
  for (const auto& [graph, n] : searched) {
    if (n > 1) twice[graph] = n;
  }
  return twice;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) {
    std::cerr << "usage: server_load_check [--target HOST:PORT] [--clients N] "
                 "[--duration 60s] [--budget 2s] [--workers N] "
                 "[--max-queue N] [--keep-improving] [--replicas N] "
                 "[--jobs]\n";
    return 2;
  }
  std::vector<std::string> bytes;
  for (const Model& m : kModels) {
    absl::StatusOr<std::string> b = mcmpart::ReadFile(
        absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", m.name, ".onnx"));
    if (!b.ok()) {
      std::cerr << b.status().message() << "\n";
      return 2;
    }
    bytes.push_back(*std::move(b));
  }

  std::vector<pid_t> pids;
  std::vector<std::string> targets =
      args.target.empty() ? StartServers(args, &pids)
                          : std::vector<std::string>{args.target};
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(64 << 20);
  auto stop_all = [&pids] {
    // The servers first (they drain), Redis last.
    for (auto it = pids.rbegin(); it != pids.rend(); ++it) kill(*it, SIGTERM);
    for (pid_t p : pids) waitpid(p, nullptr, 0);
  };
  for (const std::string& target : targets) {
    auto channel = grpc::CreateCustomChannel(
        target, grpc::InsecureChannelCredentials(), channel_args);
    if (!channel->WaitForConnected(
            absl::ToChronoTime(absl::Now() + absl::Seconds(30)))) {
      std::cerr << "cannot connect to " << target << "\n";
      stop_all();
      return 2;
    }
  }
  args.target = absl::StrJoin(targets, ",");

  Stats stats;
  const absl::Time start = absl::Now();
  const absl::Time end = start + args.duration;
  std::vector<std::thread> clients;
  for (int c = 0; c < args.clients; ++c) {
    clients.emplace_back([&, c] {
      // One channel per client and replica, as separate build machines
      // would have.
      std::vector<std::unique_ptr<mcmpart::v1::Partitioner::Stub>> stubs;
      for (const std::string& target : targets) {
        stubs.push_back(
            mcmpart::v1::Partitioner::NewStub(grpc::CreateCustomChannel(
                target, grpc::InsecureChannelCredentials(), channel_args)));
      }
      std::mt19937 rng(c);
      for (int call = 0; absl::Now() < end; ++call) {
        const size_t r = static_cast<size_t>(c + call) % stubs.size();
        mcmpart::v1::Partitioner::Stub* stub = stubs[r].get();
        const int m = static_cast<int>(rng() % std::size(kModels));
        mcmpart::v1::PartitionRequest request;
        request.mutable_problem()->set_onnx_model(bytes[m]);
        request.mutable_problem()->set_preset(kModels[m].preset);
        request.mutable_budget()->set_time_s(
            absl::ToDoubleSeconds(args.budget));
        request.set_seed(c);
        request.set_keep_improving(args.keep_improving);
        grpc::ClientContext context;
        // Generous: a queued call may wait for several budgets.
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + args.budget * (args.clients + 2) +
                               absl::Seconds(30)));
        const absl::Time t0 = absl::Now();
        mcmpart::v1::PartitionUpdate last;
        double first_ms = -1;
        bool cached = false;
        grpc::Status s;
        if (args.jobs) {
          s = RunJob(*stub, *stubs[(r + 1) % stubs.size()], request,
                     absl::FromChrono(context.deadline()), &first_ms, &cached,
                     &last);
        } else {
          auto reader = stub->Partition(&context, request);
          mcmpart::v1::PartitionUpdate u;
          while (reader->Read(&u)) {
            if (first_ms < 0) {
              first_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
              cached = u.from_cache();
            }
            last = u;
          }
          s = reader->Finish();
        }
        const double call_ms = absl::ToDoubleMilliseconds(absl::Now() - t0);
        if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
          // A build machine told "busy" backs off before retrying.
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        std::lock_guard<std::mutex> lock(stats.mu);
        ++stats.calls;
        if (!s.ok()) {
          const int64_t n = ++stats.errors[CodeName(s.error_code())];
          if (s.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED &&
              n <= 5) {
            std::cerr << kModels[m].name << ": " << CodeName(s.error_code())
                      << ": " << s.error_message() << "\n";
          }
          continue;
        }
        ++stats.ok;
        stats.call_ms.push_back(call_ms);
        stats.quality.push_back(last.evaluation().quality());
        if (first_ms >= 0) {
          stats.first_update_ms.push_back(first_ms);
          (cached ? stats.first_update_cached_ms : stats.first_update_search_ms)
              .push_back(first_ms);
          if (cached) ++stats.from_cache;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double wall_s = absl::ToDoubleSeconds(absl::Now() - start);

  std::map<std::string, int> twice;
  if (args.jobs) {
    auto stub = mcmpart::v1::Partitioner::NewStub(grpc::CreateCustomChannel(
        targets[0], grpc::InsecureChannelCredentials(), channel_args));
    twice = SearchedTwice(*stub);
  }
  stop_all();

  int64_t other_errors = 0;
  for (const auto& [code, n] : stats.errors) {
    if (code != "RESOURCE_EXHAUSTED") other_errors += n;
  }
  std::printf(
      "server_load_check: %d clients, %.0f s, budget %.1f s per call, "
      "target %s\n",
      args.clients, wall_s, absl::ToDoubleSeconds(args.budget),
      args.target.c_str());
  std::printf(
      "calls %lld  ok %lld  answered from cache %lld  "
      "RESOURCE_EXHAUSTED %lld  other errors %lld  (%.1f calls/s)\n",
      static_cast<long long>(stats.calls), static_cast<long long>(stats.ok),
      static_cast<long long>(stats.from_cache),
      static_cast<long long>(stats.errors["RESOURCE_EXHAUSTED"]),
      static_cast<long long>(other_errors), stats.calls / wall_s);
  auto row = [](const char* what, const std::vector<double>& v) {
    std::printf("%-28s n=%-6zu p50 %9.1f ms  p99 %9.1f ms  max %9.1f ms\n",
                what, v.size(), Percentile(v, 0.5), Percentile(v, 0.99),
                v.empty() ? 0.0 : *std::max_element(v.begin(), v.end()));
  };
  row("first update, all", stats.first_update_ms);
  row("first update, cache hit", stats.first_update_cached_ms);
  row("first update, search", stats.first_update_search_ms);
  row("whole call", stats.call_ms);
  std::printf("quality of returned placements: p50 %.3f  min %.3f\n",
              Percentile(stats.quality, 0.5),
              stats.quality.empty() ? 0.0
                                    : *std::min_element(stats.quality.begin(),
                                                        stats.quality.end()));
  if (args.jobs) {
    std::printf("graphs searched more than once: %zu", twice.size());
    for (const auto& [graph, n] : twice)
      std::printf("  %s (%d)", graph.c_str(), n);
    std::printf("\n");
  }
  return other_errors == 0 ? 0 : 1;
}
