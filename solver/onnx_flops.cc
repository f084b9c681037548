// FLOP formulas. The conventions are in docs/onnx-import.md ("FLOPs"): a
// multiply-add is 2 FLOPs, any other arithmetic operation 1.
#include "solver/onnx_flops.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

// Ops that only move or copy data: 0 FLOPs.
const absl::flat_hash_set<std::string>& DataMovementOps() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Cast",           "CastLike",        "Compress",     "Concat",
      "Constant",       "ConstantOfShape", "DepthToSpace", "Dropout",
      "Expand",         "EyeLike",         "Flatten",      "Gather",
      "GatherElements", "GatherND",        "Identity",     "Pad",
      "Reshape",        "ReverseSequence", "Scatter",      "ScatterElements",
      "ScatterND",      "Shape",           "Size",         "Slice",
      "SpaceToDepth",   "Split",           "Squeeze",      "Tile",
      "Transpose",      "Trilu",           "Unsqueeze"};
  return *ops;
}

const absl::flat_hash_set<std::string>& ReductionOps() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "ReduceL1",          "ReduceL2",        "ReduceLogSum", "ReduceLogSumExp",
      "ReduceMax",         "ReduceMean",      "ReduceMin",    "ReduceProd",
      "ReduceSum",         "ReduceSumSquare", "ArgMax",       "ArgMin",
      "GlobalAveragePool", "GlobalMaxPool",   "GlobalLpPool"};
  return *ops;
}

// The node's tensors, as the formulas read them.
class Operands {
 public:
  Operands(const onnx::NodeProto& p, absl::string_view label,
           const TensorLookup& lookup)
      : p_(p), label_(label), lookup_(lookup) {}

  absl::StatusOr<const TensorInfo*> Input(int k) const {
    if (!HasInput(k)) {
      return absl::InvalidArgumentError(
          absl::StrCat(label_, " lacks its input #", k));
    }
    return lookup_(p_.input(k), "input");
  }
  bool HasInput(int k) const {
    return k >= 0 && k < p_.input_size() && !p_.input(k).empty();
  }
  absl::StatusOr<const TensorInfo*> Output(int k) const {
    if (k >= p_.output_size() || p_.output(k).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label_, " lacks its output #", k));
    }
    return lookup_(p_.output(k), "output");
  }
  absl::Status RankError(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat(label_, ": ", what, " has an unexpected rank"));
  }
  int64_t IntAttr(absl::string_view name, int64_t fallback) const {
    const onnx::AttributeProto* a = FindAttribute(p_, name);
    return a == nullptr ? fallback : a->i();
  }
  // Elements of all outputs: the default and elementwise rule.
  absl::StatusOr<double> AllOutputElements() const {
    double total = 0;
    for (int k = 0; k < p_.output_size(); ++k) {
      if (p_.output(k).empty()) continue;
      absl::StatusOr<const TensorInfo*> out = Output(k);
      if (!out.ok()) return out.status();
      total += NumElements(**out);
    }
    return total;
  }
  // Elements of output 0 times `factor`.
  absl::StatusOr<double> OutputElementsTimes(double factor) const {
    absl::StatusOr<const TensorInfo*> y = Output(0);
    if (!y.ok()) return y.status();
    return factor * NumElements(**y);
  }
  const onnx::NodeProto& proto() const { return p_; }

 private:
  const onnx::NodeProto& p_;
  absl::string_view label_;
  const TensorLookup& lookup_;
};

// [..., M, K] x [..., K, N]: one multiply-add per output element and K.
absl::StatusOr<double> MatMulFlops(const Operands& o) {
  auto a = o.Input(0);
  auto y = o.Output(0);
  if (!a.ok()) return a.status();
  if (!y.ok()) return y.status();
  if ((*a)->dims.empty()) return o.RankError("input A");
  return 2 * NumElements(**y) * static_cast<double>((*a)->dims.back());
}

absl::StatusOr<double> GemmFlops(const Operands& o) {
  auto a = o.Input(0);
  auto y = o.Output(0);
  if (!a.ok()) return a.status();
  if (!y.ok()) return y.status();
  if ((*a)->dims.size() != 2) return o.RankError("input A");
  const double k =
      static_cast<double>((*a)->dims[o.IntAttr("transA", 0) != 0 ? 0 : 1]);
  const double mn = NumElements(**y);
  return 2 * mn * k + (o.HasInput(2) ? mn : 0.0);
}

// W is [C_out, C_in / group, k...]: each output element takes one
// multiply-add per weight of its output channel.
absl::StatusOr<double> ConvFlops(const Operands& o, const std::string& op) {
  const int w_index = op == "QLinearConv" ? 3 : 1;
  const int b_index = op == "QLinearConv" ? 8 : (op == "Conv" ? 2 : -1);
  auto w = o.Input(w_index);
  auto y = o.Output(0);
  if (!w.ok()) return w.status();
  if (!y.ok()) return y.status();
  if ((*w)->dims.empty() || (*w)->dims[0] == 0) return o.RankError("weight");
  const double per_output =
      NumElements(**w) / static_cast<double>((*w)->dims[0]);
  const double out = NumElements(**y);
  return 2 * out * per_output + (o.HasInput(b_index) ? out : 0);
}

