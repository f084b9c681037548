#include "policy/net.h"

#include <cmath>

namespace mcmpart::policy {

GraphTensors ToTensors(const GraphFeatures& f) {
  GraphTensors g;
  const int64_t n = f.num_nodes;
  g.num_nodes = n;
  g.num_chips = f.num_chips;
  auto fopt = torch::TensorOptions().dtype(torch::kFloat32);
  auto iopt = torch::TensorOptions().dtype(torch::kInt64);
  // from_blob does not copy; clone so the tensors own their memory.
  g.node = torch::from_blob(const_cast<float*>(f.node.data()),
                            {n, kNumNodeFeatures}, fopt)
               .clone();
  g.hardware = torch::from_blob(const_cast<float*>(f.hardware.data()),
                                {kNumHardwareFeatures}, fopt)
                   .clone();
  g.op_id =
      torch::from_blob(const_cast<int64_t*>(f.op_id.data()), {n}, iopt).clone();
  const int64_t e = static_cast<int64_t>(f.edge_src.size());
  g.src = torch::from_blob(const_cast<int64_t*>(f.edge_src.data()), {e}, iopt)
              .clone();
  g.dst = torch::from_blob(const_cast<int64_t*>(f.edge_dst.data()), {e}, iopt)
              .clone();
  torch::Tensor ones = torch::ones({e}, fopt);
  torch::Tensor in_deg = torch::zeros({n}, fopt).index_add_(0, g.dst, ones);
  torch::Tensor out_deg = torch::zeros({n}, fopt).index_add_(0, g.src, ones);
  g.in_norm = (1.0 / in_deg.clamp_min(1.0)).unsqueeze(1);
  g.out_norm = (1.0 / out_deg.clamp_min(1.0)).unsqueeze(1);
  return g;
}

SageLayerImpl::SageLayerImpl(int64_t hidden) {
  self_ = register_module("self", torch::nn::Linear(hidden, hidden));
  from_pred_ = register_module("from_pred", torch::nn::Linear(hidden, hidden));
  from_succ_ = register_module("from_succ", torch::nn::Linear(hidden, hidden));
  norm_ = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
}

torch::Tensor SageLayerImpl::forward(const torch::Tensor& h,
                                     const GraphTensors& g) {
  // Mean of the predecessors' states (messages along edges) and of the
  // successors' states (against edges): a node's placement depends on both
  // what feeds it and what it feeds.
  torch::Tensor pred_mean =
      torch::zeros_like(h).index_add_(0, g.dst, h.index_select(0, g.src)) *
      g.in_norm;
  torch::Tensor succ_mean =
      torch::zeros_like(h).index_add_(0, g.src, h.index_select(0, g.dst)) *
      g.out_norm;
  torch::Tensor m = self_(h) + from_pred_(pred_mean) + from_succ_(succ_mean);
  return h + torch::relu(norm_(m));
}

WindowAttentionImpl::WindowAttentionImpl(int64_t hidden, int64_t heads,
                                         int64_t window)
    : hidden_(hidden), heads_(heads), window_(window) {
  norm1_ = register_module(
      "norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  norm2_ = register_module(
      "norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({hidden})));
  qkv_ = register_module("qkv", torch::nn::Linear(hidden, 3 * hidden));
  out_ = register_module("out", torch::nn::Linear(hidden, hidden));
  ff1_ = register_module("ff1", torch::nn::Linear(hidden, 2 * hidden));
  ff2_ = register_module("ff2", torch::nn::Linear(2 * hidden, hidden));
}

torch::Tensor WindowAttentionImpl::forward(const torch::Tensor& x) {
  const int64_t n = x.size(0);
  const int64_t w = window_;
  const int64_t blocks = (n + w - 1) / w;
  const int64_t padded = blocks * w;
  const int64_t dh = hidden_ / heads_;

  torch::Tensor h = norm1_(x);
  if (padded > n) {
    h = torch::cat({h, torch::zeros({padded - n, hidden_}, h.options())}, 0);
  }
  // [blocks, w, 3, heads, dh] -> three [blocks, heads, w, dh]
  torch::Tensor qkv = qkv_(h).view({blocks, w, 3, heads_, dh});
  torch::Tensor q = qkv.select(2, 0).permute({0, 2, 1, 3});
  torch::Tensor k = qkv.select(2, 1).permute({0, 2, 1, 3});
  torch::Tensor v = qkv.select(2, 2).permute({0, 2, 1, 3});
  // Carried memory: each segment also sees the previous one.
  auto shift = [&](const torch::Tensor& t) {
    return torch::cat(
        {torch::zeros_like(t.narrow(0, 0, 1)), t.narrow(0, 0, blocks - 1)}, 0);
  };
  torch::Tensor keys = torch::cat({shift(k), k}, 2);    // [B, H, 2w, dh]
  torch::Tensor values = torch::cat({shift(v), v}, 2);  // [B, H, 2w, dh]

  // Key j of block b is node (b - 1) * w + j; valid when in 0..n-1.
  torch::Tensor pos = torch::arange(blocks, torch::kInt64).unsqueeze(1) * w +
                      torch::arange(2 * w, torch::kInt64).unsqueeze(0) - w;
  torch::Tensor valid = (pos >= 0).logical_and(pos < n);  // [B, 2w]

  torch::Tensor scores =
      torch::matmul(q, keys.transpose(2, 3)) / std::sqrt(double(dh));
  scores =
      scores.masked_fill(valid.logical_not().view({blocks, 1, 1, 2 * w}), -1e9);
  torch::Tensor attn = torch::softmax(scores, -1);
  torch::Tensor o = torch::matmul(attn, values)  // [B, H, w, dh]
                        .permute({0, 2, 1, 3})
                        .reshape({padded, hidden_})
                        .narrow(0, 0, n);
  torch::Tensor y = x + out_(o);
  return y + ff2_(torch::relu(ff1_(norm2_(y))));
}

torch::Tensor ChipInputs(int64_t num_chips, int64_t max_chips) {
  torch::Tensor c = torch::arange(max_chips, torch::kFloat32);
  const double C = static_cast<double>(num_chips);
  return torch::stack(
      {c / C, (c + 1) / C, torch::full_like(c, 1.0 / C),
       (c == 0).to(torch::kFloat32), (c == C - 1).to(torch::kFloat32),
       (C - 1 - c) / C, c / 32.0},
      1);
}

PolicyNetImpl::PolicyNetImpl(const PolicyConfig& config) : config_(config) {
  const int64_t h = config.hidden;
  op_embedding_ = register_module(
      "op_embedding",
      torch::nn::Embedding(config.op_vocabulary, config.op_embedding));
  encode_ = register_module(
      "encode",
      torch::nn::Linear(
          kNumNodeFeatures + kNumHardwareFeatures + config.op_embedding, h));
  sage_ = register_module("sage", torch::nn::ModuleList());
  for (int i = 0; i < config.gnn_layers; ++i) sage_->push_back(SageLayer(h));
  attention_ = register_module("attention", torch::nn::ModuleList());
  for (int i = 0; i < config.attention_layers; ++i) {
    attention_->push_back(WindowAttention(h, config.heads, config.window));
  }
  readout_ = register_module("readout", torch::nn::Linear(h, h));
  final_norm_ = register_module(
      "final_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
  node_head_ =
      register_module("node_head", torch::nn::Linear(h, config.chip_embedding));
  chip1_ = register_module(
      "chip1", torch::nn::Linear(kChipInputs, config.chip_embedding));
  chip2_ = register_module(
      "chip2", torch::nn::Linear(config.chip_embedding, config.chip_embedding));
  chip_bias_ = register_module("chip_bias", torch::nn::Linear(h, kChipInputs));
}

torch::Tensor PolicyNetImpl::forward(const GraphTensors& g) {
  const int64_t n = g.num_nodes;
  torch::Tensor hw = g.hardware.unsqueeze(0).expand({n, kNumHardwareFeatures});
  torch::Tensor x =
      torch::cat({g.node, hw, op_embedding_(g.op_id)}, 1);  // [N, F]
  torch::Tensor h = torch::relu(encode_(x));
  for (auto& layer : *sage_) h = layer->as<SageLayer>()->forward(h, g);
  for (auto& layer : *attention_) {
    h = layer->as<WindowAttention>()->forward(h);
  }
  h = final_norm_(h + readout_(h.mean(0, /*keepdim=*/true)));

  torch::Tensor chip_in = ChipInputs(g.num_chips, config_.max_chips);
  torch::Tensor chip = chip2_(torch::relu(chip1_(chip_in)));  // [M, E]
  torch::Tensor logits = torch::matmul(node_head_(h), chip.t()) /
                         std::sqrt(double(config_.chip_embedding));  // [N, M]
  // A per-node linear term in the chip inputs: lets "the node's share of
  // the time prefix" map directly onto "c / C".
  logits = logits + torch::matmul(chip_bias_(h), chip_in.t());
  torch::Tensor masked =
      torch::arange(config_.max_chips, torch::kInt64) >= g.num_chips;
  return logits.masked_fill(masked.unsqueeze(0), kMaskedLogit);
}

}  // namespace mcmpart::policy
