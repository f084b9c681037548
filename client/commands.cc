#include "client/commands.h"

#include <iostream>
#include <limits>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/cli.h"
#include "client/report.h"
#include "solver/evaluator.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/placement.h"
#include "solver/problem.h"
#include "solver/repair.h"
#include "solver/strategy.h"

namespace mcmpart::cli {
namespace {

constexpr char kGraphHelp[] =
    "  GRAPH                 .onnx, .json (mcmpart.v1.Graph JSON) or .pb\n"
    "  --batch N             value of dynamic ONNX dimensions (default 1)\n"
    "  --dim NAME=N          value of the named dynamic ONNX dimension "
    "(repeatable)\n";
constexpr char kHardwareHelp[] =
    "  --preset NAME         hardware preset: ring4, ring8, ring16\n"
    "  --chips N             with --preset: a ring of N preset chips\n"
    "  --hardware FILE       hardware as mcmpart.v1.Hardware JSON\n"
    "  --max-hops N          largest chip distance of an edge (default 1)\n"
    "  --use-all-chips       every chip must hold a node\n"
    "  --pin NODE=CHIP       run NODE on CHIP (repeatable)\n";
constexpr char kExitHelp[] =
    "Exit codes: 0 success (valid placement), 1 invalid placement (evaluate),\n"
    "2 bad input, 3 no valid placement exists, 4 a limit ended the search\n"
    "before any valid placement was found.\n";

std::vector<FlagSpec> GraphFlags() {
  return {{"batch"}, {"dim", true, true}, {"help", false, false, "h"}};
}

std::vector<FlagSpec> ProblemFlags() {
  std::vector<FlagSpec> f = GraphFlags();
  for (FlagSpec s : std::vector<FlagSpec>{{"preset"},
                                          {"chips"},
                                          {"hardware"},
                                          {"max-hops"},
                                          {"use-all-chips", false},
                                          {"pin", true, true}}) {
    f.push_back(s);
  }
  return f;
}

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kFailedPrecondition:
      return kExitInfeasible;
    case absl::StatusCode::kDeadlineExceeded:
      return kExitNoSolution;
    default:
      return kExitBadInput;
  }
}

int Fail(absl::string_view command, const absl::Status& s) {
  std::cerr << "mcmpart " << command << ": " << s.message() << "\n";
  return ExitCodeFor(s);
}

int Usage(absl::string_view command, absl::string_view message,
          absl::string_view help) {
  std::cerr << "mcmpart " << command << ": " << message << "\n\n" << help;
  return kExitBadInput;
}

absl::StatusOr<OnnxImportOptions> ImportOptions(const Args& args) {
  OnnxImportOptions o;
  absl::StatusOr<int64_t> batch = args.GetInt("batch", 1, 1, 1 << 20);
  if (!batch.ok()) return batch.status();
  o.default_dim = *batch;
  for (const std::string& d : args.GetAll("dim")) {
    std::pair<std::string, std::string> kv = absl::StrSplit(d, '=');
    int64_t value;
    if (kv.first.empty() || !absl::SimpleAtoi(kv.second, &value) || value < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--dim is '", d, "'; use NAME=N with N >= 1"));
    }
    o.dim_values[kv.first] = value;
  }
  return o;
}

struct Loaded {
  std::shared_ptr<const Graph> graph;
  std::unique_ptr<Problem> problem;
};

absl::StatusOr<std::shared_ptr<const Graph>> LoadGraph(
    const Args& args, const std::string& path) {
  absl::StatusOr<OnnxImportOptions> onnx = ImportOptions(args);
  if (!onnx.ok()) return onnx.status();
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(path, *onnx);
  if (!proto.ok()) return proto.status();
  absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
  if (!graph.ok()) {
    return absl::Status(graph.status().code(),
                        absl::StrCat(path, ": ", graph.status().message()));
  }
  return std::make_shared<const Graph>(*std::move(graph));
}

