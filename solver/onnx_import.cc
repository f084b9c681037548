// ONNX import. The rules implemented here (which nodes are folded, how bytes
// and FLOPs are counted, how dynamic dimensions are resolved, how nodes are
// named) are the ones docs/onnx-import.md documents; keep the two in step.
#include "solver/onnx_import.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <new>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "solver/topological_order.h"
#include "onnx/defs/schema.h"
#include "onnx/onnx_pb.h"
#include "onnx/shape_inference/implementation.h"

namespace mcmpart {
namespace {

// A tensor's element type and its dimensions, every one of them a number
// (dynamic dimensions already resolved through OnnxImportOptions).
struct TensorInfo {
  int32_t elem_type = 0;
  std::vector<int64_t> dims;
};

// Bits per element of an ONNX element type; 0 when unknown or not fixed
// (STRING). Types newer than libonnx 1.12 (float8, 4-bit) are listed by
// number so that models using them still import.
int ElementBits(int32_t elem_type) {
  switch (elem_type) {
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case 17:  // FLOAT8E4M3FN
    case 18:  // FLOAT8E4M3FNUZ
    case 19:  // FLOAT8E5M2
    case 20:  // FLOAT8E5M2FNUZ
      return 8;
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::FLOAT16:
    case onnx::TensorProto::BFLOAT16:
      return 16;
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
      return 32;
    case onnx::TensorProto::DOUBLE:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
    case onnx::TensorProto::COMPLEX64:
      return 64;
    case onnx::TensorProto::COMPLEX128:
      return 128;
    case 21:  // UINT4
    case 22:  // INT4
    case 23:  // FLOAT4E2M1
      return 4;
    default:
      return 0;
  }
}

// Integer and boolean tensors: what shape and index arithmetic computes.
bool IsIntegerType(int32_t elem_type) {
  switch (elem_type) {
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::INT8:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT16:
    case onnx::TensorProto::UINT16:
    case onnx::TensorProto::INT32:
    case onnx::TensorProto::UINT32:
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::UINT64:
    case 21:  // UINT4
    case 22:  // INT4
      return true;
    default:
      return false;
  }
}

// Element counts are doubles: the figures they feed are doubles, and a
// hostile shape must overflow to infinity (caught below) rather than wrap.
double NumElements(const std::vector<int64_t>& dims) {
  double n = 1;
  for (int64_t d : dims) n *= static_cast<double>(d);
  return n;
}

double NumElements(const TensorInfo& t) { return NumElements(t.dims); }

bool IsDefaultDomain(const std::string& domain) {
  return domain.empty() || domain == "ai.onnx";
}

bool HasSubgraph(const onnx::NodeProto& node) {
  for (const onnx::AttributeProto& a : node.attribute()) {
    if (a.has_g() || a.graphs_size() > 0) return true;
  }
  return false;
}

// Tensors a subgraph (If/Loop/Scan body) reads from enclosing scopes without
// listing them as node inputs. They are real data dependencies of the node
// that owns the subgraph.
void CollectOuterReads(const onnx::GraphProto& g,
                       std::vector<std::string>* out) {
  absl::flat_hash_set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& t : g.sparse_initializer()) {
    defined.insert(t.values().name());
  }
  for (const auto& n : g.node()) {
    for (const std::string& o : n.output()) defined.insert(o);
  }
  for (const auto& n : g.node()) {
    for (const std::string& i : n.input()) {
      if (!i.empty() && !defined.contains(i)) out->push_back(i);
    }
    for (const onnx::AttributeProto& a : n.attribute()) {
      std::vector<std::string> inner;
      if (a.has_g()) CollectOuterReads(a.g(), &inner);
      for (const auto& sub : a.graphs()) CollectOuterReads(sub, &inner);
      for (std::string& name : inner) {
        if (!defined.contains(name)) out->push_back(std::move(name));
      }
    }
  }
}

// Ops whose output is one of their inputs, relaid or retyped: applied to
// constants they only hand a weight on.
const absl::flat_hash_set<std::string>& PassThroughOps() {
  static const auto* ops = new absl::flat_hash_set<std::string>{
      "Identity",  "Reshape", "Flatten",  "Squeeze",         "Unsqueeze",
      "Transpose", "Cast",    "CastLike", "ConstantOfShape", "Expand"};
  return *ops;
}

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

// Torch's exporter names every graph "torch_jit" (older versions
// "torch-jit-export"). Such a name tells the user nothing; leaving it empty
// lets LoadGraphFile name the graph after its file.
bool IsPlaceholderGraphName(const std::string& name) {
  return name == "torch_jit" || name == "torch-jit-export";
}

// An integer tensor's value, when the importer could compute it: what shape
// arithmetic produces and ONNX shape inference needs (Slice bounds, Reshape
// targets).
struct IntTensor {
  std::vector<int64_t> dims;
  std::vector<int64_t> data;
};

// Shape arithmetic works on a handful of numbers; anything larger is not
// evaluated, which bounds the work a hostile file can cause.
constexpr double kMaxEvaluatedElements = 1 << 16;

// Reads an integer TensorProto's inline data (typed fields or raw bytes).
std::optional<IntTensor> ParseIntTensor(const onnx::TensorProto& t) {
  if (!IsIntegerType(t.data_type()) || ElementBits(t.data_type()) < 8 ||
      t.data_location() == onnx::TensorProto::EXTERNAL) {
    return std::nullopt;
  }
  IntTensor v;
  v.dims.assign(t.dims().begin(), t.dims().end());
  for (int64_t d : v.dims) {
    if (d < 0) return std::nullopt;
  }
  const double n = NumElements(v.dims);
  if (!(n <= kMaxEvaluatedElements)) return std::nullopt;  // NaN too.
  const size_t count = static_cast<size_t>(n);
  const int32_t type = t.data_type();
  if (t.has_raw_data()) {
    const size_t width = static_cast<size_t>(ElementBits(type) / 8);
    const std::string& raw = t.raw_data();
    if (raw.size() != count * width) return std::nullopt;
    const bool is_signed =
        type == onnx::TensorProto::INT8 || type == onnx::TensorProto::INT16 ||
        type == onnx::TensorProto::INT32 || type == onnx::TensorProto::INT64;
    for (size_t k = 0; k < count; ++k) {
      uint64_t bits = 0;
      for (size_t b = 0; b < width; ++b) {  // ONNX raw data is little-endian.
        bits |= uint64_t{static_cast<unsigned char>(raw[k * width + b])}
                << (8 * b);
      }
      if (is_signed && width < 8 && (bits >> (8 * width - 1)) != 0) {
        bits |= ~uint64_t{0} << (8 * width);  // Sign-extend.
      }
      v.data.push_back(static_cast<int64_t>(bits));
    }
  } else if (type == onnx::TensorProto::INT64) {
    v.data.assign(t.int64_data().begin(), t.int64_data().end());
  } else if (type == onnx::TensorProto::UINT32 ||
             type == onnx::TensorProto::UINT64) {
    for (uint64_t x : t.uint64_data()) {
      v.data.push_back(static_cast<int64_t>(x));
    }
  } else {
    v.data.assign(t.int32_data().begin(), t.int32_data().end());
  }
  if (v.data.size() != count) return std::nullopt;
  return v;
}

// The TensorProto ONNX shape inference reads a constant input from.
onnx::TensorProto ToTensorProto(const IntTensor& v, int32_t elem_type) {
  onnx::TensorProto t;
  t.set_data_type(elem_type);
  for (int64_t d : v.dims) t.add_dims(d);
  for (int64_t x : v.data) {
    if (elem_type == onnx::TensorProto::INT64) {
      t.add_int64_data(x);
    } else if (elem_type == onnx::TensorProto::UINT32 ||
               elem_type == onnx::TensorProto::UINT64) {
      t.add_uint64_data(static_cast<uint64_t>(x));
    } else {
      t.add_int32_data(static_cast<int32_t>(x));
    }
  }
  return t;
}

// x's data broadcast (numpy rules) to `dims`, or nullopt when it does not
// broadcast.
std::optional<std::vector<int64_t>> BroadcastTo(
    const IntTensor& x, const std::vector<int64_t>& dims) {
  const size_t rank = dims.size();
  if (x.dims.size() > rank) return std::nullopt;
  // x's strides, aligned right, 0 where x is broadcast.
  std::vector<int64_t> strides(rank, 0);
  int64_t stride = 1;
  for (size_t k = 0; k < x.dims.size(); ++k) {
    const size_t xi = x.dims.size() - 1 - k;
    const size_t oi = rank - 1 - k;
    if (x.dims[xi] == dims[oi]) {
      strides[oi] = stride;
    } else if (x.dims[xi] != 1) {
      return std::nullopt;
    }
    stride *= x.dims[xi];
  }
  const size_t n = static_cast<size_t>(NumElements(dims));
  std::vector<int64_t> out(n);
  std::vector<int64_t> index(rank, 0);
  for (size_t k = 0; k < n; ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) offset += index[d] * strides[d];
    out[k] = x.data[static_cast<size_t>(offset)];
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < dims[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

// Integer arithmetic that wraps instead of being undefined on overflow: the
// operands come from untrusted files.
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) +
                              static_cast<uint64_t>(b));
}
int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) -
                              static_cast<uint64_t>(b));
}
int64_t WrapMul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) *
                              static_cast<uint64_t>(b));
}

