// The analysis of one ONNX graph: per-node shape inference, evaluation and
// folding of constants, and what the analysis answers about nodes and
// tensors. Loading the graph (its type sources, the index and order of its
// nodes) is in onnx_scope_load.cc. The rules are the ones
// docs/onnx-import.md documents; keep the two in step.
#include "solver/onnx_scope.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "onnx/defs/schema.h"
#include "onnx/shape_inference/implementation.h"
#include "solver/onnx_flops.h"
#include "solver/onnx_fold.h"
#include "solver/onnx_shape_rules.h"
#include "solver/quote.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

// Ops whose output is one of their inputs, relaid or retyped, or generated
// from a shape: applied to constants they only hand a weight on.
const absl::flat_hash_set<std::string>& PassThroughOps() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Identity",  "Reshape", "Flatten",  "Squeeze",         "Unsqueeze",
      "Transpose", "Cast",    "CastLike", "ConstantOfShape", "Expand"};
  return *ops;
}

// Elements of evaluated constants over a whole import, subgraphs included
// (each at most kMaxEvaluatedElements): with the per-tensor bound, this
// keeps the memory folding takes to some 100 MiB whatever the file.
constexpr double kMaxTotalEvaluatedElements = 1 << 22;

// What libonnx 1.12's inference for `p` trusts without checking, checked
// first: an error message when it would divide by zero or read out of
// bounds (and so crash the process), else empty. Found by tests/fuzz: the
// convolution and pooling inference divides by strides, dilations and
// group; ConvTranspose's takes its kernel rank from W (or kernel_shape) and
// indexes it, its strides, dilations, output_padding and pads, by X's
// spatial rank, and reads W's second dimension whatever W's rank. `x` and
// `w` are the types of inputs 0 and 1, null when unknown.
std::string UncheckedByLibonnx(const onnx::NodeProto& p, const TensorInfo* x,
                               const TensorInfo* w) {
  static const auto* conv_pool = new absl::flat_hash_set<std::string>{
      "Conv",    "ConvInteger", "QLinearConv", "ConvTranspose",
      "MaxPool", "AveragePool", "LpPool"};
  const std::string& op = p.op_type();
  if (!conv_pool->contains(op)) return "";
  for (const onnx::AttributeProto& a : p.attribute()) {
    if (a.name() == "group" && a.i() < 1) {
      return absl::StrCat(op, ": attribute group is ", a.i(),
                          "; must be at least 1");
    }
    if (a.name() != "strides" && a.name() != "dilations") continue;
    for (int k = 0; k < a.ints_size(); ++k) {
      if (a.ints(k) < 1) {
        return absl::StrCat(op, ": attribute ", a.name(), " has ", a.ints(k),
                            " at position ", k, "; each must be at least 1");
      }
    }
  }
  if (op != "ConvTranspose" || x == nullptr || w == nullptr ||
      x->dims.size() < 2) {
    return "";
  }
  const size_t spatial = x->dims.size() - 2;
  if (w->dims.size() != x->dims.size()) {
    return absl::StrCat("ConvTranspose: W has rank ", w->dims.size(),
                        " but X has rank ", x->dims.size(),
                        "; they must be equal");
  }
  for (const onnx::AttributeProto& a : p.attribute()) {
    const size_t want = a.name() == "pads" ? 2 * spatial : spatial;
    if ((a.name() == "kernel_shape" || a.name() == "strides" ||
         a.name() == "dilations" || a.name() == "output_padding" ||
         a.name() == "pads") &&
        static_cast<size_t>(a.ints_size()) != want) {
      return absl::StrCat("ConvTranspose: attribute ", a.name(), " has ",
                          a.ints_size(), " values; X's ", spatial,
                          " spatial dimensions need ", want);
    }
  }
  return "";
}

}  // namespace

GraphScope::GraphScope(const OnnxImportOptions& options,
                       std::unordered_map<std::string, int> opsets,
                       std::vector<std::string>* warnings)
    : options_(options),
      opsets_(std::move(opsets)),
      warnings_(warnings),
      evaluation_budget_(&own_budget_),
      own_budget_(kMaxTotalEvaluatedElements) {}

