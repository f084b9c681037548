#include "client/remote.h"

#include <grpc/support/log.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/common.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"
#include "solver/graph_io.h"
#include "solver/placement.h"

namespace mcmpart::cli {
namespace {

// Exit codes of the remote commands, beyond those in cli.h.
constexpr int kExitUnavailable = 5;  // server unreachable or shutting down
constexpr int kExitRefused = 6;      // server busy (queue full) or too large
constexpr int kExitServerError = 7;  // any other server-side failure
constexpr int kExitInterrupted = 130;

}  // namespace

const char kRemoteHelp[] =
    "  --server ADDR         mcmpart-server address (default: "
    "$MCMPART_SERVER,\n"
    "                        else localhost:50051)\n"
    "  --tls                 speak TLS, checking the server's certificate "
    "against\n"
    "                        the system roots (or --tls-ca)\n"
    "  --tls-ca FILE         PEM roots to check the server's certificate with\n"
    "  --tls-cert FILE       PEM client certificate chain, for mTLS\n"
    "  --tls-key FILE        PEM client private key, for mTLS\n"
    "  --timeout D           deadline of the call (default: 30s; for a search,"
    " its\n"
    "                        budget plus 30s)\n";

constexpr char kRemoteExitHelp[] =
    "Exit codes: 0 success, 2 bad input, 3 no valid placement exists, 4 no\n"
    "valid placement found in time, 5 server unreachable, 6 refused by a busy\n"
    "server or too large, 7 other server error, 130 interrupted (Ctrl-C; the\n"
    "best placement so far is still written).\n";

// What evaluate and repair add to the local exit codes with --server.
const char kServerExitHelp[] =
    "With --server: 5 server unreachable, 6 refused by a busy server or too\n"
    "large, 7 other server error.\n";

std::vector<FlagSpec> RemoteFlags() {
  return {{"server"},   {"tls", false}, {"tls-ca"},
          {"tls-cert"}, {"tls-key"},    {"timeout"}};
}

namespace {

std::vector<FlagSpec> Concat(std::vector<FlagSpec> a,
                             const std::vector<FlagSpec>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// Where the address came from, so that an unreachable server's message says
// which setting to fix.
struct Address {
  std::string address;
  std::string source;  // "--server", "MCMPART_SERVER" or "the default"
};

Address ServerAddress(const Args& args) {
  if (std::optional<std::string> s = args.Get("server")) {
    return {*s, "--server"};
  }
  if (const char* env = std::getenv("MCMPART_SERVER"); env && *env) {
    return {env, "MCMPART_SERVER"};
  }
  return {kDefaultServer, "the default"};
}

struct Connection {
  Address address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Partitioner::Stub> stub;
};

// gRPC logs transport errors (a failed TLS handshake, a refused connection)
// to stderr on its own; the command's message already says what went wrong,
// in words, so those lines are noise. GRPC_VERBOSITY, when the user sets it,
// keeps gRPC's own logging for debugging.
void QuietGrpcLogs() {
  const char* v = std::getenv("GRPC_VERBOSITY");
  if (v == nullptr || *v == '\0') {
    gpr_set_log_function([](gpr_log_func_args*) {});
  }
}

absl::StatusOr<Connection> Connect(const Args& args) {
  // Every remote command calls this before its first call: a malformed
  // --timeout is an error here rather than silently the default later.
  if (absl::StatusOr<absl::Duration> t =
          args.GetDuration("timeout", absl::Seconds(1));
      !t.ok()) {
    return t.status();
  }
  QuietGrpcLogs();
  Connection c;
  c.address = ServerAddress(args);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  const bool tls = args.Has("tls") || args.Has("tls-ca") ||
                   args.Has("tls-cert") || args.Has("tls-key");
  if (tls) {
    if (args.Has("tls-cert") != args.Has("tls-key")) {
      return absl::InvalidArgumentError(
          "--tls-cert and --tls-key go together (mTLS)");
    }
    grpc::SslCredentialsOptions options;
    for (auto [flag, field] : {std::pair<const char*, std::string*>{
                                   "tls-ca", &options.pem_root_certs},
                               {"tls-cert", &options.pem_cert_chain},
                               {"tls-key", &options.pem_private_key}}) {
      if (std::optional<std::string> path = args.Get(flag)) {
        absl::StatusOr<std::string> pem = ReadFile(*path, 1 << 20);
        if (!pem.ok()) return pem.status();
        *field = *std::move(pem);
      }
    }
    creds = grpc::SslCredentials(options);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(256 << 20);
  channel_args.SetMaxSendMessageSize(256 << 20);
  c.channel = grpc::CreateCustomChannel(c.address.address, creds, channel_args);
  c.stub = v1::Partitioner::NewStub(c.channel);
  return c;
}

int ExitCodeForGrpc(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return kExitOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::NOT_FOUND:
    case grpc::StatusCode::OUT_OF_RANGE:
      return kExitBadInput;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return kExitInfeasible;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return kExitNoSolution;
    case grpc::StatusCode::UNAVAILABLE:
      return kExitUnavailable;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return kExitRefused;
    case grpc::StatusCode::CANCELLED:
      return kExitInterrupted;
    default:
      return kExitServerError;
  }
}

// True when the call's own deadline (--timeout) has passed: a
// DEADLINE_EXCEEDED is then the client's limit, not the search budget's.
bool Expired(const grpc::ClientContext& ctx) {
  return std::chrono::system_clock::now() >= ctx.deadline();
}

// Reports a failed call in words a user can act on.
int FailRpc(absl::string_view command, const Connection& c,
            const grpc::Status& s, bool call_expired = false) {
  std::string message = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      // A connected channel means the server answered (it is draining);
      // otherwise no connection was made at all.
      if (c.channel->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
        message = absl::StrCat("mcmpart-server at ", c.address.address,
                               " is unavailable: ", message);
      } else {
        message = absl::StrCat(
            "cannot reach mcmpart-server at ", c.address.address, " (",
            c.address.source, "): ", message,
            "\n  Is it running? Start it with `mcmpart-server`, or give its "
            "address with --server ADDR or MCMPART_SERVER (and --tls or "
            "--tls-ca FILE if it speaks TLS).");
      }
      break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      message = absl::StrCat("the server refused the request: ", message);
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      message = absl::StrCat("no valid placement exists: ", message);
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      if (call_expired) {
        message = absl::StrCat("no answer within the call's deadline (",
                               message, "); raise --timeout");
      } else {
        message = absl::StrCat("no valid placement found: ", message,
                               "; try a larger --time-budget");
      }
      break;
    default:
      break;
  }
  std::cerr << "mcmpart " << command << ": " << message << "\n";
  return ExitCodeForGrpc(s.error_code());
}

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout) {
  ctx.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::microseconds(absl::ToInt64Microseconds(timeout)));
}