// The integer elementwise ops shape arithmetic uses, and their arities.
bool ElementwiseArityOk(const std::string& op, int arity) {
  static const auto* kBinary = new absl::flat_hash_set<std::string>{
      "Add",     "Sub",         "Mul",
      "Div",     "Equal",       "Less",
      "Greater", "LessOrEqual", "GreaterOrEqual",
      "And",     "Or"};
  if (kBinary->contains(op)) return arity == 2;
  if (op == "Neg" || op == "Abs" || op == "Not") return arity == 1;
  if (op == "Where") return arity == 3;
  if (op == "Max" || op == "Min") return arity >= 1;
  return false;
}

// One element of an integer elementwise op; nullopt when undefined
// (division by zero).
std::optional<int64_t> ApplyElementwise(const std::string& op,
                                        const std::vector<int64_t>& x) {
  const int64_t a = x[0];
  const int64_t b = x.size() > 1 ? x[1] : 0;
  if (op == "Add") return WrapAdd(a, b);
  if (op == "Sub") return WrapSub(a, b);
  if (op == "Mul") return WrapMul(a, b);
  if (op == "Div") {
    if (b == 0 || (b == -1 && a == std::numeric_limits<int64_t>::min())) {
      return std::nullopt;
    }
    return a / b;  // Integer Div truncates, as in C.
  }
  if (op == "Neg") return WrapSub(0, a);
  if (op == "Abs") return a < 0 ? WrapSub(0, a) : a;
  if (op == "Equal") return a == b;
  if (op == "Less") return a < b;
  if (op == "Greater") return a > b;
  if (op == "LessOrEqual") return a <= b;
  if (op == "GreaterOrEqual") return a >= b;
  if (op == "Not") return a == 0;
  if (op == "And") return a != 0 && b != 0;
  if (op == "Or") return a != 0 || b != 0;
  if (op == "Where") return a != 0 ? b : x[2];
  if (op == "Max") return *std::max_element(x.begin(), x.end());
  if (op == "Min") return *std::min_element(x.begin(), x.end());
  return std::nullopt;
}

class Importer {
 public:
  explicit Importer(const OnnxImportOptions& options) : options_(options) {}

  absl::StatusOr<v1::Graph> Run(absl::string_view bytes);

 private:
  // One ONNX node as the importer sees it.
  struct Node {
    onnx::NodeProto* proto = nullptr;
    // op_type, with a domain prefix when not the default domain.
    std::string op;
    // Non-empty inputs, then the tensors its subgraphs read from outside.
    std::vector<std::string> reads;
    bool folded = false;
    // The mcmpart name, for kept nodes.
    std::string name;
    // Why libonnx could not infer its outputs, for error messages.
    std::string inference_error;
  };

  enum class Which { kStatic, kSymbolic, kAll };

