#include "solver/strategy.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/anneal.h"
#include "solver/auto_strategy.h"
#include "solver/constructive.h"
#include "solver/exact.h"
#include "solver/quote.h"
#include "solver/random_search.h"

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

bool IsWarmStart(const Problem& problem, absl::Span<const int> p) {
  return static_cast<int>(p.size()) == problem.num_nodes() &&
         Evaluator(problem).IsValid(p);
}

std::vector<std::string> StrategyNames() {
  return {"auto", "exact", "anneal", "constructive", "random"};
}

absl::StatusOr<std::unique_ptr<Strategy>> MakeStrategy(
    absl::string_view name, const StrategyOptions& options) {
  if (name == "auto") {
    AutoOptions o;
    o.base = options;
    return std::make_unique<Auto>(std::move(o));
  }
  if (name == "exact") return std::make_unique<Exact>(options);
  if (name == "anneal") return std::make_unique<Anneal>(options);
  if (name == "constructive") return std::make_unique<Constructive>(options);
  if (name == "random") return std::make_unique<RandomSearch>(options);
  return absl::NotFoundError(
      absl::StrCat("unknown strategy ", QuoteInput(name), "; strategies are ",
                   absl::StrJoin(StrategyNames(), ", ")));
}

}  // namespace mcmpart