std::atomic<bool> g_interrupted{false};
extern "C" void OnSigint(int) { g_interrupted.store(true); }

// Shows the progress of a streamed search: one self-updating line on a
// terminal, one line per improvement otherwise. Only strictly better
// placements count as improvements: the final update repeats the best (and
// is shown only when the server coalesced it away before). Thread-safe: the
// stream's reader and the clock's ticker both draw.
class Progress {
 public:
  // `budget_s` 0 means unknown (watching a job someone else submitted).
  Progress(bool tty, double budget_s) : tty_(tty), budget_s_(budget_s) {}

  void Update(const v1::PartitionUpdate& u) {
    std::lock_guard<std::mutex> lock(mu_);
    if (u.placement().assignment().empty()) return;
    const double t = u.evaluation().throughput_per_s();
    if (have_ && !(t > last_.evaluation().throughput_per_s())) return;
    if (!have_) first_ = t;
    last_ = u;
    have_ = true;
    started_ = absl::Now() - absl::Seconds(u.elapsed_s());
    if (tty_) {
      DrawLocked(u.elapsed_s());
    } else {
      std::cerr << absl::StrFormat(
          "[%8s] throughput %.6g /s  quality %.4f  %+.1f%% over first  %lld "
          "samples%s\n",
          FormatSeconds(u.elapsed_s()), t, u.evaluation().quality(),
          100.0 * (t / first_ - 1), static_cast<long long>(u.samples()),
          u.from_cache() ? "  (from the server's cache)" : "");
    }
  }

  // Redraws the terminal line with the clock moving on, also before the
  // first valid placement so that a slow start does not look like a hang.
  void Tick() {
    std::lock_guard<std::mutex> lock(mu_);
    if (tty_) DrawLocked(absl::ToDoubleSeconds(absl::Now() - started_));
  }

