// How the engine gets a Strategy by name without knowing where it lives.
//
// The classical strategies come from solver/ (mcmpart::MakeStrategy); the
// learned `rl` strategy comes from policy/, which keeps pre-trained policies
// warm and fine-tunes a private copy per request. The engine only sees this
// interface, so it never includes Torch: main.cc builds the factories and
// passes them into the engine's constructor.
#ifndef MCMPART_SERVER_STRATEGY_FACTORY_H_
#define MCMPART_SERVER_STRATEGY_FACTORY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mcmpart/v1/partitioner.pb.h"
#include "solver/strategy.h"

namespace mcmpart::server {

// What a request asks of a strategy.
struct StrategyRequest {
  std::string name;  // resolved: never empty
  uint64_t seed = 0;
  std::string policy;     // rl only; empty = the default policy
  bool fine_tune = true;  // rl only
  // A valid placement to start from (StrategyOptions::initial); the auto
  // strategy hands its best so far to the stages after the exact search.
  Assignment initial;
};

// Makes strategies. Implementations must be thread-safe: Make is called from
// many worker threads at once, and every returned Strategy is used by one
// thread for one search (so per-request state such as a fine-tuned policy
// copy belongs in the Strategy, never in the factory).
class StrategyFactory {
 public:
  virtual ~StrategyFactory() = default;

  // The strategy names this factory makes.
  virtual std::vector<std::string> Names() const = 0;

  // A fresh strategy for one search. Errors: NOT_FOUND for a name this
  // factory does not make or an unknown policy (the message lists the
  // known ones); others as the implementation documents.
  virtual absl::StatusOr<std::unique_ptr<Strategy>> Make(
      const StrategyRequest& request) const = 0;

  // The policies this factory keeps warm (empty for classical factories).
  virtual std::vector<v1::PolicyInfo> Policies() const { return {}; }
};

// "auto", "exact", "constructive", "anneal", "random" (whatever
// mcmpart::StrategyNames() lists) via mcmpart::MakeStrategy. `learned` (may
// be null; not owned, must outlive this factory) makes "rl": auto then runs
// it after annealing, warm-started (solver/auto_strategy.h).
class ClassicalStrategyFactory : public StrategyFactory {
 public:
  explicit ClassicalStrategyFactory(const StrategyFactory* learned = nullptr)
      : learned_(learned) {}
  std::vector<std::string> Names() const override;
  absl::StatusOr<std::unique_ptr<Strategy>> Make(
      const StrategyRequest& request) const override;

 private:
  const StrategyFactory* const learned_;
};

// Routes each name to the first factory that makes it. Does not own the
// factories; they must outlive it.
class StrategyRegistry {
 public:
  explicit StrategyRegistry(std::vector<const StrategyFactory*> factories,
                            std::string default_name = "");

  // The default strategy: `default_name` when some factory makes it, else
  // "auto" when available, else "rl", else "anneal", else the first name
  // known.
  const std::string& default_name() const { return default_name_; }
  // Every name, the default first.
  std::vector<std::string> Names() const;
  std::vector<v1::PolicyInfo> Policies() const;

  // NOT_FOUND naming the known strategies for an unknown name.
  absl::StatusOr<std::unique_ptr<Strategy>> Make(
      const StrategyRequest& request) const;

 private:
  std::vector<const StrategyFactory*> factories_;
  std::string default_name_;
};

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_STRATEGY_FACTORY_H_
