#include "solver/onnx_shape_rules.h"

#include <string>

#include "absl/container/flat_hash_set.h"
#include "solver/onnx_fold_math.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

// Output 0 has input 0's type and shape.
const absl::flat_hash_set<std::string>& ShapePreservingOps() {
  static const auto* ops =
      new absl::flat_hash_set<std::string>{"Abs",
                                           "Acos",
                                           "Acosh",
                                           "Asin",
                                           "Asinh",
                                           "Atan",
                                           "Atanh",
                                           "BatchNormalization",
                                           "Celu",
                                           "Ceil",
                                           "Clip",
                                           "Cos",
                                           "Cosh",
                                           "Elu",
                                           "Erf",
                                           "Exp",
                                           "Floor",
                                           "Gelu",
                                           "HardSigmoid",
                                           "HardSwish",
                                           "Hardmax",
                                           "Identity",
                                           "InstanceNormalization",
                                           "LRN",
                                           "LayerNormalization",
                                           "LeakyRelu",
                                           "Log",
                                           "LogSoftmax",
                                           "LpNormalization",
                                           "MeanVarianceNormalization",
                                           "Mish",
                                           "Neg",
                                           "Reciprocal",
                                           "Relu",
                                           "Round",
                                           "Selu",
                                           "Shrink",
                                           "Sigmoid",
                                           "Sign",
                                           "Sin",
                                           "Sinh",
                                           "Softmax",
                                           "Softplus",
                                           "Softsign",
                                           "Sqrt",
                                           "Tan",
                                           "Tanh",
                                           "ThresholdedRelu"};
  return *ops;
}

const absl::flat_hash_set<std::string>& BroadcastingOps() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Add",  "Sub",         "Mul",     "Div",           "Pow",
      "Mod",  "PRelu",       "Sum",     "Max",           "Min",
      "Mean", "And",         "Or",      "Xor",           "Equal",
      "Less", "LessOrEqual", "Greater", "GreaterOrEqual"};
  return *ops;
}

bool IsComparisonOrLogic(const std::string& op) {
  return op == "Equal" || op == "Less" || op == "LessOrEqual" ||
         op == "Greater" || op == "GreaterOrEqual" || op == "And" ||
         op == "Or" || op == "Xor";
}

std::optional<TensorInfo> BroadcastRule(
    const onnx::NodeProto& node, int opset,
    const std::vector<const TensorInfo*>& inputs) {
  std::vector<const std::vector<int64_t>*> shapes;
  for (int j = 0; j < node.input_size(); ++j) {
    if (node.input(j).empty()) continue;
    if (j >= static_cast<int>(inputs.size()) || inputs[j] == nullptr) {
      return std::nullopt;
    }
    shapes.push_back(&inputs[j]->dims);
  }
  if (shapes.empty()) return std::nullopt;
  TensorInfo info;
  info.elem_type = IsComparisonOrLogic(node.op_type()) ? onnx::TensorProto::BOOL
                                                       : inputs[0]->elem_type;
  // Before opset 7, `broadcast` = 1 let B broadcast to A, aligned at `axis`:
  // the result always has A's shape.
  const onnx::AttributeProto* legacy = FindAttribute(node, "broadcast");
  if (opset < 7 && legacy != nullptr && legacy->i() != 0) {
    info.dims = inputs[0]->dims;
    return info;
  }
  std::optional<std::vector<int64_t>> dims = BroadcastDims(shapes);
  if (!dims.has_value()) return std::nullopt;
  info.dims = *std::move(dims);
  return info;
}

}  // namespace

std::optional<TensorInfo> RuleOutputInfo(
    const onnx::NodeProto& node, int opset, int k,
    const std::vector<const TensorInfo*>& inputs) {
  if (!IsDefaultDomain(node.domain())) return std::nullopt;
  const std::string& op = node.op_type();
  const TensorInfo* x = inputs.empty() ? nullptr : inputs[0];
  if (op == "Dropout") {
    if (x == nullptr || k > 1) return std::nullopt;
    TensorInfo info = *x;
    if (k == 1 && opset >= 10) info.elem_type = onnx::TensorProto::BOOL;
    return info;
  }
  if (op == "BatchNormalization" && k >= 1 && k <= 4) {
    if (inputs.size() < 2 || inputs[1] == nullptr) return std::nullopt;
    return *inputs[1];  // Running or saved mean and variance, per channel.
  }
  if (ShapePreservingOps().contains(op)) {
    if (x == nullptr || k != 0) return std::nullopt;
    return *x;
  }
  if (op == "Cast") {
    const onnx::AttributeProto* to = FindAttribute(node, "to");
    if (x == nullptr || k != 0 || to == nullptr) return std::nullopt;
    TensorInfo info = *x;
    info.elem_type = static_cast<int32_t>(to->i());
    return info;
  }
  if (BroadcastingOps().contains(op) && k == 0) {
    return BroadcastRule(node, opset, inputs);
  }
  return std::nullopt;
}

}  // namespace onnx_internal
}  // namespace mcmpart