  void Done() {
    std::lock_guard<std::mutex> lock(mu_);
    if (tty_ && drawn_) std::cerr << "\n";
  }

 private:
  void DrawLocked(double elapsed) {
    const std::string clock =
        budget_s_ > 0 ? absl::StrFormat("%.1fs / %gs", elapsed, budget_s_)
                      : absl::StrFormat("%.1fs", elapsed);
    if (!have_) {
      std::cerr << "\r\033[Ksearching, no valid placement yet  " << clock;
    } else {
      const double t = last_.evaluation().throughput_per_s();
      // The server sends only improvements: the rate is the one up to the
      // latest of them.
      const std::string rate =
          last_.from_cache()
              ? std::string("from the server's cache")
              : absl::StrFormat("%.0f samples/s",
                                last_.elapsed_s() > 0
                                    ? last_.samples() / last_.elapsed_s()
                                    : 0.0);
      std::cerr << absl::StrFormat(
          "\r\033[Kbest %.6g /s  quality %.4f  %+.1f%% over first  %s  %s", t,
          last_.evaluation().quality(), 100.0 * (t / first_ - 1), rate, clock);
    }
    std::cerr.flush();
    drawn_ = true;
  }

  std::mutex mu_;
  const bool tty_;
  const double budget_s_;
  double first_ = 0;
  bool have_ = false;
  bool drawn_ = false;
  v1::PartitionUpdate last_;
  absl::Time started_ = absl::Now();
};

struct StreamOutcome {
  grpc::Status status;
  std::optional<v1::PartitionUpdate> best;  // last update with a placement
  std::optional<v1::PartitionUpdate> final_update;
  bool interrupted = false;
  bool call_expired = false;
};

// Reads a stream of updates until it ends, drawing progress. Ctrl-C cancels
// the call (the server stops the work for Partition; a watch just detaches).
template <typename Reader>
StreamOutcome ReadStream(grpc::ClientContext& ctx, Reader& reader,
                         Progress& progress) {
  StreamOutcome out;
  std::atomic<bool> done{false};
  g_interrupted.store(false);
  auto previous = std::signal(SIGINT, OnSigint);
  std::thread ticker([&] {
    bool cancelled = false;
    int ticks = 0;
    while (!done.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      if (!cancelled && g_interrupted.load()) {
        ctx.TryCancel();
        cancelled = true;
      }
      if (++ticks % 4 == 0) progress.Tick();
    }
  });
  v1::PartitionUpdate u;
  while (reader.Read(&u)) {
    progress.Update(u);
    if (!u.placement().assignment().empty()) out.best = u;
    if (u.final()) out.final_update = u;
  }
  done.store(true);
  ticker.join();
  std::signal(SIGINT, previous);
  progress.Done();
  out.status = reader.Finish();
  out.interrupted = g_interrupted.load();
  out.call_expired = Expired(ctx);
  return out;
}

// The placement file: the best placement with its evaluation and how the
// search went.
v1::SearchReport MakeReport(const v1::PartitionUpdate& best,
                            const std::optional<v1::PartitionUpdate>& final,
                            uint64_t seed, absl::string_view end_reason) {
  v1::SearchReport r;
  *r.mutable_assignment() = best.placement().assignment();
  // The final update repeats the best placement with the bound the search
  // proved by its end.
  const bool same = final && final->has_evaluation() &&
                    final->evaluation().throughput_per_s() ==
                        best.evaluation().throughput_per_s();
  *r.mutable_evaluation() = same ? final->evaluation() : best.evaluation();
  r.set_strategy(best.strategy());
  r.set_seed(seed);
  const v1::PartitionUpdate& last = final ? *final : best;
  r.set_samples(last.samples());
  r.set_elapsed_s(last.elapsed_s());
  r.set_end_reason(std::string(end_reason));
  return r;
}

// The same message as the local commands give for a bad placement file.

// The headline figures of an evaluation, for when the graph is not at hand.
void PrintBrief(const v1::Evaluation& e, std::ostream& out) {
  out << absl::StrFormat(
      "%s placement: throughput %.6g /s, quality %.4f of the upper bound "
      "%.6g /s, bottleneck %s (%s), latency %s, %d chips used\n",
      e.valid() ? "VALID" : "INVALID", e.throughput_per_s(), e.quality(),
      e.upper_bound_per_s(), e.bottleneck(), FormatSeconds(e.bottleneck_s()),
      FormatSeconds(e.latency_s()), e.chips_used());
  if (const std::string how = Optimality(e); !how.empty()) {
    out << "  " << how << "\n";
  }
}