  absl::Status CheckOptions() const;
  int64_t ResolveDim(const onnx::TensorShapeProto::Dimension& d) const;
  static bool IsStatic(const onnx::TypeProto& type);
  absl::StatusOr<std::optional<TensorInfo>> Resolve(
      const std::string& tensor, const onnx::TypeProto& type) const;
  // Records a tensor's type unless one is known already (the first source
  // wins, so sources are added from most to least trustworthy).
  void SetInfo(const std::string& tensor, TensorInfo info);
  void SetValue(const std::string& tensor, IntTensor value);
  // Adds the types that g's inputs, value_info and outputs declare (those
  // with every dimension a number, those with some symbolic, or all) to
  // `into`, where it has no entry yet.
  absl::Status AddValueInfos(
      const onnx::GraphProto& g, Which which,
      absl::flat_hash_map<std::string, TensorInfo>* into) const;
  absl::Status AddInitializers(const onnx::GraphProto& g);
  absl::Status AddConstantValue(const onnx::NodeProto& node);
  absl::Status IndexNodes(onnx::GraphProto* g);
  absl::StatusOr<std::vector<int>> TopologicalOrder() const;
  void InferOutputs(int i);
  void DecideFolding(int i);
  void Evaluate(int i);
  std::optional<IntTensor> EvaluateOutput(int i) const;
  void AssignNames();
  std::string Label(int i) const;
  absl::StatusOr<const TensorInfo*> Info(int i, const std::string& tensor,
                                         absl::string_view role) const;
  absl::StatusOr<double> Bytes(int i, const std::string& tensor,
                               absl::string_view role) const;
  absl::StatusOr<double> Flops(int i) const;
  absl::StatusOr<v1::Node> Convert(int i) const;

  const OnnxImportOptions& options_;
  // Opset version per domain ("" for the default ONNX domain).
  std::unordered_map<std::string, int> opset_;
  std::vector<Node> nodes_;
  // Tensor name -> index of the node that produces it.
  absl::flat_hash_map<std::string, int> producer_;
  absl::flat_hash_set<std::string> initializers_;
  absl::flat_hash_set<std::string> graph_inputs_;  // Non-initializer inputs.
  // Tensors whose value is known without running the model: initializers
  // and outputs of folded nodes.
  absl::flat_hash_set<std::string> constants_;
  // Every tensor whose type and shape are known, dimensions resolved.
  absl::flat_hash_map<std::string, TensorInfo> shapes_;
  // The file's declared types with symbolic dimensions, resolved: the last
  // resort for a tensor that shape inference cannot type.
  absl::flat_hash_map<std::string, TensorInfo> symbolic_;
  // The same types and the constant values, in the form libonnx's per-node
  // shape inference reads. Deques keep the pointers stable.
  std::deque<onnx::TypeProto> type_storage_;
  std::unordered_map<std::string, onnx::TypeProto*> onnx_types_;
  std::deque<onnx::TensorProto> data_storage_;
  std::unordered_map<std::string, const onnx::TensorProto*> onnx_data_;
  // Values of integer constants (shape arithmetic) the importer computed.
  absl::flat_hash_map<std::string, IntTensor> values_;
};

absl::Status Importer::CheckOptions() const {
  // A dimension of 0 would make empty tensors: nothing to partition.
  if (options_.default_dim < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "default_dim is ", options_.default_dim, "; must be >= 1"));
  }
  for (const auto& [name, value] : options_.dim_values) {
    if (value < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dim_values['", name, "'] is ", value, "; must be >= 1"));
    }
  }
  return absl::OkStatus();
}

int64_t Importer::ResolveDim(const onnx::TensorShapeProto::Dimension& d) const {
  if (d.has_dim_value()) return d.dim_value();
  if (d.has_dim_param()) {
    auto it = options_.dim_values.find(d.dim_param());
    if (it != options_.dim_values.end()) return it->second;
  }
  return options_.default_dim;
}

// A tensor type whose every dimension is a number.
bool Importer::IsStatic(const onnx::TypeProto& type) {
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
absl::StatusOr<std::optional<TensorInfo>> Importer::Resolve(
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
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor '", tensor, "' has a negative dimension ", d.dim_value()));
    }
    info.dims.push_back(ResolveDim(d));
  }
  return info;
}

void Importer::SetInfo(const std::string& tensor, TensorInfo info) {
  if (tensor.empty() || shapes_.contains(tensor)) return;
  onnx::TypeProto& type = type_storage_.emplace_back();
  auto* tt = type.mutable_tensor_type();
  tt->set_elem_type(info.elem_type);
  auto* shape = tt->mutable_shape();
  for (int64_t d : info.dims) shape->add_dim()->set_dim_value(d);
  onnx_types_[tensor] = &type;
  shapes_.emplace(tensor, std::move(info));
}

void Importer::SetValue(const std::string& tensor, IntTensor value) {
  auto it = shapes_.find(tensor);
  if (it == shapes_.end() || values_.contains(tensor)) return;
  if (!onnx_data_.count(tensor)) {
    data_storage_.push_back(ToTensorProto(value, it->second.elem_type));
    onnx_data_[tensor] = &data_storage_.back();
  }
  values_.emplace(tensor, std::move(value));
}

absl::Status Importer::AddValueInfos(
    const onnx::GraphProto& g, Which which,
    absl::flat_hash_map<std::string, TensorInfo>* into) const {
  for (const auto* list : {&g.input(), &g.value_info(), &g.output()}) {
    for (const onnx::ValueInfoProto& vi : *list) {
      if (into->contains(vi.name())) continue;
      const bool is_static = IsStatic(vi.type());
      if ((which == Which::kStatic && !is_static) ||
          (which == Which::kSymbolic && is_static)) {
        continue;
      }
      absl::StatusOr<std::optional<TensorInfo>> info =
          Resolve(vi.name(), vi.type());
      if (!info.ok()) return info.status();
      if (info->has_value()) into->emplace(vi.name(), **std::move(info));
    }
  }
  return absl::OkStatus();
}

