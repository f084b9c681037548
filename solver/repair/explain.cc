#include "solver/repair/explain.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "solver/format.h"
#include "solver/repair/space.h"

namespace mcmpart::repair {

std::string ExplainCutInfeasible(const Problem& problem) {
  return absl::StrCat(
      "no valid placement exists: pins, colocation groups, acyclic dataflow "
      "and max_hops ",
      problem.max_hops(), " cannot all hold, whatever the memory");
}

std::string ExplainInfeasible(const Problem& problem, const Instance& in,
                              absl::Time deadline, const StopToken* stop) {
  std::vector<std::string> needed;
  std::vector<std::string> involved;
  auto check = [&](const std::string& name, Families f) {
    involved.push_back(name);
    const absl::Time d =
        std::min(deadline, absl::Now() + absl::Milliseconds(200));
    SearchSpec spec;
    spec.families = f;
    spec.first_only = true;
    SearchResult r = RunSearch(in, spec, d, 20000, stop, nullptr);
    if (r.found) needed.push_back(name);
  };
  Families f;
  f.memory = false;
  check("memory (with transit buffers)", f);
  if (problem.max_hops() < problem.num_chips() - 1) {
    f = Families();
    f.hops = false;
    check(absl::StrCat("max_hops ", problem.max_hops()), f);
  }
  bool any_pin = false;
  for (int v = 0; v < problem.num_nodes(); ++v) any_pin |= problem.pin(v) >= 0;
  if (any_pin) {
    f = Families();
    f.pins = false;
    check("pins", f);
  }
  if (!problem.colocation_groups().empty()) {
    f = Families();
    f.colocation = false;
    check("colocation groups", f);
  }
  if (problem.use_all_chips()) {
    f = Families();
    f.use_all = false;
    check("use_all_chips", f);
  }
  std::string msg = absl::StrCat(
      "no valid placement exists: the solver's search proved that acyclic "
      "dataflow, no skipping chips, ",
      absl::StrJoin(involved, ", "), " cannot all hold on ",
      problem.num_chips(), " chips");
  if (!needed.empty()) {
    absl::StrAppend(&msg, "; dropping any one of {",
                    absl::StrJoin(needed, "; "),
                    "} makes a placement possible");
  }
  double total = 0, sram = 0;
  for (int v = 0; v < problem.num_nodes(); ++v)
    total += problem.resident_bytes(v);
  for (int c = 0; c < problem.num_chips(); ++c) {
    sram += problem.hardware().chip(c).sram_bytes;
  }
  absl::StrAppend(&msg, " (parameters and outputs need ", FormatBytes(total),
                  " of ", FormatBytes(sram), " total SRAM, ",
                  absl::StrFormat("%.1f%%", 100.0 * total / sram), ")");
  return msg;
}

}  // namespace mcmpart::repair