struct SearchFlags {
  v1::PartitionRequest request;
  absl::Duration budget;
};

std::vector<FlagSpec> SearchFlagSpecs() {
  return {{"strategy"},    {"time-budget"},
          {"samples"},     {"seed"},
          {"policy"},      {"no-fine-tune", false},
          {"json", false}, {"out", true, false, "o"}};
}

constexpr char kSearchHelp[] =
    "  --strategy NAME       auto (exact search, then annealing and the\n"
    "                        policy), exact, rl (the learned policy), anneal,\n"
    "                        random or constructive (default: the server's,\n"
    "                        auto unless started with another --strategy)\n"
    "  --time-budget D       search time (default 30s)\n"
    "  --samples N           stop after N candidates (default: no limit)\n"
    "  --seed N              random seed (default 0)\n"
    "  --policy NAME         pre-trained policy for rl (default: the "
    "server's)\n"
    "  --no-fine-tune        rl: use the pre-trained policy as it is\n"
    "  --out FILE            write the best placement file "
    "(mcmpart.v1.SearchReport)\n"
    "  --json                print the best placement file\n";

absl::StatusOr<SearchFlags> ParseSearchFlags(const Args& args,
                                             const v1::ProblemSpec& spec) {
  SearchFlags f;
  v1::PartitionRequest& r = f.request;
  *r.mutable_problem() = spec;
  r.set_strategy(args.Get("strategy").value_or(""));
  absl::StatusOr<absl::Duration> budget =
      args.GetDuration("time-budget", absl::Seconds(30));
  if (!budget.ok()) return budget.status();
  f.budget = *budget;
  r.mutable_budget()->set_time_s(absl::ToDoubleSeconds(*budget));
  absl::StatusOr<int64_t> samples =
      args.GetInt("samples", 0, 1, int64_t{1} << 40);
  if (!samples.ok()) return samples.status();
  r.mutable_budget()->set_samples(*samples);
  absl::StatusOr<int64_t> seed =
      args.GetInt("seed", 0, 0, std::numeric_limits<int64_t>::max());
  if (!seed.ok()) return seed.status();
  r.set_seed(static_cast<uint64_t>(*seed));
  r.set_policy(args.Get("policy").value_or(""));
  if (args.Has("no-fine-tune")) r.set_fine_tune(false);
  return f;
}

// Prints the outcome of a streamed search and writes the placement file.
// `problem` may be null (watching a job whose graph is not at hand).
int FinishStream(absl::string_view command, const Connection& c,
                 const Args& args, const StreamOutcome& out,
                 const Problem* problem, uint64_t seed, bool detach_on_ctrl_c) {
  if (out.interrupted && detach_on_ctrl_c) {
    std::cerr << "mcmpart " << command << ": detached; the job goes on\n";
  }
  const bool ended_ok = out.status.ok();
  if (!ended_ok && !out.interrupted && !out.best) {
    return FailRpc(command, c, out.status, out.call_expired);
  }
  if (!out.best) {
    if (out.interrupted) {
      std::cerr << "mcmpart " << command
                << ": interrupted before any valid placement was found\n";
      return kExitInterrupted;
    }
    std::cerr << "mcmpart " << command
              << ": no valid placement found within the budget ("
              << (out.final_update ? out.final_update->end_reason() : "")
              << "); try a larger --time-budget\n";
    return kExitNoSolution;
  }
  std::string end_reason =
      out.final_update  ? out.final_update->end_reason()
      : out.interrupted ? (detach_on_ctrl_c ? "detached" : "cancelled")
      : grpc::StatusCode::DEADLINE_EXCEEDED == out.status.error_code()
          ? "deadline"
          : "error";
  v1::SearchReport report =
      MakeReport(*out.best, out.final_update, seed, end_reason);
  if (std::optional<std::string> path = args.Get("out")) {
    if (absl::Status s = WriteFile(*path, ToJson(report) + "\n"); !s.ok()) {
      return Fail(command, s);
    }
  }
  if (args.Has("json")) {
    std::cout << ToJson(report) << "\n";
  } else {
    if (report.end_reason() == "cached") {
      std::cout << report.strategy()
                << ": answered from the server's cache, no search ran\n\n";
    } else if (!out.final_update) {
      // The stream ended early (Ctrl-C, a detach, a failure): the figures
      // known are those of the best placement, not of the whole search.
      std::cout << absl::StrFormat(
          "%s: %s; the best placement was found after %lld samples in %s\n\n",
          report.strategy(),
          out.interrupted ? (detach_on_ctrl_c ? "detached" : "interrupted")
                          : "the stream broke off",
          static_cast<long long>(report.samples()),
          FormatSeconds(report.elapsed_s()));
    } else {
      std::cout << absl::StrFormat(
          "%s: %lld samples in %s, ended by %s%s\n\n", report.strategy(),
          static_cast<long long>(report.samples()),
          FormatSeconds(report.elapsed_s()), report.end_reason(),
          out.best->from_cache() ? " (started from the server's cache)" : "");
    }
    absl::StatusOr<Assignment> p =
        problem ? AssignmentFromProto(*problem, out.best->placement())
                : absl::StatusOr<Assignment>(absl::NotFoundError(""));
    if (p.ok()) {
      PrintEvaluation(*problem, *p, report.evaluation(), std::cout);
    } else {
      PrintBrief(report.evaluation(), std::cout);
    }
    if (std::optional<std::string> path = args.Get("out")) {
      std::cout << "\nplacement written to " << *path << "\n";
    }
  }
  if (out.interrupted) {
    if (!detach_on_ctrl_c) {
      std::cerr << "mcmpart " << command
                << ": interrupted; the search on the server was stopped and "
                   "its best placement kept\n";
    }
    return kExitInterrupted;
  }
  if (!ended_ok) return FailRpc(command, c, out.status, out.call_expired);
  return kExitOk;
}

