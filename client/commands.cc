#include "client/commands.h"

#include <iostream>
#include <limits>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/common.h"
#include "client/connection.h"
#include "client/report.h"
#include "solver/bound.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/repair.h"
#include "solver/strategy.h"

namespace mcmpart::cli {

std::string MainHelp() {
  return absl::StrCat(
      "mcmpart: partition ML model graphs across the chips of a "
      "multi-chip module.\n\n"
      "Usage: mcmpart COMMAND [ARGS]   (mcmpart COMMAND --help for details)\n\n"
      "Commands (local, no server needed):\n"
      "  convert    import an ONNX model into a graph file\n"
      "  evaluate   score a placement with the cost model and check it\n"
      "  repair     turn a candidate placement into the nearest valid one\n"
      "  search     find a good placement with a classical strategy\n"
      "  report     summarise a placement; draw it as SVG and Graphviz DOT\n\n"
      "Commands (with mcmpart-server; --server ADDR, else $MCMPART_SERVER, "
      "else localhost:50051):\n"
      "  partition  search placements on the server, streaming progress\n"
      "  jobs       submit, watch, get, list and cancel long-running jobs\n"
      "  policies   the server's pre-trained policies and strategies\n"
      "  evaluate, repair with --server run on the server\n\n",
      kExitHelp,
      "5 server unreachable, 6 refused by a busy server, 7 other server "
      "error,\n"
      "130 interrupted (Ctrl-C).\n");
}

int RunConvert(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart convert MODEL -o GRAPH.json|GRAPH.pb [--batch N] "
      "[--dim NAME=N]\n\n"
      "Imports MODEL (.onnx, or another graph file), checks it and writes "
      "it.\n",
      kGraphHelp, "  -o, --out FILE        output graph, .json or .pb\n\n",
      kExitHelp);
  std::vector<FlagSpec> specs = GraphFlags();
  specs.push_back({"out", true, false, "o"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("convert", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage("convert", "expected exactly one MODEL", help);
  }
  if (!args->Has("out")) return Usage("convert", "missing -o GRAPH", help);
  const std::string& in = args->positional()[0];
  absl::StatusOr<OnnxImportOptions> onnx = ImportOptions(*args);
  if (!onnx.ok()) return Fail("convert", onnx.status());
  std::vector<std::string> warnings;
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(in, *onnx, &warnings);
  for (const std::string& w : warnings) {
    std::cerr << "mcmpart convert: warning: " << w << "\n";
  }
  if (!proto.ok()) return Fail("convert", proto.status());
  absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
  if (!graph.ok()) {
    return Fail("convert", InFile(in, graph.status()));
  }
  if (absl::Status s = SaveGraphFile(*args->Get("out"), *proto); !s.ok()) {
    return Fail("convert", s);
  }
  double params = 0, flops = 0;
  for (int v = 0; v < graph->num_nodes(); ++v) {
    params += graph->param_bytes(v);
    flops += graph->flops(v);
  }
  std::cerr << absl::StrFormat(
      "%s: %d nodes, %d edges, %s of parameters, %.4g GFLOP per sample -> %s\n",
      proto->name(), graph->num_nodes(), graph->num_edges(),
      FormatBytesShort(params), flops / 1e9, *args->Get("out"));
  return kExitOk;
}

namespace {

// What evaluate, repair and report read: GRAPH and PLACEMENT, the first two
// positionals, as the problem the flags describe, the placement file and its
// assignment (`allow_missing` as for AssignmentFromProto). The file's
// errors are prefixed with its path.
struct PlacedProblem {
  Loaded loaded;
  v1::Placement placement;
  Assignment assignment;
};

absl::StatusOr<PlacedProblem> LoadPlacedProblem(const Args& args,
                                                bool allow_missing) {
  absl::StatusOr<Loaded> loaded = LoadProblem(args, args.positional()[0]);
  if (!loaded.ok()) return loaded.status();
  absl::StatusOr<v1::Placement> placement =
      LoadPlacementFile(args.positional()[1]);
  if (!placement.ok()) return placement.status();
  absl::StatusOr<Assignment> p =
      AssignmentFromProto(*loaded->problem, *placement, allow_missing);
  if (!p.ok()) return InFile(args.positional()[1], p.status());
  return PlacedProblem{*std::move(loaded), *std::move(placement),
                       *std::move(p)};
}

}  // namespace

int RunEvaluate(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart evaluate GRAPH PLACEMENT.json (--preset ... | "
      "--hardware ...)\n"
      "         [--server ADDR] [--json]\n\n"
      "Scores a placement with the cost model (docs/problem.md) and lists "
      "every\n"
      "broken constraint; on mcmpart-server with --server. PLACEMENT.json is\n"
      "{\"assignment\": {\"node\": chip, ...}}.\n",
      kGraphHelp, kHardwareHelp,
      "  --json                print one JSON object "
      "(mcmpart.v1.Evaluation)\n",
      kRemoteHelp, "\n", kExitHelp, kServerExitHelp);
  std::vector<FlagSpec> specs = ProblemFlags();
  for (const FlagSpec& f : RemoteFlags()) specs.push_back(f);
  specs.push_back({"json", false});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("evaluate", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 2) {
    return Usage("evaluate", "expected GRAPH and PLACEMENT", help);
  }
  absl::StatusOr<PlacedProblem> in =
      LoadPlacedProblem(*args, /*allow_missing=*/false);
  if (!in.ok()) return Fail("evaluate", in.status());
  const Loaded& loaded = in->loaded;
  const Assignment& p = in->assignment;
  v1::Evaluation e;
  if (args->Has("server")) {
    int exit_code = kExitOk;
    std::optional<v1::Evaluation> remote =
        EvaluateOnServer(*args, loaded.spec, in->placement, &exit_code);
    if (!remote) return exit_code;
    e = *std::move(remote);
  } else {
    e = Evaluator(*loaded.problem).Evaluate(p);
  }
  CarryBound(args->positional()[1], &e);
  if (args->Has("json")) {
    std::cout << ToJson(e) << "\n";
  } else {
    PrintEvaluation(*loaded.problem, p, e, std::cout);
  }
  return e.valid() ? kExitOk : kExitInvalid;
}

int RunRepair(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart repair GRAPH CANDIDATE.json (--preset ... | --hardware "
      "...)\n"
      "         [--time-limit 2s] [--server ADDR] [--out FILE] [--json]\n\n"
      "Finds the valid placement that moves the fewest nodes of CANDIDATE\n"
      "(a placement file; nodes it omits are free to go anywhere); on\n"
      "mcmpart-server with --server.\n",
      kGraphHelp, kHardwareHelp,
      "  --time-limit D        stop searching after D (default 2s), keeping "
      "the best\n"
      "  --out FILE            write the repaired placement file\n"
      "  --json                print the repaired placement file\n"
      "                        (mcmpart.v1.RepairReport)\n",
      kRemoteHelp, "\n", kExitHelp, kServerExitHelp);
  std::vector<FlagSpec> specs = ProblemFlags();
  for (const FlagSpec& f : RemoteFlags()) specs.push_back(f);
  specs.push_back({"json", false});
  specs.push_back({"time-limit"});
  specs.push_back({"out", true, false, "o"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("repair", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 2) {
    return Usage("repair", "expected GRAPH and CANDIDATE", help);
  }
  absl::StatusOr<absl::Duration> limit =
      args->GetDuration("time-limit", absl::Seconds(2));
  if (!limit.ok()) return Fail("repair", limit.status());
  absl::StatusOr<PlacedProblem> in =
      LoadPlacedProblem(*args, /*allow_missing=*/true);
  if (!in.ok()) return Fail("repair", in.status());
  const Problem& problem = *in->loaded.problem;
  const Assignment& q = in->assignment;

  v1::RepairReport report;
  if (args->Has("server")) {
    int exit_code = kExitOk;
    std::optional<v1::RepairReport> remote = RepairOnServer(
        *args, in->loaded.spec, in->placement, *limit, &exit_code);
    if (!remote) return exit_code;
    report = *std::move(remote);
  } else {
    std::vector<double> weights(q.size());
    for (size_t v = 0; v < q.size(); ++v) {
      weights[v] = q[v] >= 0 ? 1.0 : 0.0;
    }
    RepairOptions options;
    options.time_limit = *limit;
    absl::StatusOr<RepairResult> r = Repair(problem, q, weights, options);
    if (!r.ok()) return Fail("repair", r.status());
    report = MakeRepairReport(problem, *r);
  }
  if (std::optional<std::string> out = args->Get("out")) {
    if (absl::Status s = WriteFile(*out, ToJson(report) + "\n"); !s.ok()) {
      return Fail("repair", s);
    }
  }
  if (args->Has("json")) {
    std::cout << ToJson(report) << "\n";
    return kExitOk;
  }
  v1::Placement repaired;
  *repaired.mutable_assignment() = report.assignment();
  absl::StatusOr<Assignment> p = AssignmentFromProto(problem, repaired);
  if (!p.ok()) return Fail("repair", p.status());
  PrintRepair(problem, q, *p, report, std::cout);
  return kExitOk;
}

int RunReport(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart report GRAPH PLACEMENT.json (--preset NAME [--chips N] "
      "| --hardware FILE) [--svg FILE] [--dot FILE]\n\n"
      "Summarises a placement per chip (nodes, compute, memory) and per link\n"
      "(traffic, time), marking the bottleneck, and draws it.\n",
      kGraphHelp, kHardwareHelp,
      "  --svg FILE            picture of the chip pipeline\n"
      "  --dot FILE            Graphviz DOT of the graph coloured by chip\n\n",
      kExitHelp);
  std::vector<FlagSpec> specs = ProblemFlags();
  specs.push_back({"svg"});
  specs.push_back({"dot"});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("report", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 2) {
    return Usage("report", "expected GRAPH and PLACEMENT", help);
  }
  absl::StatusOr<PlacedProblem> in =
      LoadPlacedProblem(*args, /*allow_missing=*/false);
  if (!in.ok()) return Fail("report", in.status());
  const Problem& problem = *in->loaded.problem;
  const Assignment& p = in->assignment;
  Evaluator eval(problem);
  v1::Evaluation e = eval.Evaluate(p);
  CarryBound(args->positional()[1], &e);
  PrintEvaluation(problem, p, e, std::cout);
  if (std::optional<std::string> svg = args->Get("svg")) {
    if (absl::Status s = WriteFile(*svg, PipelineSvg(problem, p, e)); !s.ok()) {
      return Fail("report", s);
    }
    std::cout << "\npipeline picture: " << *svg << "\n";
  }
  if (std::optional<std::string> dot = args->Get("dot")) {
    if (absl::Status s = WriteFile(*dot, GraphDot(problem, p)); !s.ok()) {
      return Fail("report", s);
    }
    std::cout << "graph by chip (Graphviz): " << *dot << "\n";
  }
  return e.valid() ? kExitOk : kExitInvalid;
}

namespace {

std::string SearchHelp() {
  return absl::StrCat(
      "Usage: mcmpart search GRAPH (--preset NAME [--chips N] | --hardware "
      "FILE) [--strategy NAME] [--time-budget 10s] [--samples N] [--seed N] "
      "[--out FILE] [--json]\n\n"
      "Searches valid placements on this machine with a classical strategy "
      "and\n"
      "prints each improvement as it is found (to stderr). Every answer says "
      "how good\n"
      "it is: proved optimal, or at most how far below the best possible.\n",
      kGraphHelp, kHardwareHelp,
      "  --strategy NAME       auto (default: exact search first, then "
      "annealing),\n"
      "                        exact, anneal, constructive or random\n"
      "  --time-budget D       wall time to search (default 10s)\n"
      "  --samples N           stop after N candidates (default: no limit)\n"
      "  --seed N              random seed (default 0)\n"
      "  --out FILE            write the best placement file "
      "(mcmpart.v1.SearchReport)\n"
      "  --json                print the best placement file\n\n",
      kExitHelp);
}

// --time-budget, --samples and --seed.
absl::Status ParseLocalSearch(const Args& args, Budget* budget,
                              uint64_t* seed) {
  absl::StatusOr<absl::Duration> time =
      args.GetDuration("time-budget", absl::Seconds(10));
  if (!time.ok()) return time.status();
  budget->time = *time;
  absl::StatusOr<int64_t> samples =
      args.GetInt("samples", 0, 1, int64_t{1} << 40);
  if (!samples.ok()) return samples.status();
  budget->samples = *samples;
  absl::StatusOr<int64_t> s =
      args.GetInt("seed", 0, 0, std::numeric_limits<int64_t>::max());
  if (!s.ok()) return s.status();
  *seed = static_cast<uint64_t>(*s);
  return absl::OkStatus();
}

// Runs `strategy`, printing each improvement to stderr.
absl::StatusOr<StrategyResult> RunWithProgress(Strategy& strategy,
                                               const Problem& problem,
                                               const Budget& budget) {
  double first = 0;
  StopToken stop;
  return strategy.Run(problem, budget, stop, [&first](const Improvement& imp) {
    if (first == 0) first = imp.figures.throughput_per_s;
    std::cerr << absl::StrFormat(
        "[%8s] throughput %.6g /s  quality %.4f  %+.1f%% over first  "
        "%lld samples\n",
        FormatSeconds(absl::ToDoubleSeconds(imp.elapsed)),
        imp.figures.throughput_per_s, imp.figures.quality,
        100.0 * (imp.figures.throughput_per_s / first - 1),
        static_cast<long long>(imp.samples));
  });
}

v1::SearchReport LocalReport(const Problem& problem,
                             const StrategyResult& result,
                             absl::string_view strategy, uint64_t seed) {
  v1::SearchReport report;
  *report.mutable_assignment() =
      AssignmentToProto(problem.graph(), result.best).assignment();
  *report.mutable_evaluation() = Evaluator(problem).Evaluate(result.best);
  TightenBound(result.bound_s, report.mutable_evaluation());
  report.set_strategy(std::string(strategy));
  report.set_seed(seed);
  report.set_samples(result.samples);
  report.set_elapsed_s(absl::ToDoubleSeconds(result.elapsed));
  report.set_end_reason(std::string(EndReasonName(result.reason)));
  return report;
}

}  // namespace

int RunSearch(const std::vector<std::string>& argv) {
  const std::string help = SearchHelp();
  std::vector<FlagSpec> specs =
      ConcatFlags(ProblemFlags(), {{"json", false},
                                   {"strategy"},
                                   {"time-budget"},
                                   {"samples"},
                                   {"seed"},
                                   {"out", true, false, "o"}});
  absl::StatusOr<Args> args = Args::Parse(argv, specs);
  if (!args.ok()) return Usage("search", args.status().message(), help);
  if (args->Has("help")) {
    std::cout << help;
    return kExitOk;
  }
  if (args->positional().size() != 1) {
    return Usage("search", "expected exactly one GRAPH", help);
  }
  Budget budget;
  StrategyOptions options;
  if (absl::Status s = ParseLocalSearch(*args, &budget, &options.seed);
      !s.ok()) {
    return Fail("search", s);
  }
  absl::StatusOr<std::unique_ptr<Strategy>> strategy =
      MakeStrategy(args->Get("strategy").value_or("auto"), options);
  if (!strategy.ok()) return Fail("search", strategy.status());
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("search", loaded.status());
  const Problem& problem = *loaded->problem;
  absl::StatusOr<StrategyResult> result =
      RunWithProgress(**strategy, problem, budget);
  if (!result.ok()) return Fail("search", result.status());
  if (result->best.empty()) {
    return Fail("search",
                absl::DeadlineExceededError(absl::StrCat(
                    "no valid placement found in ",
                    FormatSeconds(absl::ToDoubleSeconds(result->elapsed)), " (",
                    result->samples, " samples); try a larger budget")));
  }
  const v1::SearchReport report =
      LocalReport(problem, *result, (*strategy)->name(), options.seed);
  if (std::optional<std::string> out = args->Get("out")) {
    if (absl::Status s = WriteFile(*out, ToJson(report) + "\n"); !s.ok()) {
      return Fail("search", s);
    }
  }
  if (args->Has("json")) {
    std::cout << ToJson(report) << "\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "%s: %lld samples in %s, ended by %s\n\n", report.strategy(),
      static_cast<long long>(report.samples()),
      FormatSeconds(report.elapsed_s()), report.end_reason());
  PrintEvaluation(problem, result->best, report.evaluation(), std::cout);
  return kExitOk;
}

}  // namespace mcmpart::cli
