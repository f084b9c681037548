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
