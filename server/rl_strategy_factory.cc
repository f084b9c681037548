#include "server/rl_strategy_factory.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "policy/finetune.h"
#include "policy/policy.h"

namespace mcmpart::server {
namespace {

// Times the whole run: for rl, the search is the fine-tuning.
class TimedStrategy : public Strategy {
 public:
  TimedStrategy(std::unique_ptr<Strategy> inner,
                RlStrategyFactory::FineTuneObserver observer)
      : inner_(std::move(inner)), observer_(std::move(observer)) {}

  absl::string_view name() const override { return inner_->name(); }

  absl::StatusOr<StrategyResult> Run(
      const Problem& problem, const Budget& budget, const StopToken& stop,
      const ImprovementCallback& on_improvement) override {
    const absl::Time start = absl::Now();
    absl::StatusOr<StrategyResult> result =
        inner_->Run(problem, budget, stop, on_improvement);
    if (observer_) observer_(absl::Now() - start);
    return result;
  }

 private:
  std::unique_ptr<Strategy> inner_;
  RlStrategyFactory::FineTuneObserver observer_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RlStrategyFactory>> RlStrategyFactory::Load(
    const std::string& dir, FineTuneObserver on_fine_tune) {
  // The server runs searches in parallel on its workers; Torch's own
  // intra-op threads would only compete with them for the cores
  // (docs/policy.md, "Threads", measured ten times slower at 2 threads).
  policy::SetTorchThreads(1);
  std::unique_ptr<RlStrategyFactory> factory(new RlStrategyFactory());
  factory->dir_ = dir.empty() ? policy::DefaultPolicyDirectory() : dir;
  absl::StatusOr<std::unique_ptr<policy::PolicyRegistry>> registry =
      policy::PolicyRegistry::Load(factory->dir_);
  if (!registry.ok()) return registry.status();
  if ((*registry)->Names().empty()) {
    return absl::NotFoundError(
        absl::StrCat("no policy checkpoints in ", factory->dir_));
  }
  factory->registry_ = *std::move(registry);
  factory->on_fine_tune_ = std::move(on_fine_tune);
  return factory;
}

absl::StatusOr<std::unique_ptr<Strategy>> RlStrategyFactory::Make(
    const StrategyRequest& request) const {
  absl::StatusOr<std::shared_ptr<const policy::Policy>> p =
      request.policy.empty() ? registry_->Default()
                             : registry_->Get(request.policy);
  if (!p.ok()) return p.status();
  policy::FineTuneOptions options;
  options.ppo.seed = request.seed;
  // Without fine-tuning the pre-trained policy samples and repairs as it is.
  if (!request.fine_tune) options.ppo.epochs = 0;
  options.initial = request.initial;
  return std::unique_ptr<Strategy>(std::make_unique<TimedStrategy>(
      std::make_unique<policy::RlStrategy>(*std::move(p), options),
      on_fine_tune_));
}

std::vector<v1::PolicyInfo> RlStrategyFactory::Policies() const {
  std::vector<v1::PolicyInfo> out;
  for (const std::string& name : registry_->Names()) {
    v1::PolicyInfo info;
    info.set_name(name);
    info.set_is_default(name == "default");
    if (absl::StatusOr<std::shared_ptr<const policy::Policy>> p =
            registry_->Get(name);
        p.ok()) {
      const policy::PolicyMetadata& m = (*p)->metadata();
      info.set_description(absl::StrCat(
          m.corpus.empty() ? "pre-trained policy" : m.corpus, "; ", m.steps,
          " PPO steps", m.date.empty() ? "" : absl::StrCat(", ", m.date),
          m.notes.empty() ? "" : absl::StrCat("; ", m.notes)));
    }
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace mcmpart::server