// --timeout, else the budget plus 30 s. Connect has already checked the
// flag, so a bad value cannot reach here.
absl::Duration CallTimeout(const Args& args, absl::Duration budget) {
  absl::StatusOr<absl::Duration> t =
      args.GetDuration("timeout", budget + absl::Seconds(30));
  return t.ok() ? *t : budget + absl::Seconds(30);
}

}  // namespace

int RunPartition(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart partition GRAPH (--preset NAME [--chips N] | --hardware "
      "FILE)\n"
      "         [--server ADDR] [--strategy NAME] [--time-budget 30s]\n"
      "         [--samples N] [--seed N] [--pin NODE=CHIP ...] [--out FILE] "
      "[--json]\n\n"
      "Asks mcmpart-server for the best placement it can find within the "
      "budget,\nshowing progress as improvements stream in. Ctrl-C stops the "
      "search on the\nserver and still writes the best placement so far.\n",
      kGraphHelp, kHardwareHelp, kSearchHelp, kRemoteHelp, "\n",
      kRemoteExitHelp);
  absl::StatusOr<Args> args = Args::Parse(
      argv, Concat(Concat(ProblemFlags(), SearchFlagSpecs()), RemoteFlags()));
  if (!args.ok()) return Usage("partition", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage("partition", "expected exactly one GRAPH", help);
  }
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("partition", loaded.status());
  absl::StatusOr<SearchFlags> flags = ParseSearchFlags(*args, loaded->spec);
  if (!flags.ok()) return Fail("partition", flags.status());
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("partition", c.status());

  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, flags->budget));
  auto reader = c->stub->Partition(&ctx, flags->request);
  Progress progress(isatty(STDERR_FILENO) == 1,
                    absl::ToDoubleSeconds(flags->budget));
  StreamOutcome out = ReadStream(ctx, *reader, progress);
  return FinishStream("partition", *c, *args, out, loaded->problem.get(),
                      flags->request.seed(), /*detach_on_ctrl_c=*/false);
}

