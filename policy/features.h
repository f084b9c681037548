// Node and hardware features the placement policy reads.
//
// Features are computed from the validated graph IR and the hardware of one
// Problem only, so a graph the policy never saw (new ops, new sizes) still
// gets meaningful inputs: op types go through a hashed vocabulary, every
// magnitude is log-scaled or taken relative to the graph's totals or to one
// chip's capacity. Plain C++ types, no Torch: the model (policy/net.h) turns
// them into tensors. See docs/policy.md ("Features") for the list.
#ifndef MCMPART_POLICY_FEATURES_H_
#define MCMPART_POLICY_FEATURES_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solver/problem.h"

namespace mcmpart::policy {

// Bumped whenever the meaning or order of a feature changes; a checkpoint
// records the version it was trained with and refuses to load under another.
inline constexpr int kFeatureVersion = 2;

// Per-node numeric features, in this order (row-major in
// GraphFeatures::node).
enum NodeFeature : int {
  kLogFlops = 0,     // log1p(flops) / 30
  kLogParamBytes,    // log1p(param_bytes) / 30
  kLogOutputBytes,   // log1p(output_bytes) / 30
  kLogInputBytes,    // log1p(sum of inputs' output_bytes) / 30
  kTimeShare,        // time(v) / (total time / C), squashed by log1p
  kMemShareOfChip,   // (param + output bytes) / SRAM of chip 0, log1p
  kMemShareOfTotal,  // resident bytes / (total resident / C), log1p
  kCumTimeBefore,    // sum of time(u), u < v, / total time
  kCumTimeAfter,     // sum of time(u), u <= v, / total time
  kCumMemBefore,     // sum of resident(u), u < v, / total resident
  kTopoPosition,     // v / (N - 1)
  kLogInDegree,      // log1p(in degree) / 3
  kLogOutDegree,     // log1p(out degree) / 3
  kBalancedChip,     // C * mid-point of the time prefix, / 16
  kSpan,             // (last successor id - v) / N: how far v's tensor goes
  kCutCost,          // log1p(comm time of a cut right after v in the
                     //       topological order / ideal chip time)
  kOutCommCost,      // log1p(v's output on one link / ideal chip time)
  kPinned,           // 1 when the request pins v
  kPinChip,          // pinned chip / C (0 when unpinned)
  kHopSpan,          // chips v's tensor spans in the split that balances
                     //   time (kBalancedChip of its last reader minus v's),
                     //   / max_hops, capped at 4, / 4: above 1/4 the hop
                     //   limit binds on it
  kFanInWindow,      // log1p(resident bytes of v and its inputs' producers /
                     //   SRAM of the min(C, max_hops + 1) chips they must
                     //   share): wide fan-in under a hop limit
  kNumNodeFeatures
};

// Hardware context, broadcast to every node.
enum HardwareFeature : int {
  kChipCount = 0,   // C / 32
  kLogChipCount,    // log2(C) / 5
  kSramOverGraph,   // log1p(C * SRAM / total resident bytes)
  kMemoryPressure,  // total resident / (C * SRAM), capped at 4
  kLinkSpeed,       // log1p(total output bytes / link bandwidth / total time)
  kMaxHops,         // min(max_hops, 8) / 8
  kUseAllChips,     // 1 when every chip must be used
  kLogNodes,        // log1p(N) / 10
  kHopsOfChips,     // min(max_hops, C - 1) / (C - 1): 1 when the hop
                    //   limit can never bind (1 for one chip)
  kNumHardwareFeatures
};

struct GraphFeatures {
  int num_nodes = 0;
  int num_chips = 0;
  // num_nodes x kNumNodeFeatures, row-major; all finite.
  std::vector<float> node;
  // kNumHardwareFeatures values; all finite.
  std::vector<float> hardware;
  // Hashed op type per node, in [0, op_vocabulary).
  std::vector<int64_t> op_id;
  // Edges u -> v as parallel arrays (u < v, both node ids).
  std::vector<int64_t> edge_src, edge_dst;
};

// Stable hash of an op type into [0, vocabulary) (FNV-1a, so checkpoints
// mean the same thing on every platform). vocabulary must be > 0.
int64_t HashOp(absl::string_view op, int vocabulary);

// Extracts the features of `problem`. Errors: INVALID_ARGUMENT when
// op_vocabulary <= 0. Figures of a validated Problem are finite; every
// derived feature is still checked and clamped so that degenerate inputs
// (zero total time, zero memory) give zeros, never NaN. O(V + E).
absl::StatusOr<GraphFeatures> ExtractFeatures(const Problem& problem,
                                              int op_vocabulary);

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_FEATURES_H_