// W is [C_in, C_out / group, k...]: each input element is scattered with
// one multiply-add per weight of its input channel.
absl::StatusOr<double> ConvTransposeFlops(const Operands& o) {
  auto x = o.Input(0);
  auto w = o.Input(1);
  auto y = o.Output(0);
  if (!x.ok()) return x.status();
  if (!w.ok()) return w.status();
  if (!y.ok()) return y.status();
  if ((*w)->dims.empty() || (*w)->dims[0] == 0) return o.RankError("weight");
  const double per_input =
      NumElements(**w) / static_cast<double>((*w)->dims[0]);
  return 2 * NumElements(**x) * per_input +
         (o.HasInput(2) ? NumElements(**y) : 0.0);
}

// One operation per window element per output element.
absl::StatusOr<double> PoolFlops(const Operands& o) {
  double window = 1;
  if (const onnx::AttributeProto* a =
          FindAttribute(o.proto(), "kernel_shape")) {
    for (int64_t k : a->ints()) window *= static_cast<double>(k);
  }
  return o.OutputElementsTimes(window);
}

// Per time step, batch row and direction, the input and recurrent
// projections: a multiply-add per weight of W and R.
absl::StatusOr<double> RecurrentFlops(const Operands& o) {
  auto x = o.Input(0);
  auto w = o.Input(1);
  auto r = o.Input(2);
  if (!x.ok()) return x.status();
  if (!w.ok()) return w.status();
  if (!r.ok()) return r.status();
  if ((*x)->dims.size() != 3 || (*x)->dims[2] == 0) {
    return o.RankError("input X");
  }
  const double steps_times_batch =
      NumElements(**x) / static_cast<double>((*x)->dims[2]);
  return 2 * steps_times_batch * (NumElements(**w) + NumElements(**r));
}

// Every point of the joint index space takes one operation per operand
// (k - 1 multiplies and an add); ellipses fall back to the default.
absl::StatusOr<double> EinsumFlops(const Operands& o) {
  const onnx::NodeProto& p = o.proto();
  const onnx::AttributeProto* eq = FindAttribute(p, "equation");
  const std::string equation = eq == nullptr ? "" : eq->s();
  const std::string lhs = equation.substr(0, equation.find("->"));
  if (equation.empty() || lhs.find('.') != std::string::npos) {
    return o.AllOutputElements();
  }
  std::vector<std::string> terms = absl::StrSplit(lhs, ',');
  if (static_cast<int>(terms.size()) != p.input_size()) {
    return o.AllOutputElements();
  }
  absl::flat_hash_map<char, int64_t> sizes;
  for (int k = 0; k < p.input_size(); ++k) {
    auto x = o.Input(k);
    if (!x.ok()) return x.status();
    std::string letters;
    for (char c : terms[k]) {
      if (c != ' ') letters.push_back(c);
    }
    if (letters.size() != (*x)->dims.size()) return o.AllOutputElements();
    for (size_t d = 0; d < letters.size(); ++d) {
      sizes[letters[d]] = (*x)->dims[d];
    }
  }
  double points = 1;
  for (const auto& [letter, size] : sizes) points *= static_cast<double>(size);
  return std::max(p.input_size(), 1) * points;
}

}  // namespace

absl::StatusOr<double> NodeFlops(const onnx::NodeProto& p,
                                 absl::string_view label,
                                 const TensorLookup& lookup) {
  const Operands o(p, label, lookup);
  if (!IsDefaultDomain(p.domain())) return o.AllOutputElements();
  const std::string& op = p.op_type();
  if (HasSubgraph(p) || DataMovementOps().contains(op)) return 0.0;
  if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul") {
    return MatMulFlops(o);
  }
  if (op == "Gemm") return GemmFlops(o);
  if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
    return ConvFlops(o, op);
  }
  if (op == "ConvTranspose") return ConvTransposeFlops(o);
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {
    return PoolFlops(o);
  }
  if (ReductionOps().contains(op)) {
    auto x = o.Input(0);  // One operation per input element.
    if (!x.ok()) return x.status();
    return NumElements(**x);
  }
  // Inference form: a per-channel scale and shift, one multiply-add.
  if (op == "BatchNormalization") return o.OutputElementsTimes(2);
  // Mean (1), centre (1), variance (multiply-add, 2), divide by the
  // deviation (1), then scale and shift (multiply-add, 2) = 7 per element;
  // MeanVarianceNormalization has no scale and shift: 5.
  if (op == "LayerNormalization" || op == "InstanceNormalization" ||
      op == "GroupNormalization") {
    return o.OutputElementsTimes(7);
  }
  if (op == "MeanVarianceNormalization") return o.OutputElementsTimes(5);
  // Max, subtract, exp, sum, divide (log) per element.
  if (op == "Softmax" || op == "LogSoftmax") return o.OutputElementsTimes(5);
  if (op == "Sum" || op == "Mean" || op == "Max" || op == "Min") {
    // Variadic elementwise: k inputs take k - 1 operations per element.
    int k = 0;
    for (const std::string& in : p.input()) k += in.empty() ? 0 : 1;
    return o.OutputElementsTimes(std::max(k - 1, 0));
  }
  if (op == "RNN" || op == "GRU" || op == "LSTM") return RecurrentFlops(o);
  if (op == "Einsum") return EinsumFlops(o);
  // Everything else (elementwise arithmetic and activations, comparisons,
  // resizes, ops without a formula): 1 per output element.
  return o.AllOutputElements();
}

}  // namespace onnx_internal
}  // namespace mcmpart