namespace {

std::string StateName(v1::Job::State s) {
  std::string name = v1::Job::State_Name(s);
  for (char& ch : name) ch = static_cast<char>(std::tolower(ch));
  return name;
}

void PrintJob(const v1::Job& job, std::ostream& out) {
  out << absl::StrFormat("job %s: %s", job.id(), StateName(job.state()));
  if (!job.end_reason().empty()) out << " (" << job.end_reason() << ")";
  out << absl::StrFormat("\n  %s on %s, %d nodes, strategy %s\n",
                         job.graph_name(), job.hardware_name(), job.num_nodes(),
                         job.strategy());
  if (job.has_best() && job.best().has_evaluation()) {
    out << "  best: ";
    PrintBrief(job.best().evaluation(), out);
    out << absl::StrFormat("  %lld samples in %s\n",
                           static_cast<long long>(job.best().samples()),
                           FormatSeconds(job.best().elapsed_s()));
  }
  if (!job.error_message().empty()) {
    out << "  error: " << job.error_message() << "\n";
  }
}

int RunJobsSubmit(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart jobs submit GRAPH (--preset NAME [--chips N] | "
      "--hardware FILE)\n"
      "         [search flags] [--watch]\n\n"
      "Starts a search as a job on the server and prints its id at once\n"
      "(with --json, the job as mcmpart.v1.Job). --out and --json then apply "
      "to\n--watch.\n",
      kGraphHelp, kHardwareHelp, kSearchHelp,
      "  --watch               then watch it (as `mcmpart jobs watch ID`)\n",
      kRemoteHelp, "\n", kRemoteExitHelp);
  std::vector<FlagSpec> specs =
      Concat(Concat(ProblemFlags(), SearchFlagSpecs()), RemoteFlags());
  specs.push_back({"watch", false});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("jobs submit", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage("jobs submit", "expected exactly one GRAPH", help);
  }
  if (args->Has("out") && !args->Has("watch")) {
    return Usage("jobs submit",
                 "--out goes with --watch (a new job has no placement yet; "
                 "`mcmpart jobs watch ID --out FILE` later)",
                 help);
  }
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("jobs submit", loaded.status());
  absl::StatusOr<SearchFlags> flags = ParseSearchFlags(*args, loaded->spec);
  if (!flags.ok()) return Fail("jobs submit", flags.status());
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("jobs submit", c.status());
  v1::SubmitJobRequest request;
  *request.mutable_request() = flags->request;
  v1::Job job;
  {
    grpc::ClientContext ctx;
    SetDeadline(ctx, CallTimeout(*args, absl::ZeroDuration()));
    grpc::Status s = c->stub->SubmitJob(&ctx, request, &job);
    if (!s.ok()) return FailRpc("jobs submit", *c, s, Expired(ctx));
  }
  // stdout stays one thing a script can parse: the id, the job, or (when
  // watching with --json) the placement file, with the id on stderr.
  const bool json = args->Has("json");
  const bool watching = args->Has("watch");
  if (!watching) {
    std::cout << (json ? ToJson(job) : job.id()) << "\n";
    return kExitOk;
  }
  if (json) {
    std::cerr << "mcmpart jobs submit: job " << job.id() << "\n";
  } else {
    std::cout << job.id() << "\n";
    std::cout.flush();
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, flags->budget));
  v1::WatchJobRequest watch;
  watch.set_id(job.id());
  auto reader = c->stub->WatchJob(&ctx, watch);
  Progress progress(isatty(STDERR_FILENO) == 1,
                    absl::ToDoubleSeconds(flags->budget));
  StreamOutcome out = ReadStream(ctx, *reader, progress);
  return FinishStream("jobs submit", *c, *args, out, loaded->problem.get(),
                      flags->request.seed(), /*detach_on_ctrl_c=*/true);
}

