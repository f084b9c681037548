#include "client/search_output.h"

#include <iostream>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/common.h"
#include "client/exit_codes.h"
#include "solver/graph_io.h"
#include "solver/placement.h"

namespace mcmpart::cli {
namespace {

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

// The readable summary of a streamed search's outcome.
void PrintSearchSummary(const v1::SearchReport& report,
                        const StreamOutcome& out, const Problem* problem,
                        const Args& args, bool detach_on_ctrl_c) {
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

}  // namespace

std::vector<FlagSpec> SearchFlagSpecs() {
  return {{"strategy"},    {"time-budget"},
          {"samples"},     {"seed"},
          {"policy"},      {"no-fine-tune", false},
          {"json", false}, {"out", true, false, "o"}};
}

const char kSearchHelp[] =
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
    PrintSearchSummary(report, out, problem, args, detach_on_ctrl_c);
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

}  // namespace mcmpart::cli
