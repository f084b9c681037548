#include "client/common.h"

#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "solver/bound.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem_spec.h"

namespace mcmpart::cli {

const char kGraphHelp[] =
    "  GRAPH                 .onnx, .json (mcmpart.v1.Graph JSON) or .pb\n"
    "  --batch N             value of dynamic ONNX dimensions (default 1)\n"
    "  --dim NAME=N          value of the named dynamic ONNX dimension "
    "(repeatable)\n";
const char kHardwareHelp[] =
    "  --preset NAME         hardware preset: ring4, ring8, ring16\n"
    "  --chips N             with --preset: a ring of N preset chips\n"
    "  --hardware FILE       hardware as mcmpart.v1.Hardware JSON\n"
    "  --max-hops N          largest chip distance of an edge (default 1)\n"
    "  --use-all-chips       every chip must hold a node\n"
    "  --pin NODE=CHIP       run NODE on CHIP (repeatable)\n";
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
  return cli::ExitCodeFor(s.code(), ErrorSource::kLocal);
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

namespace {

// --preset/--chips or --hardware into `spec`; the constraints they carry
// (none for a preset) into `constraints`.
absl::Status HardwareFromFlags(const Args& args, v1::ProblemSpec* spec,
                               v1::Constraints* constraints) {
  const bool preset = args.Has("preset");
  if (preset == args.Has("hardware")) {
    return absl::InvalidArgumentError(
        "give exactly one of --preset NAME or --hardware FILE");
  }
  if (preset) {
    absl::StatusOr<int64_t> chips = args.GetInt("chips", 0, 1, kMaxChips);
    if (!chips.ok()) return chips.status();
    spec->set_preset(*args.Get("preset"));
    spec->set_chips(static_cast<int>(*chips));
    return absl::OkStatus();
  }
  if (args.Has("chips")) {
    return absl::InvalidArgumentError("--chips goes with --preset");
  }
  absl::StatusOr<v1::Hardware> h = LoadHardwareFile(*args.Get("hardware"));
  if (!h.ok()) return h.status();
  *constraints = h->constraints();
  *spec->mutable_hardware() = *std::move(h);
  return absl::OkStatus();
}

// --max-hops, --use-all-chips and --pin on top of `c`.
absl::Status ApplyConstraintFlags(const Args& args, v1::Constraints* c) {
  if (args.Has("max-hops")) {
    absl::StatusOr<int64_t> hops = args.GetInt("max-hops", 1, 1, kMaxChips);
    if (!hops.ok()) return hops.status();
    c->set_max_hops(static_cast<int>(*hops));
  }
  if (args.Has("use-all-chips")) c->set_use_all_chips(true);
  for (const std::string& pin : args.GetAll("pin")) {
    size_t eq = pin.rfind('=');
    int chip;
    if (eq == std::string::npos || eq == 0 ||
        !absl::SimpleAtoi(pin.substr(eq + 1), &chip)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--pin is '", pin, "'; use NODE=CHIP"));
    }
    (*c->mutable_pins())[pin.substr(0, eq)] = chip;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::ProblemSpec> SpecFromFlags(const Args& args,
                                              const std::string& path) {
  absl::StatusOr<OnnxImportOptions> onnx = ImportOptions(args);
  if (!onnx.ok()) return onnx.status();
  std::vector<std::string> warnings;
  absl::StatusOr<v1::Graph> graph = LoadGraphFile(path, *onnx, &warnings);
  for (const std::string& w : warnings) {
    std::cerr << "mcmpart: warning: " << w << "\n";
  }
  if (!graph.ok()) return graph.status();
  v1::ProblemSpec spec;
  *spec.mutable_graph() = *std::move(graph);
  v1::Constraints constraints;
  if (absl::Status s = HardwareFromFlags(args, &spec, &constraints); !s.ok()) {
    return s;
  }
  if (absl::Status s = ApplyConstraintFlags(args, &constraints); !s.ok()) {
    return s;
  }
  // Sent whole, so that the server applies exactly what was checked here.
  *spec.mutable_constraints() = std::move(constraints);
  return spec;
}

absl::StatusOr<Loaded> LoadProblem(const Args& args, const std::string& path) {
  absl::StatusOr<v1::ProblemSpec> spec = SpecFromFlags(args, path);
  if (!spec.ok()) return spec.status();
  ProblemSpecOptions options;
  options.max_nodes = std::numeric_limits<int>::max();  // no server here
  options.graph_label = path;
  absl::StatusOr<ResolvedProblem> resolved = ProblemFromSpec(*spec, options);
  if (!resolved.ok()) return resolved.status();
  Loaded out;
  out.spec = *std::move(spec);
  out.problem = std::move(resolved->problem);
  return out;
}

std::string Optimality(const v1::Evaluation& e) {
  if (!e.valid()) return "";
  const bool exact = e.bound_source() == "exact";
  if (e.proved_optimal()) {
    return exact ? "proved optimal (exact search)"
                 : "proved optimal (it reaches the compute bound)";
  }
  const double pct = 100 * e.gap();
  return absl::StrFormat(
      "at most %s%% below the best possible (proved bound %.6g /s, %s)",
      pct < 1 ? absl::StrFormat("%.2f", pct) : absl::StrFormat("%.1f", pct),
      e.bound_per_s(), exact ? "exact search" : "compute bound");
}

void CarryBound(const std::string& path, v1::Evaluation* e) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return;
  v1::SearchReport report;
  if (!ParseJson(*text, &report, /*ignore_unknown=*/true).ok()) return;
  const v1::Evaluation& saved = report.evaluation();
  if (saved.bound_source() != "exact" || !(saved.bound_per_s() > 0) ||
      !(e->throughput_per_s() > 0) ||
      std::abs(saved.throughput_per_s() / e->throughput_per_s() - 1) > 1e-9) {
    return;
  }
  TightenBound(1 / saved.bound_per_s(), e);
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
  if (const std::string how = Optimality(e); !how.empty()) {
    out << "  optimality  " << how << "\n";
  }
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

absl::Status InFile(const std::string& path, const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

void PrintRepair(const Problem& problem, absl::Span<const int> candidate,
                 absl::Span<const int> repaired, const v1::RepairReport& report,
                 std::ostream& out) {
  out << absl::StrFormat(
      "repaired: %d node%s moved (distance %g), %s, in %s\n",
      report.changed_nodes(), report.changed_nodes() == 1 ? "" : "s",
      report.distance(),
      report.optimal()
          ? "proved nearest"
          : absl::StrCat("best found before the ", report.limit(), " limit"),
      FormatSeconds(report.solve_s()));
  const Graph& g = problem.graph();
  constexpr int kShown = 20;
  int shown = 0;
  for (int v = 0; v < g.num_nodes() && shown < kShown; ++v) {
    if (candidate[v] >= 0 && candidate[v] != repaired[v]) {
      out << absl::StrFormat("  %s: chip %d -> %d\n", g.node_name(v),
                             candidate[v], repaired[v]);
      ++shown;
    }
  }
  if (report.changed_nodes() > shown) {
    out << "  ... and " << report.changed_nodes() - shown << " more\n";
  }
  out << "\n";
  PrintEvaluation(problem, repaired, report.evaluation(), out);
}

}  // namespace mcmpart::cli
