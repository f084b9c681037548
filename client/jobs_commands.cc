// mcmpart jobs: submit, watch, get, cancel and list searches kept on the
// server as jobs.
#include <unistd.h>

#include <cctype>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/common.h"
#include "client/connection.h"
#include "client/exit_codes.h"
#include "client/progress.h"
#include "client/search_output.h"
#include "solver/graph_io.h"

namespace mcmpart::cli {
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
  std::vector<FlagSpec> specs = ConcatFlags(
      ConcatFlags(ProblemFlags(), SearchFlagSpecs()), RemoteFlags());
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

}  // namespace mcmpart::cli