GraphScope::GraphScope(const GraphScope& parent, int depth)
    : options_(parent.options_),
      opsets_(parent.opsets_),
      warnings_(parent.warnings_),
      depth_(depth),
      evaluation_budget_(parent.evaluation_budget_),
      outer_names_(parent.outer_names_),
      constants_(parent.constants_),
      shapes_(parent.shapes_),
      onnx_types_(parent.onnx_types_),
      onnx_data_(parent.onnx_data_),
      values_(parent.values_) {
  for (const auto& [name, index] : parent.producer_) outer_names_.insert(name);
  outer_names_.insert(parent.initializers_.begin(), parent.initializers_.end());
  outer_names_.insert(parent.graph_inputs_.begin(), parent.graph_inputs_.end());
}

int GraphScope::Producer(const std::string& tensor) const {
  auto it = producer_.find(tensor);
  return it == producer_.end() ? -1 : it->second;
}

const TensorInfo* GraphScope::FindInfo(const std::string& tensor) const {
  auto it = shapes_.find(tensor);
  return it == shapes_.end() ? nullptr : &it->second;
}

int GraphScope::Opset(const onnx::NodeProto& node) const {
  auto it = opsets_.find(IsDefaultDomain(node.domain()) ? "" : node.domain());
  return it == opsets_.end() ? 0 : it->second;
}

absl::Status GraphScope::CheckOptions() const {
  // A dimension of 0 would make empty tensors: nothing to partition.
  if (options_.default_dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "default_dim is ", options_.default_dim, "; must be >= 1"));
  }
  for (const auto& [name, value] : options_.dim_values) {
    if (value < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dim_values[", QuoteInput(name), "] is ", value, "; must be >= 1"));
    }
  }
  return absl::OkStatus();
}

int64_t GraphScope::ResolveDim(
    const onnx::TensorShapeProto::Dimension& d) const {
  if (d.has_dim_value()) return d.dim_value();
  if (d.has_dim_param()) {
    auto it = options_.dim_values.find(d.dim_param());
    if (it != options_.dim_values.end()) return it->second;
  }
  return options_.default_dim;
}

// A tensor type whose every dimension is a number.
bool GraphScope::IsStatic(const onnx::TypeProto& type) {
  if (!type.has_tensor_type()) return false;
  const auto& tt = type.tensor_type();
  if (tt.elem_type() == 0 || !tt.has_shape()) return false;
  for (const auto& d : tt.shape().dim()) {
    if (!d.has_dim_value()) return false;
  }
  return true;
}

// The TensorInfo of `type`, or nullopt when it is not a tensor of known rank
// and element type.
absl::StatusOr<std::optional<TensorInfo>> GraphScope::Resolve(
    const std::string& tensor, const onnx::TypeProto& type) const {
  const onnx::TensorShapeProto* shape = nullptr;
  int32_t elem_type = 0;
  if (type.has_tensor_type()) {
    elem_type = type.tensor_type().elem_type();
    if (type.tensor_type().has_shape()) shape = &type.tensor_type().shape();
  } else if (type.has_sparse_tensor_type()) {
    // Counted dense: the consumer reads the whole tensor.
    elem_type = type.sparse_tensor_type().elem_type();
    if (type.sparse_tensor_type().has_shape()) {
      shape = &type.sparse_tensor_type().shape();
    }
  }
  if (elem_type == 0 || shape == nullptr) return std::nullopt;
  TensorInfo info;
  info.elem_type = elem_type;
  for (const auto& d : shape->dim()) {
    if (d.has_dim_value() && d.dim_value() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", QuoteInput(tensor),
                       " has a negative dimension ", d.dim_value()));
    }
    info.dims.push_back(ResolveDim(d));
  }
  return info;
}

void GraphScope::SetInfo(const std::string& tensor, TensorInfo info) {
  if (tensor.empty() || shapes_.contains(tensor)) return;
  onnx::TypeProto& type = type_storage_.emplace_back();
  auto* tt = type.mutable_tensor_type();
  tt->set_elem_type(info.elem_type);
  auto* shape = tt->mutable_shape();
  for (int64_t d : info.dims) shape->add_dim()->set_dim_value(d);
  onnx_types_[tensor] = &type;
  shapes_.emplace(tensor, std::move(info));
}

