// Policy internals shared by the sources of policy/ (includes Torch; never
// included by a public header).
#ifndef MCMPART_POLICY_POLICY_IMPL_H_
#define MCMPART_POLICY_POLICY_IMPL_H_

#include <torch/torch.h>

#include "absl/status/statusor.h"
#include "policy/net.h"
#include "policy/policy.h"

namespace mcmpart::policy {

struct Policy::Impl {
  PolicyMetadata metadata;
  PolicyNet net{nullptr};
};

// Features of `problem` as tensors; INVALID_ARGUMENT when the problem has
// more chips than config.max_chips.
absl::StatusOr<GraphTensors> PrepareProblem(const PolicyConfig& config,
                                            const Problem& problem);

// Runs `fn`, turning a Torch or standard exception into INTERNAL with
// `what` and the exception's message: no exception leaves policy/.
template <typename Fn>
absl::Status GuardTorch(const char* what, Fn&& fn) {
  try {
    fn();
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(std::string(what) + ": " +
                               e.what_without_backtrace());
  } catch (const std::exception& e) {
    return absl::InternalError(std::string(what) + ": " + e.what());
  }
}

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_POLICY_IMPL_H_