// Initializers are constants whatever else the file says: their dims and
// type are authoritative. Only dims are counted, never the (absent) data;
// data stored inline is handed to shape inference, which may read small
// tensors (Reshape targets, Resize scales in older exports).
absl::Status Importer::AddInitializers(const onnx::GraphProto& g) {
  auto add = [this](const std::string& name, int32_t type,
                    const google::protobuf::RepeatedField<int64_t>& dims,
                    const onnx::TensorProto* inline_data) -> absl::Status {
    if (name.empty()) {
      return absl::InvalidArgumentError("an initializer has an empty name");
    }
    if (!initializers_.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", name, "' is declared twice"));
    }
    TensorInfo info;
    info.elem_type = type;
    for (int64_t d : dims) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "initializer '", name, "' has a negative dimension ", d));
      }
      info.dims.push_back(d);
    }
    SetInfo(name, std::move(info));
    constants_.insert(name);
    if (inline_data != nullptr &&
        inline_data->data_location() != onnx::TensorProto::EXTERNAL) {
      onnx_data_[name] = inline_data;
      if (std::optional<IntTensor> v = ParseIntTensor(*inline_data)) {
        SetValue(name, *std::move(v));
      }
    }
    return absl::OkStatus();
  };
  for (const onnx::TensorProto& t : g.initializer()) {
    if (absl::Status s = add(t.name(), t.data_type(), t.dims(), &t); !s.ok()) {
      return s;
    }
  }
  for (const onnx::SparseTensorProto& t : g.sparse_initializer()) {
    if (absl::Status s =
            add(t.values().name(), t.values().data_type(), t.dims(), nullptr);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// A Constant node's output type, and for integers its value, are in its
// attribute; reading them needs no shape inference.
absl::Status Importer::AddConstantValue(const onnx::NodeProto& node) {
  if (node.output_size() < 1 || node.output(0).empty()) {
    return absl::OkStatus();
  }
  const std::string& out = node.output(0);
  for (const onnx::AttributeProto& a : node.attribute()) {
    TensorInfo info;
    std::optional<IntTensor> value;
    if (a.name() == "value" && a.has_t()) {
      info.elem_type = a.t().data_type();
      info.dims.assign(a.t().dims().begin(), a.t().dims().end());
      value = ParseIntTensor(a.t());
      if (a.t().data_location() != onnx::TensorProto::EXTERNAL) {
        onnx_data_[out] = &a.t();  // Float data too: Resize reads scales.
      }
    } else if (a.name() == "sparse_value" && a.has_sparse_tensor()) {
      info.elem_type = a.sparse_tensor().values().data_type();
      info.dims.assign(a.sparse_tensor().dims().begin(),
                       a.sparse_tensor().dims().end());
    } else if (a.name() == "value_float") {
      info.elem_type = onnx::TensorProto::FLOAT;
    } else if (a.name() == "value_floats") {
      info.elem_type = onnx::TensorProto::FLOAT;
      info.dims = {a.floats_size()};
    } else if (a.name() == "value_int") {
      info.elem_type = onnx::TensorProto::INT64;
      value = IntTensor{{}, {a.i()}};
    } else if (a.name() == "value_ints") {
      info.elem_type = onnx::TensorProto::INT64;
      info.dims = {a.ints_size()};
      value = IntTensor{info.dims, {a.ints().begin(), a.ints().end()}};
    } else {
      continue;
    }
    for (int64_t d : info.dims) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Constant '", node.name(),
                         "' has a negative dimension ", d, " in its value"));
      }
    }
    SetInfo(out, std::move(info));
    if (value.has_value()) SetValue(out, *std::move(value));
    break;
  }
  return absl::OkStatus();
}

std::string Importer::Label(int i) const {
  const Node& n = nodes_[i];
  if (n.proto->name().empty()) {
    return absl::StrCat("node #", i, " (", n.op, ")");
  }
  return absl::StrCat("node '", n.proto->name(), "' (", n.op, ")");
}

absl::Status Importer::IndexNodes(onnx::GraphProto* g) {
  nodes_.resize(g->node_size());
  for (int i = 0; i < g->node_size(); ++i) {
    Node& n = nodes_[i];
    n.proto = g->mutable_node(i);
    n.op = IsDefaultDomain(n.proto->domain())
               ? n.proto->op_type()
               : absl::StrCat(n.proto->domain(), ".", n.proto->op_type());
    if (n.proto->op_type().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Label(i), " has no op_type"));
    }
    for (const std::string& in : n.proto->input()) {
      if (!in.empty()) n.reads.push_back(in);
    }
    for (const onnx::AttributeProto& a : n.proto->attribute()) {
      if (a.has_g()) CollectOuterReads(a.g(), &n.reads);
      for (const auto& sub : a.graphs()) CollectOuterReads(sub, &n.reads);
    }
    for (const std::string& out : n.proto->output()) {
      if (out.empty()) continue;  // An omitted optional output.
      auto [it, inserted] = producer_.emplace(out, i);
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor '", out, "' is an output of both ",
                         Label(it->second), " and ", Label(i)));
      }
      if (initializers_.contains(out) || graph_inputs_.contains(out)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor '", out, "' is an output of ", Label(i), " and also a ",
            initializers_.contains(out) ? "initializer" : "graph input"));
      }
    }
  }
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    for (const std::string& in : nodes_[i].reads) {
      if (!producer_.contains(in) && !initializers_.contains(in) &&
          !graph_inputs_.contains(in)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Label(i), " reads tensor '", in,
            "', which no node produces and which is neither a graph input "
            "nor an initializer"));
      }
    }
  }
  return absl::OkStatus();
}

// ONNX requires nodes in topological order, but files do not always comply;
// inference and folding need producers handled before consumers. Stable: a
// sorted file keeps its order.
absl::StatusOr<std::vector<int>> Importer::TopologicalOrder() const {
  const int n = static_cast<int>(nodes_.size());
  std::vector<std::vector<int>> preds(n);
  for (int v = 0; v < n; ++v) {
    absl::flat_hash_set<int> distinct;
    for (const std::string& in : nodes_[v].reads) {
      auto it = producer_.find(in);
      if (it != producer_.end()) distinct.insert(it->second);
    }
    for (int u : distinct) {
      if (u == v) {
        return absl::InvalidArgumentError(
            absl::StrCat(Label(v), " reads its own output"));
      }
      preds[v].push_back(u);
    }
  }
  std::vector<int> order, cycle;
  if (!StableTopologicalOrder(preds, &order, &cycle)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ONNX graph has a cycle through ", Label(cycle.front())));
  }
  return order;
}

