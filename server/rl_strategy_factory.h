// The learned `rl` strategy for the engine: policies loaded once from a
// directory (policy::PolicyRegistry) and kept warm for the life of the
// process; each request fine-tunes a private copy (policy::RlStrategy
// clones the shared policy). Only policy/'s Torch-free headers are used, so
// nothing in server/ includes Torch.
#ifndef MCMPART_SERVER_RL_STRATEGY_FACTORY_H_
#define MCMPART_SERVER_RL_STRATEGY_FACTORY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policy/registry.h"
#include "server/strategy_factory.h"

namespace mcmpart::server {

// Thread-safe: the registry is immutable and every Make builds a new
// strategy around a shared read-only policy.
class RlStrategyFactory : public StrategyFactory {
 public:
  // Called after each rl search with the time it spent fine-tuning.
  using FineTuneObserver = std::function<void(absl::Duration)>;

  // Loads every policy under `dir`; empty `dir` means the shipped ones
  // (policy::DefaultPolicyDirectory()). Errors: NOT_FOUND when the directory
  // does not exist or holds no policy; a broken checkpoint's load error.
  // Also sets Torch to one intra-op thread for the process: searches run in
  // parallel on the server's workers instead.
  static absl::StatusOr<std::unique_ptr<RlStrategyFactory>> Load(
      const std::string& dir, FineTuneObserver on_fine_tune);

  std::vector<std::string> Names() const override { return {"rl"}; }
  // NOT_FOUND for an unknown policy (the message lists the loaded ones).
  absl::StatusOr<std::unique_ptr<Strategy>> Make(
      const StrategyRequest& request) const override;
  std::vector<v1::PolicyInfo> Policies() const override;

  const std::string& directory() const { return dir_; }

 private:
  RlStrategyFactory() = default;

  std::string dir_;
  std::unique_ptr<policy::PolicyRegistry> registry_;
  FineTuneObserver on_fine_tune_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_RL_STRATEGY_FACTORY_H_