absl::StatusOr<v1::Hardware> LoadHardware(const Args& args) {
  const bool preset = args.Has("preset");
  const bool file = args.Has("hardware");
  if (preset == file) {
    return absl::InvalidArgumentError(
        "give exactly one of --preset NAME or --hardware FILE");
  }
  v1::Hardware hw;
  if (preset) {
    absl::StatusOr<int64_t> chips = args.GetInt("chips", 0, 1, kMaxChips);
    if (!chips.ok()) return chips.status();
    absl::StatusOr<v1::Hardware> p =
        PresetHardware(*args.Get("preset"), static_cast<int>(*chips));
    if (!p.ok()) return p.status();
    hw = *std::move(p);
  } else {
    if (args.Has("chips")) {
      return absl::InvalidArgumentError("--chips goes with --preset");
    }
    absl::StatusOr<v1::Hardware> h = LoadHardwareFile(*args.Get("hardware"));
    if (!h.ok()) return h.status();
    hw = *std::move(h);
  }
  v1::Constraints& c = *hw.mutable_constraints();
  if (args.Has("max-hops")) {
    absl::StatusOr<int64_t> hops = args.GetInt("max-hops", 1, 1, kMaxChips);
    if (!hops.ok()) return hops.status();
    c.set_max_hops(static_cast<int>(*hops));
  }
  if (args.Has("use-all-chips")) c.set_use_all_chips(true);
  for (const std::string& pin : args.GetAll("pin")) {
    size_t eq = pin.rfind('=');
    int chip;
    if (eq == std::string::npos || eq == 0 ||
        !absl::SimpleAtoi(pin.substr(eq + 1), &chip)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--pin is '", pin, "'; use NODE=CHIP"));
    }
    (*c.mutable_pins())[pin.substr(0, eq)] = chip;
  }
  return hw;
}

absl::StatusOr<Loaded> LoadProblem(const Args& args, const std::string& path) {
  Loaded out;
  absl::StatusOr<std::shared_ptr<const Graph>> graph = LoadGraph(args, path);
  if (!graph.ok()) return graph.status();
  out.graph = *graph;
  absl::StatusOr<v1::Hardware> hw = LoadHardware(args);
  if (!hw.ok()) return hw.status();
  absl::StatusOr<Problem> problem = Problem::Create(out.graph, *hw);
  if (!problem.ok()) return problem.status();
  out.problem = std::make_unique<Problem>(*std::move(problem));
  return out;
}