// Types the outputs of node i that the file does not type with numbers,
// running libonnx's shape inference for this one node on the types and
// constant values known so far. Node by node rather than libonnx's
// whole-graph pass because the importer feeds it the values of shape
// arithmetic it computes itself (libonnx 1.12 cannot propagate e.g. Div),
// without which Slice and Reshape outputs stay unknown.
void Importer::InferOutputs(int i) {
  Node& n = nodes_[i];
  bool missing = false;
  for (const std::string& out : n.proto->output()) {
    if (!out.empty() && !shapes_.contains(out)) missing = true;
  }
  if (!missing) return;
  const std::string domain =
      IsDefaultDomain(n.proto->domain()) ? "" : n.proto->domain();
  auto version = opset_.find(domain);
  const onnx::OpSchema* schema =
      version == opset_.end()
          ? nullptr
          : onnx::OpSchemaRegistry::Schema(n.proto->op_type(), version->second,
                                           domain);
  if (schema == nullptr) {
    n.inference_error = absl::StrCat(
        "libonnx knows no op '", n.proto->op_type(), "' in domain '",
        domain.empty() ? "ai.onnx" : domain, "'",
        version == opset_.end() ? " (the model imports no opset for it)" : "");
  } else {
    try {
      schema->Verify(*n.proto);
      onnx::shape_inference::InferenceContextImpl ctx(*n.proto, onnx_types_,
                                                      onnx_data_, {});
      schema->GetTypeAndShapeInferenceFunction()(ctx);
      for (int k = 0; k < n.proto->output_size(); ++k) {
        const std::string& out = n.proto->output(k);
        if (out.empty() || shapes_.contains(out)) continue;
        // Only complete answers: an unknown dimension here is one ONNX
        // could not compute, not a dynamic one the options could resolve.
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
  for (const std::string& out : n.proto->output()) {
    auto it = symbolic_.find(out);
    if (it != symbolic_.end()) SetInfo(out, it->second);
  }
}

// A node is folded into its consumers when it computes a constant without
// reading any activation (docs/onnx-import.md, "Folded nodes").
void Importer::DecideFolding(int i) {
  Node& n = nodes_[i];
  const onnx::NodeProto& p = *n.proto;
  if (!IsDefaultDomain(p.domain()) || HasSubgraph(p)) return;
  const std::string& op = p.op_type();
  bool fold = false;
  if (op == "Constant" || op == "Shape" || op == "Size") {
    // Shape and Size read only their input's shape, which is static once
    // dynamic dimensions are resolved.
    fold = true;
  } else {
    bool all_const = true;
    for (const std::string& in : n.reads) {
      if (!constants_.contains(in)) {
        all_const = false;
        break;
      }
    }
    if (all_const) {
      if (PassThroughOps().contains(op)) {
        fold = true;
      } else {
        // Shape and index arithmetic: integer results from constants.
        fold = p.output_size() > 0;
        for (const std::string& out : p.output()) {
          if (out.empty()) continue;
          auto it = shapes_.find(out);
          if (it == shapes_.end() || !IsIntegerType(it->second.elem_type)) {
            fold = false;
            break;
          }
        }
      }
    }
  }
  if (!fold) return;
  n.folded = true;
  for (const std::string& out : p.output()) {
    if (!out.empty()) constants_.insert(out);
  }
}

// Computes the value of a folded node's single integer output, for the ops
// shape arithmetic uses; nullopt for anything else.
std::optional<IntTensor> Importer::EvaluateOutput(int i) const {
  const onnx::NodeProto& p = *nodes_[i].proto;
  if (p.output_size() != 1) return std::nullopt;
  auto out_info = shapes_.find(p.output(0));
  if (out_info == shapes_.end() || !IsIntegerType(out_info->second.elem_type) ||
      !(NumElements(out_info->second) <= kMaxEvaluatedElements)) {
    return std::nullopt;
  }
  const std::vector<int64_t>& out_dims = out_info->second.dims;
  const std::string& op = p.op_type();
  auto attr = [&](absl::string_view name) -> const onnx::AttributeProto* {
    for (const auto& a : p.attribute()) {
      if (a.name() == name) return &a;
    }
    return nullptr;
  };
  auto value = [&](int k) -> const IntTensor* {
    if (k >= p.input_size()) return nullptr;
    auto it = values_.find(p.input(k));
    return it == values_.end() ? nullptr : &it->second;
  };
  // Reads an optional list argument given as input k (newer opsets) or
  // attribute `name` (older ones).
  auto list_arg = [&](int k, absl::string_view name,
                      std::vector<int64_t>* out) -> bool {
    if (k < p.input_size() && !p.input(k).empty()) {
      const IntTensor* v = value(k);
      if (v == nullptr) return false;
      *out = v->data;
      return true;
    }
    if (const onnx::AttributeProto* a = attr(name)) {
      out->assign(a->ints().begin(), a->ints().end());
    }
    return true;
  };

  IntTensor r;
  r.dims = out_dims;
  const size_t n = static_cast<size_t>(NumElements(out_dims));

  if (op == "Shape") {
    auto in = shapes_.find(p.input_size() > 0 ? p.input(0) : "");
    if (in == shapes_.end()) return std::nullopt;
    const int64_t rank = static_cast<int64_t>(in->second.dims.size());
    int64_t start = 0, end = rank;
    if (const auto* a = attr("start")) start = a->i();
    if (const auto* a = attr("end")) end = a->i();
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    start = std::clamp<int64_t>(start, 0, rank);
    end = std::clamp<int64_t>(end, 0, rank);
    for (int64_t k = start; k < end; ++k) r.data.push_back(in->second.dims[k]);
  } else if (op == "Size") {
    auto in = shapes_.find(p.input_size() > 0 ? p.input(0) : "");
    if (in == shapes_.end()) return std::nullopt;
    r.data.push_back(static_cast<int64_t>(NumElements(in->second)));
  } else if (op == "Identity" || op == "Reshape" || op == "Flatten" ||
             op == "Squeeze" || op == "Unsqueeze" || op == "Cast") {
    // Same elements, new layout or type (bool casts normalised).
    const IntTensor* x = value(0);
    if (x == nullptr) return std::nullopt;
    r.data = x->data;
    if (out_info->second.elem_type == onnx::TensorProto::BOOL) {
      for (int64_t& e : r.data) e = e != 0;
    }
  } else if (op == "Gather") {
    const IntTensor* data = value(0);
    const IntTensor* idx = value(1);
    const auto* axis = attr("axis");
    if (data == nullptr || idx == nullptr || data->dims.size() != 1 ||
        (axis != nullptr && axis->i() != 0 && axis->i() != -1)) {
      return std::nullopt;
    }
    const int64_t size = data->dims[0];
    for (int64_t k : idx->data) {
      if (k < 0) k += size;
      if (k < 0 || k >= size) return std::nullopt;
      r.data.push_back(data->data[static_cast<size_t>(k)]);
    }
  } else if (op == "Concat") {
    for (int k = 0; k < p.input_size(); ++k) {
      const IntTensor* x = value(k);
      if (x == nullptr || x->dims.size() != 1) return std::nullopt;
      r.data.insert(r.data.end(), x->data.begin(), x->data.end());
    }
  } else if (op == "Slice") {
    const IntTensor* x = value(0);
    std::vector<int64_t> starts, ends, axes, steps;
    if (x == nullptr || x->dims.size() != 1 ||
        !list_arg(1, "starts", &starts) || !list_arg(2, "ends", &ends) ||
        !list_arg(3, "axes", &axes) || !list_arg(4, "steps", &steps) ||
        starts.size() != 1 || ends.size() != 1 ||
        (!axes.empty() && axes[0] != 0 && axes[0] != -1) ||
        (!steps.empty() && steps[0] == 0)) {
      return std::nullopt;
    }
    const int64_t size = x->dims[0];
    const int64_t step = steps.empty() ? 1 : steps[0];
    int64_t start = starts[0], end = ends[0];
    if (start < 0) start += size;
    if (end < 0) end += size;
    if (step > 0) {
      start = std::clamp<int64_t>(start, 0, size);
      end = std::clamp<int64_t>(end, 0, size);
      for (int64_t k = start; k < end; k += step) r.data.push_back(x->data[k]);
    } else {
      start = std::clamp<int64_t>(start, 0, size - 1);
      end = std::clamp<int64_t>(end, -1, size - 1);
      for (int64_t k = start; k > end; k += step) r.data.push_back(x->data[k]);
    }
  } else if (op == "Range") {
    const IntTensor* start = value(0);
    const IntTensor* delta = value(2);
    if (start == nullptr || delta == nullptr || start->data.size() != 1 ||
        delta->data.size() != 1) {
      return std::nullopt;
    }
    for (size_t k = 0; k < n; ++k) {
      r.data.push_back(WrapAdd(
          start->data[0], WrapMul(delta->data[0], static_cast<int64_t>(k))));
    }
  } else if (op == "ConstantOfShape") {
    int64_t fill = 0;
    if (const auto* a = attr("value"); a != nullptr && a->has_t()) {
      std::optional<IntTensor> v = ParseIntTensor(a->t());
      if (!v.has_value() || v->data.size() != 1) return std::nullopt;
      fill = v->data[0];
    }
    r.data.assign(n, fill);
  } else if (op == "Expand") {
    const IntTensor* x = value(0);
    if (x == nullptr) return std::nullopt;
    std::optional<std::vector<int64_t>> b = BroadcastTo(*x, out_dims);
    if (!b.has_value()) return std::nullopt;
    r.data = *std::move(b);
  } else {
    // Elementwise, with numpy broadcasting.
    if (!ElementwiseArityOk(op, p.input_size())) return std::nullopt;
    std::vector<std::vector<int64_t>> args;
    for (int k = 0; k < p.input_size(); ++k) {
      const IntTensor* x = value(k);
      if (x == nullptr) return std::nullopt;
      std::optional<std::vector<int64_t>> b = BroadcastTo(*x, out_dims);
      if (!b.has_value()) return std::nullopt;
      args.push_back(*std::move(b));
    }
    std::vector<int64_t> at(args.size());
    for (size_t k = 0; k < n; ++k) {
      for (size_t j = 0; j < args.size(); ++j) at[j] = args[j][k];
      std::optional<int64_t> y = ApplyElementwise(op, at);
      if (!y.has_value()) return std::nullopt;
      r.data.push_back(*y);
    }
  }
  if (r.data.size() != n) return std::nullopt;
  return r;
}

void Importer::Evaluate(int i) {
  const onnx::NodeProto& p = *nodes_[i].proto;
  if (p.output_size() != 1 || values_.contains(p.output(0))) return;
  if (std::optional<IntTensor> v = EvaluateOutput(i)) {
    SetValue(p.output(0), *std::move(v));
  }
}

// ONNX node names when usable; generated ones otherwise. A name already in
// use (by a graph input or another node) is never handed out again, so that
// every input name resolves to exactly one thing.
void Importer::AssignNames() {
  absl::flat_hash_set<std::string> taken(graph_inputs_.begin(),
                                         graph_inputs_.end());
  std::vector<int> unnamed;
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    Node& n = nodes_[i];
    if (n.folded) continue;
    if (!n.proto->name().empty() && taken.insert(n.proto->name()).second) {
      n.name = n.proto->name();
    } else {
      unnamed.push_back(i);
    }
  }
  for (int i : unnamed) {
    Node& n = nodes_[i];
    const std::string base = absl::StrCat(
        n.proto->name().empty() ? n.proto->op_type() : n.proto->name(), "_", i);
    std::string candidate = base;
    for (int k = 2; !taken.insert(candidate).second; ++k) {
      candidate = absl::StrCat(base, "_", k);
    }
    n.name = std::move(candidate);
  }
}

absl::StatusOr<const TensorInfo*> Importer::Info(int i,
                                                 const std::string& tensor,
                                                 absl::string_view role) const {
  auto it = shapes_.find(tensor);
  if (it != shapes_.end()) return &it->second;
  // Say why: the producer's inference failure is the useful part.
  std::string why = "the file gives no shape (value_info) for it";
  auto producer = producer_.find(tensor);
  if (producer != producer_.end()) {
    const std::string& error = nodes_[producer->second].inference_error;
    absl::StrAppend(&why, " and ONNX shape inference could not infer it",
                    error.empty() ? "" : absl::StrCat(": ", error));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(Label(i), ": the shape of ", role, " '", tensor,
                   "' cannot be determined: ", why));
}

absl::StatusOr<double> Importer::Bytes(int i, const std::string& tensor,
                                       absl::string_view role) const {
  absl::StatusOr<const TensorInfo*> info = Info(i, tensor, role);
  if (!info.ok()) return info.status();
  const int32_t type = (*info)->elem_type;
  const int bits = ElementBits(type);
  if (bits == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(Label(i), ": ", role, " '", tensor, "' has element type ",
                     onnx::TensorProto::DataType_IsValid(type)
                         ? onnx::TensorProto::DataType_Name(
                               static_cast<onnx::TensorProto::DataType>(type))
                         : absl::StrCat(type),
                     ", whose size in bytes does not follow from its shape"));
  }
  const double bytes = std::ceil(NumElements(**info) * bits / 8);
  if (!std::isfinite(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(
        Label(i), ": ", role, " '", tensor, "' is too large to count"));
  }
  return bytes;
}

// FLOPs of one kept node; the conventions are in docs/onnx-import.md
// ("FLOPs"). A multiply-add is 2 FLOPs.
absl::StatusOr<double> Importer::Flops(int i) const {
  const Node& n = nodes_[i];
  const onnx::NodeProto& p = *n.proto;
  auto input = [&](int k) -> absl::StatusOr<const TensorInfo*> {
    if (k >= p.input_size() || p.input(k).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Label(i), " lacks its input #", k));
    }
    return Info(i, p.input(k), "input");
  };
  auto has_input = [&](int k) {
    return k < p.input_size() && !p.input(k).empty();
  };
  auto output = [&](int k) -> absl::StatusOr<const TensorInfo*> {
    if (k >= p.output_size() || p.output(k).empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Label(i), " lacks its output #", k));
    }
    return Info(i, p.output(k), "output");
  };
  auto rank_error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(
        absl::StrCat(Label(i), ": ", what, " has an unexpected rank"));
  };
  auto int_attr = [&](absl::string_view name, int64_t fallback) {
    for (const auto& a : p.attribute()) {
      if (a.name() == name) return a.i();
    }
    return fallback;
  };
  // Elements of all outputs: the default and elementwise rule.
  auto all_output_elements = [&]() -> absl::StatusOr<double> {
    double total = 0;
    for (int k = 0; k < p.output_size(); ++k) {
      if (p.output(k).empty()) continue;
      absl::StatusOr<const TensorInfo*> out = output(k);
      if (!out.ok()) return out.status();
      total += NumElements(**out);
    }
    return total;
  };

  if (!IsDefaultDomain(p.domain())) return all_output_elements();
  const std::string& op = p.op_type();

  // Subgraph bodies are not costed: see docs/onnx-import.md.
  if (HasSubgraph(p) || DataMovementOps().contains(op)) return 0.0;

  if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul") {
    // [..., M, K] x [..., K, N]: one multiply-add per output element and K.
    auto a = input(0);
    auto y = output(0);
    if (!a.ok()) return a.status();
    if (!y.ok()) return y.status();
    if ((*a)->dims.empty()) return rank_error("input A");
    return 2 * NumElements(**y) * static_cast<double>((*a)->dims.back());
  }
  if (op == "Gemm") {
    auto a = input(0);
    auto y = output(0);
    if (!a.ok()) return a.status();
    if (!y.ok()) return y.status();
    if ((*a)->dims.size() != 2) return rank_error("input A");
    const double k =
        static_cast<double>((*a)->dims[int_attr("transA", 0) != 0 ? 0 : 1]);
    const double mn = NumElements(**y);
    return 2 * mn * k + (has_input(2) ? mn : 0.0);
  }
  if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
    // W is [C_out, C_in / group, k...]: each output element takes one
    // multiply-add per weight of its output channel.
    const int w_index = op == "QLinearConv" ? 3 : 1;
    const int b_index = op == "QLinearConv" ? 8 : (op == "Conv" ? 2 : -1);
    auto w = input(w_index);
    auto y = output(0);
    if (!w.ok()) return w.status();
    if (!y.ok()) return y.status();
    if ((*w)->dims.empty() || (*w)->dims[0] == 0) return rank_error("weight");
    const double per_output =
        NumElements(**w) / static_cast<double>((*w)->dims[0]);
    const double out = NumElements(**y);
    return 2 * out * per_output +
           (b_index >= 0 && has_input(b_index) ? out : 0);
  }
  if (op == "ConvTranspose") {
    // W is [C_in, C_out / group, k...]: each input element is scattered
    // with one multiply-add per weight of its input channel.
    auto x = input(0);
    auto w = input(1);
    auto y = output(0);
    if (!x.ok()) return x.status();
    if (!w.ok()) return w.status();
    if (!y.ok()) return y.status();
    if ((*w)->dims.empty() || (*w)->dims[0] == 0) return rank_error("weight");
    const double per_input =
        NumElements(**w) / static_cast<double>((*w)->dims[0]);
    return 2 * NumElements(**x) * per_input +
           (has_input(2) ? NumElements(**y) : 0.0);
  }
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {
    // One operation per window element per output element.
    auto y = output(0);
    if (!y.ok()) return y.status();
    double window = 1;
    for (const auto& a : p.attribute()) {
      if (a.name() == "kernel_shape") {
        for (int64_t k : a.ints()) window *= static_cast<double>(k);
      }
    }
    return NumElements(**y) * window;
  }
  if (ReductionOps().contains(op)) {
    // One operation per input element.
    auto x = input(0);
    if (!x.ok()) return x.status();
    return NumElements(**x);
  }
  if (op == "BatchNormalization") {
    // Inference form: a per-channel scale and shift, one multiply-add.
    auto y = output(0);
    if (!y.ok()) return y.status();
    return 2 * NumElements(**y);
  }
  if (op == "LayerNormalization" || op == "InstanceNormalization" ||
      op == "GroupNormalization" || op == "MeanVarianceNormalization") {
    // Mean (1), centre (1), variance (multiply-add, 2), divide by the
    // deviation (1), then scale and shift (multiply-add, 2) = 7 per element;
    // MeanVarianceNormalization has no scale and shift: 5.
    auto y = output(0);
    if (!y.ok()) return y.status();
    return (op == "MeanVarianceNormalization" ? 5 : 7) * NumElements(**y);
  }
  if (op == "Softmax" || op == "LogSoftmax") {
    // Max, subtract, exp, sum, divide (log) per element.
    auto y = output(0);
    if (!y.ok()) return y.status();
    return 5 * NumElements(**y);
  }
  if (op == "Sum" || op == "Mean" || op == "Max" || op == "Min") {
    // Variadic elementwise: k inputs take k - 1 operations per element.
    auto y = output(0);
    if (!y.ok()) return y.status();
    int k = 0;
    for (const std::string& in : p.input()) k += in.empty() ? 0 : 1;
    return std::max(k - 1, 0) * NumElements(**y);
  }
  if (op == "RNN" || op == "GRU" || op == "LSTM") {
    // Per time step, batch row and direction, the input and recurrent
    // projections: a multiply-add per weight of W and R.
    auto x = input(0);
    auto w = input(1);
    auto r = input(2);
    if (!x.ok()) return x.status();
    if (!w.ok()) return w.status();
    if (!r.ok()) return r.status();
    if ((*x)->dims.size() != 3 || (*x)->dims[2] == 0) {
      return rank_error("input X");
    }
    const double steps_times_batch =
        NumElements(**x) / static_cast<double>((*x)->dims[2]);
    return 2 * steps_times_batch * (NumElements(**w) + NumElements(**r));
  }
  if (op == "Einsum") {
    // Every point of the joint index space takes one operation per operand
    // (k - 1 multiplies and an add); ellipses fall back to the default.
    std::string equation;
    for (const auto& a : p.attribute()) {
      if (a.name() == "equation") equation = a.s();
    }
    const std::string lhs = equation.substr(0, equation.find("->"));
    if (!equation.empty() && lhs.find('.') == std::string::npos) {
      std::vector<std::string> terms = absl::StrSplit(lhs, ',');
      if (static_cast<int>(terms.size()) == p.input_size()) {
        absl::flat_hash_map<char, int64_t> sizes;
        bool ok = true;
        for (int k = 0; k < p.input_size() && ok; ++k) {
          auto x = input(k);
          if (!x.ok()) return x.status();
          std::string letters;
          for (char c : terms[k]) {
            if (c != ' ') letters.push_back(c);
          }
          if (letters.size() != (*x)->dims.size()) {
            ok = false;
            break;
          }
          for (size_t d = 0; d < letters.size(); ++d) {
            sizes[letters[d]] = (*x)->dims[d];
          }
        }
        if (ok) {
          double points = 1;
          for (const auto& [letter, size] : sizes) {
            points *= static_cast<double>(size);
          }
          return std::max(p.input_size(), 1) * points;
        }
      }
    }
  }
  // Everything else (elementwise arithmetic and activations, comparisons,
  // resizes, ops without a formula): 1 per output element.
  return all_output_elements();
}

