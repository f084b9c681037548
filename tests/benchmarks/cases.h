// Benchmark cases named GRAPH/PRESET[/hN]: a shared graph (ONNX) on a preset,
// with max_hops N (hC: the preset's chip count; no suffix: the preset's own).
// Shared by the solver and policy benchmarks; not a library API.
#ifndef MCMPART_TESTS_BENCHMARKS_CASES_H_
#define MCMPART_TESTS_BENCHMARKS_CASES_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/hardware.h"
#include "solver/problem.h"

namespace mcmpart::bench {

// The case's problem; the error names the case and the part that is wrong.
inline absl::StatusOr<Problem> LoadCase(const std::string& graphs_dir,
                                        const std::string& name) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  if (parts.size() < 2 || parts.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("case ", name, " is not GRAPH/PRESET[/hN]"));
  }
  absl::StatusOr<v1::Graph> proto =
      LoadGraphFile(absl::StrCat(graphs_dir, "/", parts[0], ".onnx"));
  if (!proto.ok()) return proto.status();
  absl::StatusOr<Graph> graph = Graph::FromProto(*proto);
  if (!graph.ok()) return graph.status();
  absl::StatusOr<v1::Hardware> hw = PresetHardware(parts[1]);
  if (!hw.ok()) return hw.status();
  v1::Constraints constraints = hw->constraints();
  if (parts.size() == 3) {
    int hops = 0;
    if (parts[2] == "hC") {
      hops = hw->chips_size();
    } else if (parts[2].size() < 2 || parts[2][0] != 'h' ||
               !absl::SimpleAtoi(parts[2].substr(1), &hops) || hops < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("case ", name, ": ", parts[2], " is not hN or hC"));
    }
    constraints.set_max_hops(hops);
  }
  return Problem::Create(std::make_shared<const Graph>(*std::move(graph)), *hw,
                         constraints);
}

// The wide and long-range suite (docs/benchmarks.md): every graph on ring4,
// ring8 and ring16 with max_hops 1, 2 and C.
inline std::string SuiteCases(const std::vector<std::string>& graphs) {
  std::vector<std::string> cases;
  for (const std::string& g : graphs) {
    for (const char* preset : {"ring4", "ring8", "ring16"}) {
      for (const char* hops : {"h1", "h2", "hC"}) {
        cases.push_back(absl::StrCat(g, "/", preset, "/", hops));
      }
    }
  }
  return absl::StrJoin(cases, ",");
}

}  // namespace mcmpart::bench

#endif  // MCMPART_TESTS_BENCHMARKS_CASES_H_