int RunJobsWatch(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart jobs watch ID [--out FILE] [--json]\n\n"
      "Streams a job's best placement and each improvement until it ends.\n"
      "Ctrl-C detaches; the job goes on (watch again to re-attach).\n"
      "  --out FILE            write the best placement file\n"
      "  --json                print the best placement file\n",
      kRemoteHelp, "\n", kRemoteExitHelp);
  std::vector<FlagSpec> specs = RemoteFlags();
  specs.push_back({"out", true, false, "o"});
  specs.push_back({"json", false});
  specs.push_back({"help", false, false, "h"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("jobs watch", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage("jobs watch", "expected exactly one job ID", help);
  }
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("jobs watch", c.status());
  grpc::ClientContext ctx;
  if (args->Has("timeout"))
    SetDeadline(ctx, CallTimeout(*args, absl::ZeroDuration()));
  v1::WatchJobRequest watch;
  watch.set_id(args->positional()[0]);
  auto reader = c->stub->WatchJob(&ctx, watch);
  Progress progress(isatty(STDERR_FILENO) == 1, 0);
  StreamOutcome out = ReadStream(ctx, *reader, progress);
  return FinishStream("jobs watch", *c, *args, out, nullptr, 0,
                      /*detach_on_ctrl_c=*/true);
}

// get, cancel: one id in, one job out.
int RunJobsUnary(absl::string_view verb, const std::vector<std::string>& argv) {
  const std::string command = absl::StrCat("jobs ", verb);
  const std::string help = absl::StrCat(
      "Usage: mcmpart jobs ", verb, " ID [--json]\n\n",
      verb == "get" ? "Shows a job's state and best placement.\n"
                    : "Stops a job; it ends with its best placement.\n",
      "  --json                print the job (mcmpart.v1.Job)\n", kRemoteHelp,
      "\n", kRemoteExitHelp);
  std::vector<FlagSpec> specs = RemoteFlags();
  specs.push_back({"json", false});
  specs.push_back({"help", false, false, "h"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage(command, args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage(command, "expected exactly one job ID", help);
  }
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail(command, c.status());
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, absl::ZeroDuration()));
  v1::Job job;
  grpc::Status s;
  if (verb == "get") {
    v1::GetJobRequest r;
    r.set_id(args->positional()[0]);
    s = c->stub->GetJob(&ctx, r, &job);
  } else {
    v1::CancelJobRequest r;
    r.set_id(args->positional()[0]);
    s = c->stub->CancelJob(&ctx, r, &job);
  }
  if (!s.ok()) return FailRpc(command, *c, s, Expired(ctx));
  if (args->Has("json")) {
    std::cout << ToJson(job) << "\n";
  } else {
    PrintJob(job, std::cout);
  }
  return kExitOk;
}

int RunJobsList(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart jobs list [--state STATE ...] [--limit N] [--json]\n\n"
      "Lists the server's jobs, newest first.\n"
      "  --state STATE         queued, running, succeeded, failed or "
      "cancelled\n"
      "                        (repeatable)\n"
      "  --limit N             at most N jobs (default 100)\n"
      "  --json                print mcmpart.v1.ListJobsResponse\n",
      kRemoteHelp, "\n", kRemoteExitHelp);
  std::vector<FlagSpec> specs = RemoteFlags();
  specs.push_back({"state", true, true});
  specs.push_back({"limit"});
  specs.push_back({"json", false});
  specs.push_back({"help", false, false, "h"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("jobs list", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  v1::ListJobsRequest request;
  for (const std::string& state : args->GetAll("state")) {
    v1::Job::State s;
    std::string upper = state;
    for (char& ch : upper) ch = static_cast<char>(std::toupper(ch));
    if (!v1::Job::State_Parse(upper, &s) || s == v1::Job::STATE_UNSPECIFIED) {
      return Fail(
          "jobs list",
          absl::InvalidArgumentError(absl::StrCat(
              "--state is '", state,
              "'; use queued, running, succeeded, failed or cancelled")));
    }
    request.add_states(s);
  }
  absl::StatusOr<int64_t> limit = args->GetInt("limit", 100, 1, 100000);
  if (!limit.ok()) return Fail("jobs list", limit.status());
  request.set_limit(static_cast<int>(*limit));
  request.set_omit_placements(true);
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("jobs list", c.status());
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, absl::ZeroDuration()));
  v1::ListJobsResponse response;
  grpc::Status s = c->stub->ListJobs(&ctx, request, &response);
  if (!s.ok()) return FailRpc("jobs list", *c, s, Expired(ctx));
  if (args->Has("json")) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat("%-20s %-10s %-9s %-20s %-12s %7s %12s %8s\n",
                               "ID", "STATE", "STRATEGY", "GRAPH", "HARDWARE",
                               "NODES", "BEST/S", "QUALITY");
  for (const v1::Job& job : response.jobs()) {
    const bool has = job.best().has_evaluation();
    std::cout << absl::StrFormat(
        "%-20s %-10s %-9s %-20s %-12s %7d %12s %8s\n", job.id(),
        StateName(job.state()), job.strategy(), job.graph_name(),
        job.hardware_name(), job.num_nodes(),
        has ? absl::StrFormat("%.6g",
                              job.best().evaluation().throughput_per_s())
            : "-",
        has ? absl::StrFormat("%.4f", job.best().evaluation().quality()) : "-");
  }
  return kExitOk;
}

}  // namespace

