#include "policy/registry.h"

#include <cstdlib>
#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/quote.h"

#ifndef MCMPART_POLICY_DIR
#define MCMPART_POLICY_DIR "policy/checkpoints"
#endif

namespace mcmpart::policy {

std::string DefaultPolicyDirectory() {
  const char* env = std::getenv("MCMPART_POLICY_DIR");
  if (env != nullptr && env[0] != '\0') return env;
  return MCMPART_POLICY_DIR;
}

absl::StatusOr<std::unique_ptr<PolicyRegistry>> PolicyRegistry::Load(
    const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("policy directory not found: ", dir));
  }
  auto registry = std::unique_ptr<PolicyRegistry>(new PolicyRegistry());
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory() ||
        !fs::is_regular_file(entry.path() / "policy.meta")) {
      continue;
    }
    absl::StatusOr<std::unique_ptr<Policy>> p =
        Policy::Load(entry.path().string());
    if (!p.ok()) return p.status();
    registry->policies_[entry.path().filename().string()] = std::move(*p);
  }
  if (ec) {
    return absl::InternalError(
        absl::StrCat("reading ", dir, ": ", ec.message()));
  }
  return registry;
}

absl::StatusOr<std::shared_ptr<const Policy>> PolicyRegistry::Get(
    absl::string_view name) const {
  auto it = policies_.find(name);
  if (it == policies_.end()) {
    return absl::NotFoundError(absl::StrCat(
        "no policy ", QuoteInput(name), "; loaded: ",
        Names().empty() ? "(none)" : absl::StrJoin(Names(), ", ")));
  }
  return it->second;
}

std::vector<std::string> PolicyRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : policies_) names.push_back(name);
  return names;
}

}  // namespace mcmpart::policy
