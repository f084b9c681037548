#include "solver/strategy.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mcmpart {

absl::string_view EndReasonName(EndReason reason) {
  switch (reason) {
    case EndReason::kBudget:
      return "budget";
    case EndReason::kCancelled:
      return "cancelled";
    case EndReason::kConverged:
      return "converged";
  }
  return "unknown";
}

std::vector<std::string> StrategyNames() { return {}; }

absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(
    absl::string_view name, const StrategyOptions& options) {
  return absl::NotFoundError(absl::StrCat("unknown strategy '", name,
                                          "'; strategies are ",
                                          absl::StrJoin(StrategyNames(), ", ")));
}

}  // namespace mcmpart
