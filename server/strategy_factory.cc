#include "server/strategy_factory.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/auto_strategy.h"
#include "solver/quote.h"

namespace mcmpart::server {

std::vector<std::string> ClassicalStrategyFactory::Names() const {
  return StrategyNames();
}

absl::StatusOr<std::unique_ptr<Strategy>> ClassicalStrategyFactory::Make(
    const StrategyRequest& request) const {
  StrategyOptions options;
  options.seed = request.seed;
  options.initial = request.initial;
  if (request.name == "auto") {
    AutoOptions o;
    o.base = options;
    if (learned_ != nullptr) {
      o.learned = [learned = learned_, request](const StrategyOptions& warm) {
        StrategyRequest r = request;
        r.name = "rl";
        r.initial = warm.initial;
        return learned->Make(r);
      };
    }
    return std::unique_ptr<Strategy>(std::make_unique<Auto>(std::move(o)));
  }
  return MakeStrategy(request.name, options);
}

StrategyRegistry::StrategyRegistry(
    std::vector<const StrategyFactory*> factories, std::string default_name)
    : factories_(std::move(factories)) {
  std::vector<std::string> names;
  for (const StrategyFactory* f : factories_) {
    for (std::string& n : f->Names()) names.push_back(std::move(n));
  }
  auto has = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  for (const std::string& candidate :
       {default_name, std::string("auto"), std::string("rl"),
        std::string("anneal")}) {
    if (!candidate.empty() && has(candidate)) {
      default_name_ = candidate;
      break;
    }
  }
  if (default_name_.empty() && !names.empty()) default_name_ = names.front();
}

std::vector<std::string> StrategyRegistry::Names() const {
  std::vector<std::string> out;
  if (!default_name_.empty()) out.push_back(default_name_);
  for (const StrategyFactory* f : factories_) {
    for (std::string& n : f->Names()) {
      if (std::find(out.begin(), out.end(), n) == out.end()) {
        out.push_back(std::move(n));
      }
    }
  }
  return out;
}

std::vector<v1::PolicyInfo> StrategyRegistry::Policies() const {
  std::vector<v1::PolicyInfo> out;
  for (const StrategyFactory* f : factories_) {
    for (v1::PolicyInfo& p : f->Policies()) out.push_back(std::move(p));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Strategy>> StrategyRegistry::Make(
    const StrategyRequest& request) const {
  for (const StrategyFactory* f : factories_) {
    const std::vector<std::string> names = f->Names();
    if (std::find(names.begin(), names.end(), request.name) != names.end()) {
      return f->Make(request);
    }
  }
  return absl::NotFoundError(
      absl::StrCat("unknown strategy ", QuoteInput(request.name),
                   "; this server runs ", absl::StrJoin(Names(), ", ")));
}

}  // namespace mcmpart::server
