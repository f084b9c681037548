// The policy network (internal to policy/: includes Torch, so no public
// header includes this one).
//
//   node features + hashed op embedding + hardware context
//     -> encoder MLP
//     -> GraphSAGE layers (mean messages along both edge directions,
//        residual, layer norm)
//     -> windowed attention over nodes in topological order: the order is
//        cut into segments of `window` nodes and each segment attends to
//        itself and to the previous segment (carried memory, as in
//        Transformer-XL), so cost is O(N * window), linear in N
//     -> + graph readout (mean over nodes)
//     -> per-node logits over chips: a dot product of a node embedding with
//        a chip embedding computed from (c, C), so one network serves any
//        chip count up to max_chips; chips >= C are masked.
#ifndef MCMPART_POLICY_NET_H_
#define MCMPART_POLICY_NET_H_

#include <torch/torch.h>

#include "policy/features.h"
#include "policy/policy.h"

namespace mcmpart::policy {

// Logit given to chips beyond the request's count. Finite on purpose: its
// softmax is exactly 0 in float, and 0 * logit stays 0 in the entropy
// (with -inf it would be NaN).
inline constexpr float kMaskedLogit = -1e9f;

// Features of one graph as tensors (CPU, float32 / int64).
struct GraphTensors {
  torch::Tensor node;      // [N, kNumNodeFeatures]
  torch::Tensor hardware;  // [kNumHardwareFeatures]
  torch::Tensor op_id;     // [N]
  torch::Tensor src, dst;  // [E]
  torch::Tensor in_norm;   // [N, 1]: 1 / max(1, in degree)
  torch::Tensor out_norm;  // [N, 1]: 1 / max(1, out degree)
  int64_t num_nodes = 0;
  int64_t num_chips = 0;
};

GraphTensors ToTensors(const GraphFeatures& features);

struct SageLayerImpl : torch::nn::Module {
  explicit SageLayerImpl(int64_t hidden);
  torch::Tensor forward(const torch::Tensor& h, const GraphTensors& g);

  torch::nn::Linear self_{nullptr}, from_pred_{nullptr}, from_succ_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(SageLayer);

struct WindowAttentionImpl : torch::nn::Module {
  WindowAttentionImpl(int64_t hidden, int64_t heads, int64_t window);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t hidden_, heads_, window_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Linear qkv_{nullptr}, out_{nullptr}, ff1_{nullptr}, ff2_{nullptr};
};
TORCH_MODULE(WindowAttention);

struct PolicyNetImpl : torch::nn::Module {
  explicit PolicyNetImpl(const PolicyConfig& config);
  // Masked logits [N, max_chips]. Precondition: 1 <= num_chips <= max_chips.
  torch::Tensor forward(const GraphTensors& g);

  PolicyConfig config_;
  torch::nn::Embedding op_embedding_{nullptr};
  torch::nn::Linear encode_{nullptr};
  torch::nn::ModuleList sage_{nullptr};
  torch::nn::ModuleList attention_{nullptr};
  torch::nn::Linear readout_{nullptr};
  torch::nn::LayerNorm final_norm_{nullptr};
  torch::nn::Linear node_head_{nullptr};
  torch::nn::Linear chip1_{nullptr}, chip2_{nullptr};
  torch::nn::Linear chip_bias_{nullptr};
};
TORCH_MODULE(PolicyNet);

// The per-chip input of the chip embedding, [max_chips, kChipInputs].
inline constexpr int kChipInputs = 7;
torch::Tensor ChipInputs(int64_t num_chips, int64_t max_chips);

}  // namespace mcmpart::policy

#endif  // MCMPART_POLICY_NET_H_
