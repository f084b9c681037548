// Error messages for shapes the importer cannot determine: which node,
// why, and what the user can declare to fix it (docs/onnx-import.md,
// "Errors").
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "solver/onnx_scope.h"
#include "solver/quote.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

// Ops whose output shape depends on the values in their inputs, not only on
// shapes: their outputs need a declared shape.
const absl::flat_hash_set<std::string>& DataDependentOps() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "NonZero", "Unique", "NonMaxSuppression", "Compress", "StringSplit"};
  return *ops;
}

// Inputs whose value (not only shape) sets the output shape, by op: a
// Reshape target, Slice bounds, Pad widths, a TopK k, ...
const absl::flat_hash_map<std::string, std::vector<int>>& ShapeValueInputs() {
  static const auto* inputs =
      new absl::flat_hash_map<std::string, std::vector<int>>{
          {"Reshape", {1}},    {"Expand", {1}},        {"ConstantOfShape", {0}},
          {"Tile", {1}},       {"Range", {0, 1, 2}},   {"Slice", {1, 2, 3, 4}},
          {"Pad", {1}},        {"Resize", {2, 3}},     {"Upsample", {1}},
          {"TopK", {1}},       {"OneHot", {1}},        {"Squeeze", {1}},
          {"Unsqueeze", {1}},  {"Split", {1}},         {"ReduceSum", {1}},
          {"ReduceMean", {1}}, {"ReduceMax", {1}},     {"ReduceMin", {1}},
          {"ReduceProd", {1}}, {"CenterCropPad", {1}}, {"GridSample", {}},
          {"Trilu", {}}};
  return *inputs;
}

}  // namespace

// Where a tensor whose value is unknown comes from, for error messages.
std::string GraphScope::DescribeRuntimeValue(const std::string& tensor) const {
  if (graph_inputs_.contains(tensor)) {
    return absl::StrCat("the graph input ", QuoteInput(tensor),
                        ", whose value is known only at run time");
  }
  const int producer = Producer(tensor);
  if (producer < 0) {
    return absl::StrCat(QuoteInput(tensor),
                        ", whose value is known only at run time");
  }
  if (constants_.contains(tensor)) {
    return absl::StrCat(QuoteInput(tensor),
                        ", a constant whose value the importer does not "
                        "compute (made by ",
                        Label(producer), ")");
  }
  return absl::StrCat(QuoteInput(tensor), ", which ", Label(producer),
                      " computes from activations at run time");
}

std::string GraphScope::DataDependence(int i) const {
  const onnx::NodeProto& p = *nodes_[i].proto;
  if (!IsDefaultDomain(p.domain())) return "";
  if (DataDependentOps().contains(p.op_type())) {
    return absl::StrCat(p.op_type(),
                        "'s output shape depends on the values in its "
                        "input, which are known only at run time");
  }
  auto it = ShapeValueInputs().find(p.op_type());
  if (it == ShapeValueInputs().end()) return "";
  for (int k : it->second) {
    if (k >= p.input_size() || p.input(k).empty()) continue;
    if (!values_.contains(p.input(k))) {
      return absl::StrCat("its output shape depends on the value of input #", k,
                          ", ", DescribeRuntimeValue(p.input(k)));
    }
  }
  return "";
}

absl::StatusOr<const TensorInfo*> GraphScope::Info(
    int i, const std::string& tensor, absl::string_view role) const {
  auto it = shapes_.find(tensor);
  if (it != shapes_.end()) return &it->second;
  const int producer = Producer(tensor);
  if (producer >= 0) {
    if (std::string depends = DataDependence(producer); !depends.empty()) {
      // Say which node and what would fix it.
      return absl::InvalidArgumentError(absl::StrCat(
          Label(producer), ": the shape of output ", QuoteInput(tensor),
          " cannot be determined: ", depends,
          "; declare it in the file: a value_info for ", QuoteInput(tensor),
          " with its shape (a symbolic dimension takes its value from "
          "--dim NAME=N)"));
    }
  }
  // Say why: the producer's inference failure is the useful part.
  std::string why = "the file gives no shape (value_info) for it";
  if (producer >= 0) {
    const std::string& error = nodes_[producer].inference_error;
    absl::StrAppend(&why, " and ONNX shape inference could not infer it",
                    error.empty() ? "" : absl::StrCat(": ", error));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Label(i), ": the shape of ", role, " ", QuoteInput(tensor),
                   " cannot be determined: ", why));
}

}  // namespace onnx_internal
}  // namespace mcmpart