void GraphScope::SetValue(const std::string& tensor, ConstTensor value) {
  auto it = shapes_.find(tensor);
  if (it == shapes_.end() || values_.contains(tensor) ||
      it->second.dims != value.dims ||
      it->second.elem_type != value.elem_type) {
    return;
  }
  const double n = static_cast<double>(value.size());
  if (n > *evaluation_budget_) return;
  *evaluation_budget_ -= n;
  if (!onnx_data_.count(tensor)) {
    data_storage_.push_back(ToTensorProto(value));
    onnx_data_[tensor] = &data_storage_.back();
  }
  values_.emplace(tensor, std::move(value));
}

absl::Status GraphScope::Analyse() {
  for (int i : order_) {
    InferOutputs(i);
    if (HasSubgraph(*nodes_[i].proto)) AnalyseSubgraphs(i);
    FoldOrEvaluate(i);
    ApplyShapeRules(i);
    // The file's symbolic types are the last resort.
    for (const std::string& out : nodes_[i].proto->output()) {
      auto it = symbolic_.find(out);
      if (it != symbolic_.end()) SetInfo(out, it->second);
    }
  }
  return absl::OkStatus();
}

// Types the outputs of node i that the file does not type with numbers,
// running libonnx's shape inference for this one node on the types and
// constant values known so far. Node by node rather than libonnx's
// whole-graph pass because the importer feeds it the values of shape
// arithmetic it computes itself (libonnx 1.12 cannot propagate e.g. Div),
// without which Slice and Reshape outputs stay unknown.
void GraphScope::InferOutputs(int i) {
  Node& n = nodes_[i];
  bool missing = false;
  for (const std::string& out : n.proto->output()) {
    if (!out.empty() && !shapes_.contains(out)) missing = true;
  }
  if (!missing) return;
  const std::string domain =
      IsDefaultDomain(n.proto->domain()) ? "" : n.proto->domain();
  auto version = opsets_.find(domain);
  const onnx::OpSchema* schema =
      version == opsets_.end()
          ? nullptr
          : onnx::OpSchemaRegistry::Schema(n.proto->op_type(), version->second,
                                           domain);
  if (schema == nullptr) {
    n.inference_error = absl::StrCat(
        "libonnx knows no op ", QuoteInput(n.proto->op_type()), " in domain '",
        domain.empty() ? "ai.onnx" : domain, "'",
        version == opsets_.end() ? " (the model imports no opset for it)" : "");
    return;
  }
  try {
    schema->Verify(*n.proto);
    n.verified = true;
    if (std::string unsafe = UncheckedByLibonnx(
            *n.proto,
            n.proto->input_size() > 0 ? FindInfo(n.proto->input(0)) : nullptr,
            n.proto->input_size() > 1 ? FindInfo(n.proto->input(1)) : nullptr);
        !unsafe.empty()) {
      n.inference_error = std::move(unsafe);
      return;
    }
    onnx::shape_inference::InferenceContextImpl ctx(*n.proto, onnx_types_,
                                                    onnx_data_, {});
    schema->GetTypeAndShapeInferenceFunction()(ctx);
    for (int k = 0; k < n.proto->output_size(); ++k) {
      const std::string& out = n.proto->output(k);
      if (out.empty() || shapes_.contains(out)) continue;
      // Only complete answers: an unknown dimension here is one ONNX could
      // not compute, not a dynamic one the options could resolve.
      if (!IsStatic(ctx.allOutputTypes_[k])) continue;
      absl::StatusOr<std::optional<TensorInfo>> info =
          Resolve(out, ctx.allOutputTypes_[k]);
      if (info.ok() && info->has_value()) SetInfo(out, **std::move(info));
    }
    for (const std::string& out : n.proto->output()) {
      if (!out.empty() && !shapes_.contains(out)) {
        n.inference_error =
            absl::StrCat("libonnx's inference for ", n.proto->op_type(),
                         " gives no complete shape");
      }
    }
  } catch (const std::exception& e) {
    // The first line says what went wrong; the rest is libonnx context.
    std::string what = e.what();
    n.inference_error = what.substr(0, what.find('\n'));
  }
}

