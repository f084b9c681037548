#include "policy/synthetic.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "solver/hardware.h"

namespace mcmpart::policy {
namespace {

constexpr double kF = 4;  // bytes per fp32 element

class Builder {
 public:
  explicit Builder(std::string name) {
    g_.set_name(std::move(name));
    g_.add_inputs("input");
  }

  // Adds a node; returns its name.
  std::string Add(const std::string& op, const std::vector<std::string>& in,
                  double flops, double params, double out) {
    v1::Node* n = g_.add_nodes();
    std::string name = absl::StrCat(op, "_", g_.nodes_size() - 1);
    n->set_name(name);
    n->set_op(op);
    for (const std::string& i : in) n->add_inputs(i);
    n->set_flops(std::max(0.0, flops));
    n->set_param_bytes(std::max(0.0, params));
    n->set_output_bytes(std::max(0.0, out));
    return name;
  }
  int size() const { return g_.nodes_size(); }
  v1::Graph Take() { return std::move(g_); }

 private:
  v1::Graph g_;
};

template <typename T>
T Pick(std::mt19937_64& rng, std::initializer_list<T> items) {
  std::uniform_int_distribution<size_t> d(0, items.size() - 1);
  return *(items.begin() + d(rng));
}

double LogUniform(std::mt19937_64& rng, double lo, double hi) {
  std::uniform_real_distribution<double> d(std::log(lo), std::log(hi));
  return std::exp(d(rng));
}

v1::Graph Transformer(int target, std::mt19937_64& rng) {
  Builder b("synthetic_transformer");
  const double d = Pick(rng, {256.0, 384.0, 512.0, 768.0, 1024.0});
  const double s = Pick(rng, {64.0, 128.0, 256.0, 384.0, 512.0});
  const double heads = d / 64;
  const double vocab = LogUniform(rng, 1000, 30000);
  const double act = s * d * kF;
  std::string x = b.Add("Gather", {"input"}, s * d, vocab * d * kF, act);
  const int layers = std::max(1, (target - 2) / 14);
  for (int l = 0; l < layers; ++l) {
    std::string ln1 =
        b.Add("LayerNormalization", {x}, 8 * s * d, 2 * d * kF, act);
    std::string q = b.Add("MatMul", {ln1}, 2 * s * d * d, d * d * kF, act);
    std::string k = b.Add("MatMul", {ln1}, 2 * s * d * d, d * d * kF, act);
    std::string v = b.Add("MatMul", {ln1}, 2 * s * d * d, d * d * kF, act);
    std::string sc =
        b.Add("MatMul", {q, k}, 2 * s * s * d, 0, heads * s * s * kF);
    std::string sm =
        b.Add("Softmax", {sc}, 5 * heads * s * s, 0, heads * s * s * kF);
    std::string ctx = b.Add("MatMul", {sm, v}, 2 * s * s * d, 0, act);
    std::string proj = b.Add("MatMul", {ctx}, 2 * s * d * d, d * d * kF, act);
    std::string a1 = b.Add("Add", {x, proj}, s * d, 0, act);
    std::string ln2 =
        b.Add("LayerNormalization", {a1}, 8 * s * d, 2 * d * kF, act);
    std::string f1 =
        b.Add("MatMul", {ln2}, 8 * s * d * d, 4 * d * d * kF, 4 * act);
    std::string ge = b.Add("Gelu", {f1}, 8 * 4 * s * d, 0, 4 * act);
    std::string f2 = b.Add("MatMul", {ge}, 8 * s * d * d, 4 * d * d * kF, act);
    x = b.Add("Add", {a1, f2}, s * d, 0, act);
  }
  b.Add("LayerNormalization", {x}, 8 * s * d, 2 * d * kF, act);
  return b.Take();
}

// Conv + BatchNorm + Relu as one group of three nodes.
std::string ConvBnRelu(Builder& b, const std::string& in, double hw, double cin,
                       double cout, double k, bool relu = true) {
  std::string c = b.Add("Conv", {in}, 2 * hw * cin * cout * k * k,
                        cin * cout * k * k * kF, hw * cout * kF);
  std::string n = b.Add("BatchNormalization", {c}, 4 * hw * cout, 4 * cout * kF,
                        hw * cout * kF);
  if (!relu) return n;
  return b.Add("Relu", {n}, hw * cout, 0, hw * cout * kF);
}

v1::Graph Conv(int target, std::mt19937_64& rng) {
  Builder b("synthetic_conv");
  const double width = Pick(rng, {0.5, 1.0, 1.5, 2.0});
  double side = Pick(rng, {112.0, 56.0});
  double ch = 64 * width;
  std::string x = ConvBnRelu(b, "input", side * side, 3, ch, 7);
  const int blocks = std::max(1, (target - 4) / 8);
  const int stages = 4;
  for (int i = 0; i < blocks; ++i) {
    const bool down =
        i > 0 && (i % std::max(1, blocks / stages)) == 0 && side > 7;
    double cin = ch;
    if (down) {
      side /= 2;
      ch *= 2;
    }
    const double hw = side * side;
    std::string y = ConvBnRelu(b, x, hw, cin, ch, 3);
    y = ConvBnRelu(b, y, hw, ch, ch, 3, /*relu=*/false);
    std::string skip = x;
    if (down)
      skip = b.Add("Conv", {x}, 2 * hw * cin * ch, cin * ch * kF, hw * ch * kF);
    std::string a = b.Add("Add", {y, skip}, hw * ch, 0, hw * ch * kF);
    x = b.Add("Relu", {a}, hw * ch, 0, hw * ch * kF);
  }
  std::string p = b.Add("GlobalAveragePool", {x}, side * side * ch, 0, ch * kF);
  b.Add("Gemm", {p}, 2 * ch * 1000, ch * 1000 * kF, 1000 * kF);
  return b.Take();
}

v1::Graph Branchy(int target, std::mt19937_64& rng) {
  Builder b("synthetic_branchy");
  double side = Pick(rng, {56.0, 35.0, 28.0});
  double ch = Pick(rng, {64.0, 128.0, 192.0});
  std::string x = ConvBnRelu(b, "input", side * side, 3, ch, 3);
  std::uniform_int_distribution<int> nbranch(2, 4), depth(1, 3);
  while (b.size() < target - 12) {
    const double hw = side * side;
    std::vector<std::string> outs;
    const int nb = nbranch(rng);
    double cout_total = 0;
    for (int br = 0; br < nb; ++br) {
      const double cout = std::round(ch / nb * LogUniform(rng, 0.5, 2));
      std::string y = x;
      double cin = ch;
      const int dd = depth(rng);
      for (int j = 0; j < dd; ++j) {
        const double k = j == 0 ? 1 : Pick(rng, {3.0, 5.0});
        std::string c = b.Add("Conv", {y}, 2 * hw * cin * cout * k * k,
                              cin * cout * k * k * kF, hw * cout * kF);
        y = b.Add("Relu", {c}, hw * cout, 0, hw * cout * kF);
        cin = cout;
      }
      if (br == nb - 1 && nb > 2) {
        y = b.Add("MaxPool", {y}, 9 * hw * cout, 0, hw * cout * kF);
      }
      outs.push_back(y);
      cout_total += cout;
    }
    ch = cout_total;
    x = b.Add("Concat", outs, hw * ch, 0, hw * ch * kF);
    if (std::uniform_real_distribution<double>(0, 1)(rng) < 0.15 && side > 7) {
      side = std::floor(side / 2);
      x = b.Add("MaxPool", {x}, 9 * side * side * ch, 0, side * side * ch * kF);
    }
  }
  std::string p = b.Add("GlobalAveragePool", {x}, side * side * ch, 0, ch * kF);
  b.Add("Gemm", {p}, 2 * ch * 1000, ch * 1000 * kF, 1000 * kF);
  return b.Take();
}

v1::Graph Layered(int target, std::mt19937_64& rng) {
  Builder b("synthetic_layered");
  std::uniform_int_distribution<int> width_d(1, 12), fanin(1, 3), back(1, 3);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::vector<std::string>> layers;
  layers.push_back(
      {b.Add("Input", {"input"}, 0, 0, LogUniform(rng, 1e4, 1e7))});
  while (b.size() < target) {
    const int w = std::min(width_d(rng), target - b.size());
    std::vector<std::string> layer;
    for (int i = 0; i < w; ++i) {
      std::vector<std::string> in;
      const int f = fanin(rng);
      for (int j = 0; j < f; ++j) {
        const int lb = std::min<int>(back(rng), layers.size());
        const auto& src = layers[layers.size() - lb];
        in.push_back(
            src[std::uniform_int_distribution<size_t>(0, src.size() - 1)(rng)]);
      }
      std::sort(in.begin(), in.end());
      in.erase(std::unique(in.begin(), in.end()), in.end());
      const std::string op = Pick(
          rng, {std::string("MatMul"), std::string("Conv"), std::string("Add"),
                std::string("Relu"), std::string("Mul"), std::string("Concat"),
                std::string("Reshape")});
      const double params = u(rng) < 0.4 ? LogUniform(rng, 1e3, 2e7) : 0;
      layer.push_back(b.Add(op, in, LogUniform(rng, 1e5, 2e10), params,
                            LogUniform(rng, 1e3, 1e7)));
    }
    layers.push_back(std::move(layer));
  }
  return b.Take();
}

// Recommendation-model-like (DLRM): many embedding tables (large
// parameters, small outputs) and a bottom MLP, all read by one interaction
// node, then a top MLP. The wide fan-in is what a hop limit makes hard: the
// tables must sit within max_hops chips of their reader.
v1::Graph Wide(int target, std::mt19937_64& rng) {
  Builder b("synthetic_wide");
  const double batch = Pick(rng, {128.0, 512.0, 2048.0});
  const double dim = Pick(rng, {16.0, 32.0, 64.0, 128.0});
  const int bottom = std::uniform_int_distribution<int>(2, 4)(rng);
  const int top = std::uniform_int_distribution<int>(2, 5)(rng);
  const int tables = std::max(2, target - 2 * bottom - 2 * top - 3);
  std::vector<std::string> features;
  std::string x = "input";
  double width = Pick(rng, {13.0, 64.0, 256.0});
  for (int i = 0; i < bottom; ++i) {
    const double next = i + 1 == bottom ? dim : Pick(rng, {256.0, 512.0});
    std::string mm = b.Add("Gemm", {x}, 2 * batch * width * next,
                           width * next * kF, batch * next * kF);
    x = b.Add("Relu", {mm}, batch * next, 0, batch * next * kF);
    width = next;
  }
  features.push_back(x);
  for (int t = 0; t < tables; ++t) {
    const double rows = LogUniform(rng, 1e3, 3e6);
    features.push_back(b.Add("Gather", {"input"}, batch * dim, rows * dim * kF,
                             batch * dim * kF));
  }
  const double f = static_cast<double>(features.size());
  x = b.Add("Concat", features, batch * dim * f, 0, batch * dim * f * kF);
  x = b.Add("BatchMatMul", {x}, 2 * batch * f * f * dim, 0, batch * f * f * kF);
  width = f * f;
  for (int i = 0; i < top; ++i) {
    const double next = i + 1 == top ? 1 : Pick(rng, {256.0, 512.0, 1024.0});
    std::string mm = b.Add("Gemm", {x}, 2 * batch * width * next,
                           width * next * kF, batch * next * kF);
    x = b.Add(i + 1 == top ? "Sigmoid" : "Relu", {mm}, batch * next, 0,
              batch * next * kF);
    width = next;
  }
  return b.Take();
}

// Mixture-of-experts encoder: attention, then a router and E parallel
// expert FFNs (each a large MatMul pair) combined by one node, per layer.
v1::Graph Experts(int target, std::mt19937_64& rng) {
  Builder b("synthetic_experts");
  const double d = Pick(rng, {256.0, 512.0, 768.0});
  const double s = Pick(rng, {128.0, 256.0, 512.0});
  const int experts = Pick(rng, {4, 8, 16});
  const double act = s * d * kF;
  const double tokens = s / experts * 2;  // capacity per expert
  std::string x = b.Add("Gather", {"input"}, s * d,
                        LogUniform(rng, 1000, 30000) * d * kF, act);
  const int per_layer = 6 + 3 * experts;
  const int layers = std::max(1, (target - 2) / per_layer);
  for (int l = 0; l < layers; ++l) {
    std::string ln =
        b.Add("LayerNormalization", {x}, 8 * s * d, 2 * d * kF, act);
    std::string qkv =
        b.Add("MatMul", {ln}, 6 * s * d * d, 3 * d * d * kF, 3 * act);
    std::string att = b.Add("Attention", {qkv}, 4 * s * s * d, 0, act);
    std::string proj = b.Add("MatMul", {att}, 2 * s * d * d, d * d * kF, act);
    std::string a1 = b.Add("Add", {x, proj}, s * d, 0, act);
    std::string router = b.Add("MatMul", {a1}, 2 * s * d * experts,
                               d * experts * kF, s * experts * kF);
    std::vector<std::string> outs = {a1};
    for (int e = 0; e < experts; ++e) {
      const double hidden = 4 * d;
      std::string up = b.Add("MatMul", {a1, router}, 2 * tokens * d * hidden,
                             d * hidden * kF, tokens * hidden * kF);
      std::string g =
          b.Add("Gelu", {up}, 8 * tokens * hidden, 0, tokens * hidden * kF);
      outs.push_back(b.Add("MatMul", {g}, 2 * tokens * hidden * d,
                           hidden * d * kF, tokens * d * kF));
    }
    x = b.Add("Sum", outs, s * d * experts, 0, act);
  }
  return b.Take();
}

// U-Net-like: encoder stages halve the resolution, decoder stages double
// it and concatenate the matching encoder stage's output, so the first
// stage's large activation is read at the very end (a long skip that
// max_hops must allow).
v1::Graph Skips(int target, std::mt19937_64& rng) {
  Builder b("synthetic_skips");
  double side = Pick(rng, {128.0, 256.0});
  double ch = Pick(rng, {16.0, 32.0, 64.0});
  const int stages = std::clamp((target - 4) / 14, 2, 6);
  const int convs = std::max(1, (target - 4) / (stages * 2 * 3 + 2));
  std::string x = "input";
  double cin = 3;
  std::vector<std::string> skips;
  std::vector<double> skip_ch;
  for (int st = 0; st < stages; ++st) {
    for (int j = 0; j < convs; ++j) {
      x = ConvBnRelu(b, x, side * side, cin, ch, 3);
      cin = ch;
    }
    skips.push_back(x);
    skip_ch.push_back(ch);
    if (st + 1 < stages) {
      side /= 2;
      x = b.Add("MaxPool", {x}, 4 * side * side * ch, 0, side * side * ch * kF);
      ch *= 2;
    }
  }
  for (int st = stages - 2; st >= 0; --st) {
    side *= 2;
    ch /= 2;
    std::string up = b.Add("ConvTranspose", {x}, 8 * side * side * cin * ch,
                           4 * cin * ch * kF, side * side * ch * kF);
    x = b.Add("Concat", {up, skips[st]}, side * side * 2 * ch, 0,
              side * side * 2 * ch * kF);
    cin = 2 * ch;
    for (int j = 0; j < convs; ++j) {
      x = ConvBnRelu(b, x, side * side, cin, ch, 3);
      cin = ch;
    }
  }
  b.Add("Conv", {x}, 2 * side * side * ch, ch * kF, side * side * kF);
  return b.Take();
}

}  // namespace

const char* SyntheticFamilyName(SyntheticFamily family) {
  switch (family) {
    case SyntheticFamily::kTransformer:
      return "transformer";
    case SyntheticFamily::kConv:
      return "conv";
    case SyntheticFamily::kBranchy:
      return "branchy";
    case SyntheticFamily::kLayered:
      return "layered";
    case SyntheticFamily::kWide:
      return "wide";
    case SyntheticFamily::kExperts:
      return "experts";
    case SyntheticFamily::kSkips:
      return "skips";
  }
  return "unknown";
}

v1::Graph SyntheticGraph(SyntheticFamily family, int target_nodes,
                         uint64_t seed) {
  std::mt19937_64 rng(seed);
  const int target = std::clamp(target_nodes, 10, 100000);
  switch (family) {
    case SyntheticFamily::kTransformer:
      return Transformer(target, rng);
    case SyntheticFamily::kConv:
      return Conv(target, rng);
    case SyntheticFamily::kBranchy:
      return Branchy(target, rng);
    case SyntheticFamily::kLayered:
      return Layered(target, rng);
    case SyntheticFamily::kWide:
      return Wide(target, rng);
    case SyntheticFamily::kExperts:
      return Experts(target, rng);
    case SyntheticFamily::kSkips:
      return Skips(target, rng);
  }
  return Layered(target, rng);
}

v1::Hardware RandomHardware(const v1::Graph& graph, int chips, double slack,
                            uint64_t seed) {
  std::mt19937_64 rng(seed);
  chips = std::clamp(chips, 1, kMaxChips);
  slack = std::max(slack, 1.05);
  double total = 0, largest = 0;
  for (const v1::Node& n : graph.nodes()) {
    const double r = n.param_bytes() + n.output_bytes();
    total += r;
    largest = std::max(largest, r);
  }
  const double sram = std::max({total / chips * slack, largest * 1.25, 1e6});
  const double flops = 64e12 * LogUniform(rng, 0.5, 2);
  const double mem_bw = 2e12 * LogUniform(rng, 0.5, 2);
  const double link_bw = 50e9 * LogUniform(rng, 0.25, 4);
  v1::Chip chip;
  chip.set_sram_bytes(sram);
  chip.set_peak_flops(flops);
  chip.set_mem_bandwidth(mem_bw);
  v1::Link link;
  link.set_link_bandwidth(link_bw);
  link.set_link_latency_s(1e-6);
  return IdenticalHardware(absl::StrCat("random", chips), chips, chip, link);
}

}  // namespace mcmpart::policy
