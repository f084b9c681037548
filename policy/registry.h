// The policy registry: loads the checkpoints of a directory once and hands
// out shared read-only policies. Fine-tuning always clones (policy/finetune.h),
// so handing one Policy to many requests at once is safe.
#ifndef MCMPART_POLICY_REGISTRY_H_
#define MCMPART_POLICY_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "policy/policy.h"

namespace mcmpart::policy {

// Where the shipped checkpoints live: $MCMPART_POLICY_DIR when set, else the
// policy/checkpoints directory of the source tree this was built from.
std::string DefaultPolicyDirectory();

// Immutable after Load; every method is thread-safe.
class PolicyRegistry {
 public:
  // Loads every subdirectory of `dir` that holds a policy.meta, under the
  // subdirectory's name ("default", ...). Errors: NOT_FOUND when `dir` does
  // not exist; the first checkpoint's load error (named) when a checkpoint
  // is broken, so a bad deploy fails loudly instead of serving without it.
  static absl::StatusOr<std::unique_ptr<PolicyRegistry>> Load(
      const std::string& dir);

  // The policy called `name`; NOT_FOUND (listing the names) when absent.
  absl::StatusOr<std::shared_ptr<const Policy>> Get(
      absl::string_view name) const;
  // Get("default").
  absl::StatusOr<std::shared_ptr<const Policy>> Default() const {
    return Get("default");
  }
  std::vector<std::string> Names() const;

 private:
  std::map<std::string, std::shared_ptr<const Policy>, std::less<>> policies_;
};

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_REGISTRY_H_