absl::StatusOr<v1::Node> Importer::Convert(int i) const {
  const Node& n = nodes_[i];
  v1::Node out;
  out.set_name(n.name);
  out.set_op(n.op);
  double param_bytes = 0;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& in : n.reads) {
    if (!seen.insert(in).second) continue;  // Read twice, stored once.
    if (constants_.contains(in)) {
      // A weight or constant, folded or not: it lives with this consumer.
      absl::StatusOr<double> bytes = Bytes(i, in, "constant input");
      if (!bytes.ok()) return bytes.status();
      param_bytes += *bytes;
    } else if (auto it = producer_.find(in); it != producer_.end()) {
      out.add_inputs(nodes_[it->second].name);
    } else {
      out.add_inputs(in);  // A graph input: no edge.
    }
  }
  double output_bytes = 0;
  for (const std::string& o : n.proto->output()) {
    if (o.empty()) continue;
    absl::StatusOr<double> bytes = Bytes(i, o, "output");
    if (!bytes.ok()) return bytes.status();
    output_bytes += *bytes;
  }
  absl::StatusOr<double> flops = Flops(i);
  if (!flops.ok()) return flops.status();
  for (auto [field, value] :
       {std::pair<absl::string_view, double>{"FLOPs", *flops},
        {"param bytes", param_bytes},
        {"output bytes", output_bytes}}) {
    if (!std::isfinite(value) || value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(Label(i), ": its ", field, " come out as ", value,
                       "; the tensor shapes are out of range"));
    }
  }
  out.set_flops(*flops);
  out.set_param_bytes(param_bytes);
  out.set_output_bytes(output_bytes);
  return out;
}