// The readable summary shared by evaluate and repair.
void PrintEvaluation(const Problem& problem, absl::Span<const int> p,
                     const v1::Evaluation& e, std::ostream& out) {
  const Graph& g = problem.graph();
  std::vector<int> nodes(problem.num_chips(), 0);
  for (int c : p) ++nodes[c];
  out << absl::StrFormat(
      "%s on %s: %d nodes, %d chips\n", g.name().empty() ? "graph" : g.name(),
      problem.hardware().name().empty() ? "hardware"
                                        : problem.hardware().name(),
      g.num_nodes(), problem.num_chips());
  out << (e.valid() ? "VALID placement\n"
                    : absl::StrFormat("INVALID placement: %d violation%s\n",
                                      e.violations_size(),
                                      e.violations_size() == 1 ? "" : "s"));
  out << absl::StrFormat(
      "  throughput  %.6g /s  (quality %.4f of the upper bound %.6g /s)\n",
      e.throughput_per_s(), e.quality(), e.upper_bound_per_s());
  out << absl::StrFormat("  bottleneck  %s, %s\n", e.bottleneck(),
                         FormatSeconds(e.bottleneck_s()));
  out << absl::StrFormat("  latency     %s\n", FormatSeconds(e.latency_s()));
  out << absl::StrFormat("  chips used  %d of %d\n\n", e.chips_used(),
                         problem.num_chips());
  out << "  chip  nodes  compute      memory / SRAM\n";
  for (int c = 0; c < problem.num_chips(); ++c) {
    const double sram = problem.hardware().chip(c).sram_bytes;
    const bool hot = e.bottleneck() == absl::StrCat("chip ", c);
    out << absl::StrFormat(
        "  %-4d  %-5d  %-11s  %s / %s  %5.1f%%%s\n", c, nodes[c],
        FormatSeconds(e.compute_s(c)), FormatBytesShort(e.memory_bytes(c)),
        FormatBytesShort(sram), 100.0 * e.memory_bytes(c) / sram,
        hot ? "  <- bottleneck" : "");
  }
  if (e.comm_s_size() > 0) {
    out << "  link   traffic      tensors  comm\n";
    for (int k = 0; k < e.comm_s_size(); ++k) {
      const bool hot = e.bottleneck() == absl::StrCat("link ", k);
      out << absl::StrFormat("  %d->%-3d %-11s  %-7d  %s%s\n", k, k + 1,
                             FormatBytesShort(e.link_bytes(k)),
                             e.link_tensors(k), FormatSeconds(e.comm_s(k)),
                             hot ? "  <- bottleneck" : "");
    }
  }
  if (!e.valid()) {
    constexpr int kShown = 20;
    out << "\nviolations:\n";
    for (int i = 0; i < e.violations_size() && i < kShown; ++i) {
      out << "  [" << e.violations(i).constraint() << "] "
          << e.violations(i).message() << "\n";
    }
    if (e.violations_size() > kShown) {
      out << "  ... and " << e.violations_size() - kShown
          << " more (all of them with --json)\n";
    }
  }
}

}  // namespace

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
      "  report     summarise a placement; draw it as SVG and Graphviz DOT\n\n",
      kExitHelp);
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
  absl::StatusOr<v1::Graph> proto = LoadGraphFile(in, *onnx);
  if (!proto.ok()) return Fail("convert", proto.status());
  absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
  if (!graph.ok()) {
    return Fail("convert",
                absl::Status(graph.status().code(),
                             absl::StrCat(in, ": ", graph.status().message())));
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

int RunEvaluate(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart evaluate GRAPH PLACEMENT.json (--preset NAME [--chips N] "
      "| --hardware FILE) [--json]\n\n"
      "Scores a placement with the cost model (docs/problem.md) and lists "
      "every\n"
      "broken constraint. PLACEMENT.json is {\"assignment\": {\"node\": chip, "
      "...}}.\n",
      kGraphHelp, kHardwareHelp,
      "  --json                print one JSON object "
      "(mcmpart.v1.Evaluation)\n\n",
      kExitHelp);
  std::vector<FlagSpec> specs = ProblemFlags();
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
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("evaluate", loaded.status());
  absl::StatusOr<v1::Placement> placement =
      LoadPlacementFile(args->positional()[1]);
  if (!placement.ok()) return Fail("evaluate", placement.status());
  absl::StatusOr<Assignment> p =
      AssignmentFromProto(*loaded->problem, *placement);
  if (!p.ok()) {
    return Fail("evaluate",
                absl::Status(p.status().code(),
                             absl::StrCat(args->positional()[1], ": ",
                                          p.status().message())));
  }
  Evaluator eval(*loaded->problem);
  v1::Evaluation e = eval.Evaluate(*p);
  if (args->Has("json")) {
    std::cout << ToJson(e) << "\n";
  } else {
    PrintEvaluation(*loaded->problem, *p, e, std::cout);
  }
  return e.valid() ? kExitOk : kExitInvalid;
}

int RunRepair(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart repair GRAPH CANDIDATE.json (--preset NAME [--chips N] | "
      "--hardware FILE) [--time-limit 2s] [--out FILE] [--json]\n\n"
      "Finds the valid placement that moves the fewest nodes of CANDIDATE\n"
      "(a placement file; nodes it omits are free to go anywhere).\n",
      kGraphHelp, kHardwareHelp,
      "  --time-limit D        stop searching after D (default 2s), keeping "
      "the "
      "best\n"
      "  --out FILE            write the repaired placement file\n"
      "  --json                print the repaired placement file "
      "(mcmpart.v1.RepairReport)\n\n",
      kExitHelp);
  std::vector<FlagSpec> specs = ProblemFlags();
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
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("repair", loaded.status());
  const Problem& problem = *loaded->problem;
  absl::StatusOr<v1::Placement> candidate =
      LoadPlacementFile(args->positional()[1]);
  if (!candidate.ok()) return Fail("repair", candidate.status());
  absl::StatusOr<Assignment> q =
      AssignmentFromProto(problem, *candidate, /*allow_missing=*/true);
  if (!q.ok()) {
    return Fail("repair", absl::Status(q.status().code(),
                                       absl::StrCat(args->positional()[1], ": ",
                                                    q.status().message())));
  }
  std::vector<double> weights(q->size());
  for (size_t v = 0; v < q->size(); ++v) weights[v] = (*q)[v] >= 0 ? 1.0 : 0.0;
  RepairOptions options;
  options.time_limit = *limit;
  absl::StatusOr<RepairResult> r = Repair(problem, *q, weights, options);
  if (!r.ok()) return Fail("repair", r.status());

  v1::RepairReport report;
  *report.mutable_assignment() =
      AssignmentToProto(problem.graph(), r->placement).assignment();
  report.set_distance(r->distance);
  report.set_changed_nodes(r->changed_nodes);
  report.set_optimal(r->optimal);
  report.set_solve_s(absl::ToDoubleSeconds(r->solve_time));
  report.set_limit(r->cancelled        ? "cancelled"
                   : r->time_limit_hit ? "time"
                   : r->fail_limit_hit ? "failures"
                                       : "");
  Evaluator eval(problem);
  *report.mutable_evaluation() = eval.Evaluate(r->placement);
  if (std::optional<std::string> out = args->Get("out")) {
    if (absl::Status s = WriteFile(*out, ToJson(report) + "\n"); !s.ok()) {
      return Fail("repair", s);
    }
  }
  if (args->Has("json")) {
    std::cout << ToJson(report) << "\n";
    return kExitOk;
  }
  std::cout << absl::StrFormat(
      "repaired: %d node%s moved (distance %g), %s, in %s\n",
      report.changed_nodes(), report.changed_nodes() == 1 ? "" : "s",
      report.distance(),
      r->optimal
          ? "proved nearest"
          : absl::StrCat("best found before the ", report.limit(), " limit"),
      FormatSeconds(report.solve_s()));
  const Graph& g = problem.graph();
  int shown = 0;
  for (int v = 0; v < g.num_nodes() && shown < 20; ++v) {
    if ((*q)[v] >= 0 && (*q)[v] != r->placement[v]) {
      std::cout << absl::StrFormat("  %s: chip %d -> %d\n", g.node_name(v),
                                   (*q)[v], r->placement[v]);
      ++shown;
    }
  }
  if (report.changed_nodes() > shown) {
    std::cout << "  ... and " << report.changed_nodes() - shown << " more\n";
  }
  std::cout << "\n";
  PrintEvaluation(problem, r->placement, report.evaluation(), std::cout);
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
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("report", loaded.status());
  absl::StatusOr<v1::Placement> placement =
      LoadPlacementFile(args->positional()[1]);
  if (!placement.ok()) return Fail("report", placement.status());
  absl::StatusOr<Assignment> p =
      AssignmentFromProto(*loaded->problem, *placement);
  if (!p.ok()) {
    return Fail("report", absl::Status(p.status().code(),
                                       absl::StrCat(args->positional()[1], ": ",
                                                    p.status().message())));
  }
  Evaluator eval(*loaded->problem);
  v1::Evaluation e = eval.Evaluate(*p);
  PrintEvaluation(*loaded->problem, *p, e, std::cout);
  if (std::optional<std::string> svg = args->Get("svg")) {
    if (absl::Status s = WriteFile(*svg, PipelineSvg(*loaded->problem, *p, e));
        !s.ok()) {
      return Fail("report", s);
    }
    std::cout << "\npipeline picture: " << *svg << "\n";
  }
  if (std::optional<std::string> dot = args->Get("dot")) {
    if (absl::Status s = WriteFile(*dot, GraphDot(*loaded->problem, *p));
        !s.ok()) {
      return Fail("report", s);
    }
    std::cout << "graph by chip (Graphviz): " << *dot << "\n";
  }
  return e.valid() ? kExitOk : kExitInvalid;
}

int RunSearch(const std::vector<std::string>& argv) {
  const std::string help = absl::StrCat(
      "Usage: mcmpart search GRAPH (--preset NAME [--chips N] | --hardware "
      "FILE) [--strategy NAME] [--time-budget 10s] [--samples N] [--seed N] "
      "[--out FILE] [--json]\n\n"
      "Searches valid placements on this machine with a classical strategy "
      "and\n"
      "prints each improvement as it is found (to stderr).\n",
      kGraphHelp, kHardwareHelp,
      "  --strategy NAME       constructive, anneal (default) or random\n"
      "  --time-budget D       wall time to search (default 10s)\n"
      "  --samples N           stop after N candidates (default: no limit)\n"
      "  --seed N              random seed (default 0)\n"
      "  --out FILE            write the best placement file "
      "(mcmpart.v1.SearchReport)\n"
      "  --json                print the best placement file\n\n",
      kExitHelp);
  std::vector<FlagSpec> specs = ProblemFlags();
  for (FlagSpec s : std::vector<FlagSpec>{{"json", false},
                                          {"strategy"},
                                          {"time-budget"},
                                          {"samples"},
                                          {"seed"},
                                          {"out", true, false, "o"}}) {
    specs.push_back(s);
  }
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
  absl::StatusOr<absl::Duration> time =
      args->GetDuration("time-budget", absl::Seconds(10));
  if (!time.ok()) return Fail("search", time.status());
  budget.time = *time;
  absl::StatusOr<int64_t> samples =
      args->GetInt("samples", 0, 1, int64_t{1} << 40);
  if (!samples.ok()) return Fail("search", samples.status());
  budget.samples = *samples;
  absl::StatusOr<int64_t> seed =
      args->GetInt("seed", 0, 0, std::numeric_limits<int64_t>::max());
  if (!seed.ok()) return Fail("search", seed.status());
  const std::string name = args->Get("strategy").value_or("anneal");
  StrategyOptions options;
  options.seed = static_cast<uint64_t>(*seed);
  absl::StatusOr<std::unique_ptr<Strategy>> strategy =
      MakeStrategy(name, options);
  if (!strategy.ok()) return Fail("search", strategy.status());
  absl::StatusOr<Loaded> loaded = LoadProblem(*args, args->positional()[0]);
  if (!loaded.ok()) return Fail("search", loaded.status());
  const Problem& problem = *loaded->problem;

  double first = 0;
  StopToken stop;
  absl::StatusOr<StrategyResult> result =
      (*strategy)->Run(problem, budget, stop, [&first](const Improvement& imp) {
        if (first == 0) first = imp.figures.throughput_per_s;
        std::cerr << absl::StrFormat(
            "[%8s] throughput %.6g /s  quality %.4f  %+.1f%% over first  "
            "%lld samples\n",
            FormatSeconds(absl::ToDoubleSeconds(imp.elapsed)),
            imp.figures.throughput_per_s, imp.figures.quality,
            100.0 * (imp.figures.throughput_per_s / first - 1),
            static_cast<long long>(imp.samples));
      });
  if (!result.ok()) return Fail("search", result.status());
  if (result->best.empty()) {
    return Fail("search",
                absl::DeadlineExceededError(absl::StrCat(
                    "no valid placement found in ",
                    FormatSeconds(absl::ToDoubleSeconds(result->elapsed)), " (",
                    result->samples, " samples); try a larger budget")));
  }
  v1::SearchReport report;
  *report.mutable_assignment() =
      AssignmentToProto(problem.graph(), result->best).assignment();
  Evaluator eval(problem);
  *report.mutable_evaluation() = eval.Evaluate(result->best);
  report.set_strategy(std::string((*strategy)->name()));
  report.set_seed(options.seed);
  report.set_samples(result->samples);
  report.set_elapsed_s(absl::ToDoubleSeconds(result->elapsed));
  report.set_end_reason(std::string(EndReasonName(result->reason)));
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