int RunJobs(const std::vector<std::string>& argv) {
  const std::string help =
      "Usage: mcmpart jobs submit|watch|get|list|cancel ...\n\n"
      "Long-running searches on mcmpart-server that outlive the call:\n"
      "  submit    start a job, print its id (--watch to follow it)\n"
      "  watch     stream a job's best placement and improvements; re-attach "
      "at will\n"
      "  get       a job's state and best placement\n"
      "  list      the server's jobs, newest first\n"
      "  cancel    stop a job; it keeps its best placement\n"
      "(mcmpart jobs VERB --help for details)\n";
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << help;
    return argv.empty() ? kExitBadInput : kExitOk;
  }
  std::vector<std::string> rest(argv.begin() + 1, argv.end());
  if (argv[0] == "submit") return RunJobsSubmit(rest);
  if (argv[0] == "watch") return RunJobsWatch(rest);
  if (argv[0] == "get") return RunJobsUnary("get", rest);
  if (argv[0] == "cancel") return RunJobsUnary("cancel", rest);
  if (argv[0] == "list") return RunJobsList(rest);
  return Usage("jobs", absl::StrCat("unknown verb '", argv[0], "'"), help);
}

int RunPolicies(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart policies [--json]\n\n"
      "Lists the pre-trained policies the server keeps warm, and its "
      "strategies.\n",
      kRemoteHelp, "\n", kRemoteExitHelp);
  std::vector<FlagSpec> specs = RemoteFlags();
  specs.push_back({"json", false});
  specs.push_back({"help", false, false, "h"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("policies", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  absl::StatusOr<Connection> c = Connect(*args);
  if (!c.ok()) return Fail("policies", c.status());
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(*args, absl::ZeroDuration()));
  v1::ListPoliciesResponse response;
  grpc::Status s = c->stub->ListPolicies(&ctx, {}, &response);
  if (!s.ok()) return FailRpc("policies", *c, s, Expired(ctx));
  if (args->Has("json")) {
    std::cout << ToJson(response) << "\n";
    return kExitOk;
  }
  std::cout << "policies:\n";
  for (const v1::PolicyInfo& p : response.policies()) {
    std::cout << absl::StrFormat("  %-16s %s%s\n", p.name(),
                                 p.is_default() ? "(default) " : "",
                                 p.description());
  }
  if (response.policies().empty()) std::cout << "  (none loaded)\n";
  std::cout << "strategies:";
  for (int i = 0; i < response.strategies_size(); ++i) {
    std::cout << " " << response.strategies(i) << (i == 0 ? " (default)" : "");
  }
  std::cout << "\n";
  return kExitOk;
}

std::optional<v1::Evaluation> EvaluateOnServer(const Args& args,
                                               const v1::ProblemSpec& spec,
                                               const v1::Placement& placement,
                                               int* exit_code) {
  v1::EvaluateRequest request;
  *request.mutable_problem() = spec;
  *request.mutable_placement() = placement;
  absl::StatusOr<Connection> c = Connect(args);
  if (!c.ok()) {
    *exit_code = Fail("evaluate", c.status());
    return std::nullopt;
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(args, absl::ZeroDuration()));
  v1::Evaluation e;
  grpc::Status s = c->stub->Evaluate(&ctx, request, &e);
  if (!s.ok()) {
    *exit_code = FailRpc("evaluate", *c, s, Expired(ctx));
    return std::nullopt;
  }
  return e;
}

std::optional<v1::RepairReport> RepairOnServer(const Args& args,
                                               const v1::ProblemSpec& spec,
                                               const v1::Placement& candidate,
                                               absl::Duration time_limit,
                                               int* exit_code) {
  v1::RepairRequest request;
  *request.mutable_problem() = spec;
  *request.mutable_candidate() = candidate;
  request.set_time_limit_s(absl::ToDoubleSeconds(time_limit));
  absl::StatusOr<Connection> c = Connect(args);
  if (!c.ok()) {
    *exit_code = Fail("repair", c.status());
    return std::nullopt;
  }
  grpc::ClientContext ctx;
  SetDeadline(ctx, CallTimeout(args, time_limit));
  v1::RepairReport report;
  grpc::Status s = c->stub->Repair(&ctx, request, &report);
  if (!s.ok()) {
    *exit_code = FailRpc("repair", *c, s, Expired(ctx));
    return std::nullopt;
  }
  return report;
}

}  // namespace mcmpart::cli