absl::StatusOr<v1::Graph> Importer::Run(absl::string_view bytes) {
  if (absl::Status s = CheckOptions(); !s.ok()) return s;
  if (bytes.empty()) {
    return absl::InvalidArgumentError("not an ONNX model: the input is empty");
  }
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an ONNX model: ", bytes.size(),
                     " bytes is more than protobuf can parse (2 GiB)"));
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "not an ONNX model: the bytes do not parse as an onnx.ModelProto "
        "(truncated or corrupt protobuf)");
  }
  if (!model.has_graph()) {
    return absl::InvalidArgumentError("the ONNX model has no graph");
  }
  onnx::GraphProto* g = model.mutable_graph();
  if (g->node_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ONNX graph '", g->name(), "' has no nodes"));
  }
  for (const onnx::OperatorSetIdProto& o : model.opset_import()) {
    opset_[IsDefaultDomain(o.domain()) ? "" : o.domain()] =
        static_cast<int>(o.version());
  }

  // Type sources, most trustworthy first: initializers; graph inputs, their
  // dynamic dimensions resolved; Constant values; types the file states with
  // every dimension a number. Per-node shape inference (InferOutputs) fills
  // in the rest, and the file's symbolic types are the last resort.
  if (absl::Status s = AddInitializers(*g); !s.ok()) return s;
  for (const onnx::ValueInfoProto& in : g->input()) {
    // Before IR version 4 every initializer was also listed as an input; an
    // input with an initializer is a constant, not a model input.
    if (initializers_.contains(in.name())) continue;
    if (in.name().empty()) {
      return absl::InvalidArgumentError("a graph input has an empty name");
    }
    if (!graph_inputs_.insert(in.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph input '", in.name(), "' is declared twice"));
    }
    absl::StatusOr<std::optional<TensorInfo>> info =
        Resolve(in.name(), in.type());
    if (!info.ok()) return info.status();
    if (info->has_value()) SetInfo(in.name(), **std::move(info));
  }
  for (const onnx::NodeProto& node : g->node()) {
    if (node.op_type() == "Constant" && IsDefaultDomain(node.domain())) {
      if (absl::Status s = AddConstantValue(node); !s.ok()) return s;
    }
  }
  absl::flat_hash_map<std::string, TensorInfo> declared;
  if (absl::Status s = AddValueInfos(*g, Which::kStatic, &declared); !s.ok()) {
    return s;
  }
  for (auto& [name, info] : declared) SetInfo(name, std::move(info));
  if (absl::Status s = AddValueInfos(*g, Which::kSymbolic, &symbolic_);
      !s.ok()) {
    return s;
  }

  if (absl::Status s = IndexNodes(g); !s.ok()) return s;
  absl::StatusOr<std::vector<int>> order = TopologicalOrder();
  if (!order.ok()) return order.status();
  for (int i : *order) {
    InferOutputs(i);
    DecideFolding(i);
    if (nodes_[i].folded) Evaluate(i);
  }
  AssignNames();

  v1::Graph graph;
  if (!IsPlaceholderGraphName(g->name())) graph.set_name(g->name());
  for (const onnx::ValueInfoProto& in : g->input()) {
    if (graph_inputs_.contains(in.name())) graph.add_inputs(in.name());
  }
  for (int i : *order) {
    if (nodes_[i].folded) continue;
    absl::StatusOr<v1::Node> node = Convert(i);
    if (!node.ok()) return node.status();
    *graph.add_nodes() = *std::move(node);
  }
  if (graph.nodes_size() == 0) {
    return absl::InvalidArgumentError(
        "the ONNX graph computes only constants: no node is left to place "
        "after folding them");
  }
  return graph;
}

}  // namespace

absl::StatusOr<v1::Graph> ImportOnnx(absl::string_view model_bytes,
                                     const OnnxImportOptions& options) {
  // libonnx and protobuf report some failures by throwing; none may escape.
  try {
    Importer importer(options);
    return importer.Run(model_bytes);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "ONNX import ran out of memory; the model is too large");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX import failed: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError("ONNX import failed: unknown error");
  }
}

}  // namespace mcmpart
