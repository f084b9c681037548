// Synthetic training instances for pre-training: random DAGs shaped like
// the model families the service sees (transformer encoders, residual conv
// nets, inception-style branchy nets, random layered graphs, recommendation
// models with many tables, mixture-of-experts layers, U-Nets) on random MCM
// hardware whose SRAM ranges from loose to binding.
#ifndef MCMPART_POLICY_SYNTHETIC_H_
#define MCMPART_POLICY_SYNTHETIC_H_

#include <cstdint>
#include <string>

#include "mcmpart/v1/problem.pb.h"

namespace mcmpart::policy {

// kWide (many embedding tables read by one node, DLRM-like), kExperts
// (parallel expert FFNs per layer, mixture-of-experts) and kSkips (U-Net
// encoder-decoder with long skips) are the shapes where a hop limit binds.
enum class SyntheticFamily {
  kTransformer,
  kConv,
  kBranchy,
  kLayered,
  kWide,
  kExperts,
  kSkips,
};
inline constexpr int kNumSyntheticFamilies = 7;

const char* SyntheticFamilyName(SyntheticFamily family);

// A valid graph (topological order, unique names, finite figures) of about
// `target_nodes` nodes (clamped to 10..100000), deterministic for a seed.
v1::Graph SyntheticGraph(SyntheticFamily family, int target_nodes,
                         uint64_t seed);

// `chips` identical chips (clamped to 1..kMaxChips) with the preset's
// compute figures scaled at random, and SRAM chosen so that the graph's
// resident memory spread evenly fills between about 1/`slack` of it, and at
// least 1.25x the largest single node. slack <= 1.05 is raised to 1.05.
// Links between 0.25x and 4x the preset's bandwidth. Deterministic for a
// seed. The result may still be infeasible when transit buffers bind; the
// caller checks.
v1::Hardware RandomHardware(const v1::Graph& graph, int chips, double slack,
                            uint64_t seed);

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_SYNTHETIC_H_
