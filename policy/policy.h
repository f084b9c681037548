// The learned placement policy: a model that, given a Problem, gives every
// node a probability distribution over the chips. Torch stays behind a
// pimpl, so including this header needs no Torch headers.
//
// Thread-safety: a Policy is immutable after Create/Load (Save, Probabilities
// and Clone are const and may run on any number of threads at once). Training
// (policy/ppo.h) always works on a private Clone.
#ifndef MCMPART_POLICY_POLICY_H_
#define MCMPART_POLICY_POLICY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "solver/placement.h"
#include "solver/problem.h"

namespace mcmpart::policy {

class PpoTrainer;

// Architecture sizes; recorded in every checkpoint.
struct PolicyConfig {
  int op_vocabulary = 512;  // hashed op-type buckets
  int op_embedding = 16;
  int hidden = 64;
  int gnn_layers = 3;
  int attention_layers = 2;
  int heads = 4;
  int window = 64;     // attention segment length (nodes)
  int max_chips = 64;  // largest chip count the policy serves
  int chip_embedding = 32;
};

// OK when every size is in range (and hidden % heads == 0); otherwise
// INVALID_ARGUMENT naming the field.
absl::Status ValidateConfig(const PolicyConfig& config);

// What a checkpoint says about itself (policy.meta beside model.pt).
struct PolicyMetadata {
  PolicyConfig config;
  int feature_version = 0;
  std::string corpus;  // what it was trained on, free text
  int64_t steps = 0;   // PPO iterations of pre-training
  std::string date;    // ISO 8601, UTC
  uint64_t seed = 0;
  std::string notes;  // free text, one line
};

class Policy {
 public:
  // A freshly initialised policy (deterministic for a seed).
  // Errors: INVALID_ARGUMENT from ValidateConfig.
  static absl::StatusOr<std::unique_ptr<Policy>> Create(
      const PolicyConfig& config, uint64_t seed);

  // Loads the checkpoint in directory `dir` (policy.meta + model.pt).
  // Errors: NOT_FOUND when either file is missing; INVALID_ARGUMENT for a
  // malformed policy.meta; FAILED_PRECONDITION when the checkpoint's feature
  // version differs from kFeatureVersion; DATA_LOSS when model.pt does not
  // hold exactly the tensors the metadata's architecture needs (the message
  // names the tensor and both shapes).
  static absl::StatusOr<std::unique_ptr<Policy>> Load(const std::string& dir);

  ~Policy();
  Policy(const Policy&) = delete;
  Policy& operator=(const Policy&) = delete;

  // Writes policy.meta and model.pt into `dir` (created if missing), each
  // through a temporary file and a rename so a reader never sees half a
  // checkpoint. Errors: INTERNAL / PERMISSION_DENIED from the file system.
  absl::Status Save(const std::string& dir) const;

  // A deep copy (parameters copied; the copy shares nothing).
  std::unique_ptr<Policy> Clone() const;

  const PolicyMetadata& metadata() const;
  // A Clone whose metadata has `corpus`, `steps` and `notes`, dated now:
  // what a trainer saves as a checkpoint. This policy is unchanged.
  std::unique_ptr<Policy> WithMetadataText(const std::string& corpus,
                                           int64_t steps,
                                           const std::string& notes) const;

  // Chip probabilities, num_nodes x config().max_chips, row-major; rows sum
  // to 1 and entries for chips >= problem.num_chips() are exactly 0.
  // Errors: INVALID_ARGUMENT when the problem has more chips than
  // max_chips; INTERNAL when Torch fails (message included).
  absl::StatusOr<std::vector<float>> Probabilities(
      const Problem& problem) const;

  // The most likely chip of every node (not necessarily valid).
  absl::StatusOr<Assignment> Greedy(const Problem& problem) const;

  // Opaque; defined in policy/policy_impl.h for the code of policy/.
  struct Impl;

 private:
  // The one writer of a policy's parameters, on the private Clone it owns.
  friend class PpoTrainer;

  explicit Policy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Sets Torch's intra-op thread count for the process (torch::set_num_threads;
// n >= 1), and OpenBLAS's when the system's BLAS is OpenBLAS. Process-wide:
// the server and mcmpart-train call it once at start.
// docs/policy.md has the measurements behind the default of 1.
void SetTorchThreads(int n);

// Current UTC time, ISO 8601 ("2024-05-01T12:00:00Z").
std::string UtcNowIso8601();

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_POLICY_H_