// A node is folded into its consumers when it computes a constant without
// reading any activation (docs/onnx-import.md, "Folded nodes"). When its
// inputs' values are known the importer computes its output's value, which
// later nodes' inference and evaluation read.
void GraphScope::FoldOrEvaluate(int i) {
  Node& n = nodes_[i];
  const onnx::NodeProto& p = *n.proto;
  if (!IsDefaultDomain(p.domain()) || HasSubgraph(p)) return;
  const std::string& op = p.op_type();
  // Shape and Size read only their input's shape, which is static once
  // dynamic dimensions are resolved.
  const bool reads_shape_only = op == "Shape" || op == "Size";
  const bool all_const = std::all_of(
      n.reads.begin(), n.reads.end(),
      [&](const std::string& in) { return constants_.contains(in); });
  if (op == "Constant") {
    n.folded = true;
  } else if (reads_shape_only || all_const) {
    std::vector<FoldInput> inputs;
    for (const std::string& in : p.input()) {
      FoldInput f;
      f.info = FindInfo(in);
      auto v = values_.find(in);
      if (v != values_.end()) f.value = &v->second;
      inputs.push_back(f);
    }
    if (std::optional<ConstTensor> v = EvaluateNode(p, Opset(p), inputs)) {
      SetInfo(p.output(0), TensorInfo{v->elem_type, v->dims});
      SetValue(p.output(0), *std::move(v));
      n.folded = true;
    } else if (reads_shape_only || PassThroughOps().contains(op)) {
      n.folded = true;
    } else {
      // Shape and index arithmetic the importer does not evaluate: integer
      // results from constants.
      n.folded = p.output_size() > 0;
      for (const std::string& out : p.output()) {
        if (out.empty()) continue;
        const TensorInfo* info = FindInfo(out);
        if (info == nullptr || !IsIntegerType(info->elem_type)) {
          n.folded = false;
        }
      }
    }
  }
  if (!n.folded) return;
  for (const std::string& out : p.output()) {
    if (!out.empty()) constants_.insert(out);
  }
}

// The importer's own rules, for outputs that inference left unknown.
void GraphScope::ApplyShapeRules(int i) {
  if (!nodes_[i].verified) return;
  const onnx::NodeProto& p = *nodes_[i].proto;
  // `inputs` points into shapes_, which may rehash on every SetInfo: all
  // outputs are worked out first, then recorded (a BatchNormalization in
  // training mode has three outputs from rules).
  std::vector<const TensorInfo*> inputs;
  for (const std::string& in : p.input()) inputs.push_back(FindInfo(in));
  std::vector<std::pair<const std::string*, TensorInfo>> found;
  for (int k = 0; k < p.output_size(); ++k) {
    const std::string& out = p.output(k);
    if (out.empty() || shapes_.contains(out)) continue;
    if (std::optional<TensorInfo> info =
            RuleOutputInfo(p, Opset(p), k, inputs)) {
      found.emplace_back(&out, *std::move(info));
    }
  }
  // SetInfo keeps the first of two outputs of one name, as before.
  for (auto& [out, info] : found) SetInfo(*out, std::move(info));
}

absl::StatusOr<double> GraphScope::Bytes(int i, const std::string& tensor,
                                         absl::string_view role) const {
  absl::StatusOr<const TensorInfo*> info = Info(i, tensor, role);
  if (!info.ok()) return info.status();
  const int32_t type = (*info)->elem_type;
  const int bits = ElementBits(type);
  if (bits == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        Label(i), ": ", role, " ", QuoteInput(tensor), " has element type ",
        onnx::TensorProto::DataType_IsValid(type)
            ? onnx::TensorProto::DataType_Name(
                  static_cast<onnx::TensorProto::DataType>(type))
            : absl::StrCat(type),
        ", whose size in bytes does not follow from its shape"));
  }
  const double bytes = std::ceil(NumElements(**info) * bits / 8);
  if (!std::isfinite(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(Label(i), ": ", role, " ",
                                                   QuoteInput(tensor),
                                                   " is too large to count"));
  }
  return bytes;
}

absl::StatusOr<double> GraphScope::Flops(int i) const {
  const Node& n = nodes_[i];
  if (HasSubgraph(*n.proto)) return n.body_flops.value_or(0);
  return NodeFlops(*n.proto, Label(i),
                   [&](const std::string& tensor, absl::string_view role) {
                     return Info(i, tensor, role);
                   });
}

}  // namespace onnx_internal
}  // namespace mcmpart
