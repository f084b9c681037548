// Evaluation of shape arithmetic. Everything here works on untrusted data:
// sizes are checked before anything is allocated, integer arithmetic wraps
// instead of overflowing, and anything the code does not understand gives
// nullopt (the output stays unknown) rather than a guess.
#include "solver/onnx_fold.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "solver/onnx_fold_math.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

using Dims = std::vector<int64_t>;

// For Args::IntList: the list is an attribute in every opset.
constexpr int kAttributeOnly = -1;

// The inputs of the node being evaluated.
struct Args {
  const onnx::NodeProto& node;
  int opset;
  const std::vector<FoldInput>& in;

  const ConstTensor* Value(size_t k) const {
    return k < in.size() ? in[k].value : nullptr;
  }
  const TensorInfo* Info(size_t k) const {
    if (k >= in.size()) return nullptr;
    if (in[k].info != nullptr) return in[k].info;
    return nullptr;
  }
  bool Given(int k) const {
    return k >= 0 && k < node.input_size() && !node.input(k).empty();
  }
  int64_t IntAttr(absl::string_view name, int64_t fallback) const {
    const onnx::AttributeProto* a = FindAttribute(node, name);
    return a == nullptr ? fallback : a->i();
  }
  // An integer list given as input k (newer opsets) or as attribute `name`
  // (older ones). False when input k is given but its value is unknown.
  bool IntList(int k, absl::string_view name, Dims* out, bool* present) const {
    *present = false;
    if (Given(k)) {
      const ConstTensor* v = Value(k);
      if (v == nullptr || v->is_float()) return false;
      *out = v->ints;
      *present = true;
      return true;
    }
    if (const onnx::AttributeProto* a = FindAttribute(node, name)) {
      out->assign(a->ints().begin(), a->ints().end());
      *present = true;
    }
    return true;
  }
};

// An empty tensor of `type` and `dims`, with room reserved; nullopt when it
// would exceed the evaluation bound.
std::optional<ConstTensor> Allocate(int32_t type, Dims dims) {
  for (int64_t d : dims) {
    if (d < 0) return std::nullopt;
  }
  const double n = NumElements(dims);
  if (!(n <= kMaxEvaluatedElements)) return std::nullopt;
  if (!IsIntegerType(type) && !IsEvaluatedFloatType(type)) return std::nullopt;
  ConstTensor r;
  r.elem_type = type;
  r.dims = std::move(dims);
  if (r.is_float()) {
    r.floats.reserve(static_cast<size_t>(n));
  } else {
    r.ints.reserve(static_cast<size_t>(n));
  }
  return r;
}

// Appends element k of src (same type family as dst) to dst.
void Append(const ConstTensor& src, size_t k, ConstTensor* dst) {
  if (dst->is_float()) {
    dst->floats.push_back(src.floats[k]);
  } else {
    dst->ints.push_back(src.ints[k]);
  }
}

// Normalises a possibly negative axis against `rank`; false when out of
// range.
bool NormaliseAxis(int64_t* axis, int64_t rank) {
  if (*axis < 0) *axis += rank;
  return *axis >= 0 && *axis < rank;
}

// The same elements in a new layout: Identity, Reshape, Flatten, Squeeze,
// Unsqueeze.
std::optional<ConstTensor> Relayout(const ConstTensor& x, Dims dims) {
  if (NumElements(dims) != NumElements(x.dims)) return std::nullopt;
  ConstTensor r = x;
  r.dims = std::move(dims);
  return r;
}

std::optional<Dims> ReshapeDims(const Args& a, const Dims& in) {
  Dims target;
  bool present = false;
  if (a.opset >= 5) {
    const ConstTensor* t = a.Value(1);
    if (t == nullptr || t->is_float()) return std::nullopt;
    target = t->ints;
  } else if (!a.IntList(kAttributeOnly, "shape", &target, &present) ||
             !present) {
    return std::nullopt;
  }
  const bool allow_zero = a.IntAttr("allowzero", 0) != 0;
  int infer = -1;
  double known = 1;
  for (size_t k = 0; k < target.size(); ++k) {
    if (target[k] == 0 && !allow_zero) {
      if (k >= in.size()) return std::nullopt;
      target[k] = in[k];
    }
    if (target[k] == -1) {
      if (infer >= 0) return std::nullopt;
      infer = static_cast<int>(k);
    } else if (target[k] < 0) {
      return std::nullopt;
    } else {
      known *= static_cast<double>(target[k]);
    }
  }
  if (infer >= 0) {
    const double total = NumElements(in);
    if (known == 0 || std::fmod(total, known) != 0) return std::nullopt;
    target[infer] = static_cast<int64_t>(total / known);
  }
  return target;
}

std::optional<Dims> SqueezeDims(const Args& a, const Dims& in) {
  Dims axes;
  bool present = false;
  if (!a.IntList(a.opset >= 13 ? 1 : kAttributeOnly, "axes", &axes, &present)) {
    return std::nullopt;
  }
  const int64_t rank = static_cast<int64_t>(in.size());
  absl::flat_hash_set<int64_t> drop;
  for (int64_t axis : axes) {
    if (!NormaliseAxis(&axis, rank) || in[axis] != 1) return std::nullopt;
    drop.insert(axis);
  }
  Dims out;
  for (int64_t d = 0; d < rank; ++d) {
    const bool squeeze = present ? drop.contains(d) : in[d] == 1;
    if (!squeeze) out.push_back(in[d]);
  }
  return out;
}

std::optional<Dims> UnsqueezeDims(const Args& a, const Dims& in) {
  Dims axes;
  bool present = false;
  if (!a.IntList(a.opset >= 13 ? 1 : kAttributeOnly, "axes", &axes, &present) ||
      !present) {
    return std::nullopt;
  }
  const int64_t rank = static_cast<int64_t>(in.size() + axes.size());
  std::vector<bool> inserted(static_cast<size_t>(rank), false);
  for (int64_t axis : axes) {
    if (!NormaliseAxis(&axis, rank) || inserted[axis]) return std::nullopt;
    inserted[axis] = true;
  }
  Dims out;
  size_t next = 0;
  for (int64_t d = 0; d < rank; ++d) {
    out.push_back(inserted[d] ? 1 : in[next++]);
  }
  return out;
}

std::optional<ConstTensor> EvalLayout(const Args& a, const std::string& op) {
  const ConstTensor* x = a.Value(0);
  if (x == nullptr) return std::nullopt;
  std::optional<Dims> dims;
  if (op == "Identity") {
    dims = x->dims;
  } else if (op == "Reshape") {
    dims = ReshapeDims(a, x->dims);
  } else if (op == "Squeeze") {
    dims = SqueezeDims(a, x->dims);
  } else if (op == "Unsqueeze") {
    dims = UnsqueezeDims(a, x->dims);
  } else if (op == "Flatten") {
    int64_t axis = a.IntAttr("axis", 1);
    const int64_t rank = static_cast<int64_t>(x->dims.size());
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank) return std::nullopt;
    const Dims& d = x->dims;
    dims = Dims{
        static_cast<int64_t>(NumElements(Dims(d.begin(), d.begin() + axis))),
        static_cast<int64_t>(NumElements(Dims(d.begin() + axis, d.end())))};
  }
  if (!dims.has_value()) return std::nullopt;
  return Relayout(*x, *std::move(dims));
}

// Converts x's elements to `type`, as Cast does: integers wrap, floats
// truncate toward zero, anything non-zero is true.
std::optional<ConstTensor> Convert(const ConstTensor& x, int32_t type) {
  std::optional<ConstTensor> r = Allocate(type, x.dims);
  if (!r.has_value()) return std::nullopt;
  for (size_t k = 0; k < x.size(); ++k) {
    if (type == onnx::TensorProto::BOOL) {
      r->ints.push_back(x.AsDouble(k) != 0);
    } else if (r->is_float()) {
      r->floats.push_back(RoundToType(x.AsDouble(k), type));
    } else {
      r->ints.push_back(WrapToType(x.AsInt(k), type));
    }
  }
  return r;
}

std::optional<ConstTensor> EvalCast(const Args& a, const std::string& op) {
  const ConstTensor* x = a.Value(0);
  if (x == nullptr) return std::nullopt;
  int32_t type = 0;
  if (op == "Cast") {
    type = static_cast<int32_t>(a.IntAttr("to", 0));
  } else if (const TensorInfo* like = a.Info(1)) {
    type = like->elem_type;
  }
  return Convert(*x, type);
}

std::optional<ConstTensor> EvalShape(const Args& a, const std::string& op) {
  const TensorInfo* in = a.Info(0);
  if (in == nullptr) return std::nullopt;
  if (op == "Size") {
    std::optional<ConstTensor> r = Allocate(onnx::TensorProto::INT64, {});
    if (r.has_value())
      r->ints.push_back(static_cast<int64_t>(NumElements(*in)));
    return r;
  }
  const int64_t rank = static_cast<int64_t>(in->dims.size());
  int64_t start = std::clamp<int64_t>(a.IntAttr("start", 0), -rank, rank);
  int64_t end = std::clamp<int64_t>(a.IntAttr("end", rank), -rank, rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  std::optional<ConstTensor> r =
      Allocate(onnx::TensorProto::INT64, {std::max<int64_t>(end - start, 0)});
  if (!r.has_value()) return std::nullopt;
  for (int64_t k = start; k < end; ++k) r->ints.push_back(in->dims[k]);
  return r;
}

std::optional<ConstTensor> EvalTranspose(const Args& a) {
  const ConstTensor* x = a.Value(0);
  if (x == nullptr) return std::nullopt;
  const size_t rank = x->dims.size();
  Dims perm;
  bool present = false;
  a.IntList(kAttributeOnly, "perm", &perm, &present);
  if (!present) {
    for (size_t d = rank; d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  }
  if (perm.size() != rank) return std::nullopt;
  Dims sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (size_t d = 0; d < rank; ++d) {
    if (sorted[d] != static_cast<int64_t>(d)) return std::nullopt;
  }
  const Dims in_strides = Strides(x->dims);
  Dims out_dims(rank), strides(rank);
  for (size_t d = 0; d < rank; ++d) {
    out_dims[d] = x->dims[perm[d]];
    strides[d] = in_strides[perm[d]];
  }
  std::optional<ConstTensor> r = Allocate(x->elem_type, out_dims);
  if (!r.has_value()) return std::nullopt;
  ForEachIndex(
      out_dims, strides, [](size_t, int64_t i) { return i; },
      [&](int64_t src) { Append(*x, static_cast<size_t>(src), &*r); });
  return r;
}

std::optional<ConstTensor> EvalGather(const Args& a) {
  const ConstTensor* data = a.Value(0);
  const ConstTensor* idx = a.Value(1);
  if (data == nullptr || idx == nullptr || idx->is_float()) return std::nullopt;
  int64_t axis = a.IntAttr("axis", 0);
  if (!NormaliseAxis(&axis, static_cast<int64_t>(data->dims.size()))) {
    return std::nullopt;
  }
  const Dims& d = data->dims;
  Dims out_dims(d.begin(), d.begin() + axis);
  out_dims.insert(out_dims.end(), idx->dims.begin(), idx->dims.end());
  out_dims.insert(out_dims.end(), d.begin() + axis + 1, d.end());
  std::optional<ConstTensor> r = Allocate(data->elem_type, out_dims);
  if (!r.has_value()) return std::nullopt;
  const int64_t size = d[axis];
  const int64_t outer =
      static_cast<int64_t>(NumElements(Dims(d.begin(), d.begin() + axis)));
  const int64_t inner =
      static_cast<int64_t>(NumElements(Dims(d.begin() + axis + 1, d.end())));
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j : idx->ints) {
      if (j < 0) j += size;
      if (j < 0 || j >= size) return std::nullopt;
      for (int64_t i = 0; i < inner; ++i) {
        Append(*data, static_cast<size_t>((o * size + j) * inner + i), &*r);
      }
    }
  }
  return r;
}

std::optional<ConstTensor> EvalConcat(const Args& a) {
  const ConstTensor* first = a.Value(0);
  if (first == nullptr || a.node.input_size() < 1) return std::nullopt;
  const int64_t rank = static_cast<int64_t>(first->dims.size());
  int64_t axis = a.IntAttr("axis", 0);
  if (!NormaliseAxis(&axis, rank)) return std::nullopt;
  Dims out_dims = first->dims;
  out_dims[axis] = 0;
  std::vector<const ConstTensor*> parts;
  for (int k = 0; k < a.node.input_size(); ++k) {
    const ConstTensor* x = a.Value(k);
    if (x == nullptr || x->dims.size() != first->dims.size() ||
        x->is_float() != first->is_float()) {
      return std::nullopt;
    }
    for (int64_t d = 0; d < rank; ++d) {
      if (d != axis && x->dims[d] != first->dims[d]) return std::nullopt;
    }
    out_dims[axis] += x->dims[axis];
    parts.push_back(x);
  }
  std::optional<ConstTensor> r = Allocate(first->elem_type, out_dims);
  if (!r.has_value()) return std::nullopt;
  const int64_t outer = static_cast<int64_t>(
      NumElements(Dims(out_dims.begin(), out_dims.begin() + axis)));
  for (int64_t o = 0; o < outer; ++o) {
    for (const ConstTensor* x : parts) {
      const int64_t chunk = static_cast<int64_t>(NumElements(x->dims)) /
                            std::max<int64_t>(outer, 1);
      for (int64_t i = 0; i < chunk; ++i) {
        Append(*x, static_cast<size_t>(o * chunk + i), &*r);
      }
    }
  }
  return r;
}

// One sliced axis: first index, step, and element count.
struct SliceAxis {
  int64_t start = 0;
  int64_t step = 1;
  int64_t count = 0;
};

SliceAxis ClampSlice(int64_t start, int64_t end, int64_t step, int64_t dim) {
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  SliceAxis s;
  s.step = step;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    s.count = end > start ? (end - start + step - 1) / step : 0;
  } else {
    start = std::clamp<int64_t>(start, 0, dim - 1);
    end = std::clamp<int64_t>(end, -1, dim - 1);
    s.count = start > end ? (start - end - step - 1) / -step : 0;
  }
  s.start = start;
  return s;
}

std::optional<ConstTensor> EvalSlice(const Args& a) {
  const ConstTensor* x = a.Value(0);
  if (x == nullptr) return std::nullopt;
  const bool inputs = a.opset >= 10;
  Dims starts, ends, axes, steps;
  bool has_starts, has_ends, has_axes, has_steps;
  if (!a.IntList(inputs ? 1 : kAttributeOnly, "starts", &starts, &has_starts) ||
      !a.IntList(inputs ? 2 : kAttributeOnly, "ends", &ends, &has_ends) ||
      !a.IntList(inputs ? 3 : kAttributeOnly, "axes", &axes, &has_axes) ||
      !a.IntList(inputs ? 4 : kAttributeOnly, "steps", &steps, &has_steps) ||
      starts.size() != ends.size() ||
      (has_axes && axes.size() != starts.size()) ||
      (has_steps && steps.size() != starts.size())) {
    return std::nullopt;
  }
  const int64_t rank = static_cast<int64_t>(x->dims.size());
  std::vector<SliceAxis> per_axis(static_cast<size_t>(rank));
  for (int64_t d = 0; d < rank; ++d) per_axis[d].count = x->dims[d];
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (size_t k = 0; k < starts.size(); ++k) {
    int64_t axis = has_axes ? axes[k] : static_cast<int64_t>(k);
    const int64_t step = has_steps ? steps[k] : 1;
    if (!NormaliseAxis(&axis, rank) || seen[axis] || step == 0) {
      return std::nullopt;
    }
    seen[axis] = true;
    per_axis[axis] = ClampSlice(starts[k], ends[k], step, x->dims[axis]);
  }
  Dims out_dims;
  for (const SliceAxis& s : per_axis) out_dims.push_back(s.count);
  std::optional<ConstTensor> r = Allocate(x->elem_type, out_dims);
  if (!r.has_value()) return std::nullopt;
  ForEachIndex(
      out_dims, Strides(x->dims),
      [&](size_t d, int64_t i) {
        return per_axis[d].start + i * per_axis[d].step;
      },
      [&](int64_t src) { Append(*x, static_cast<size_t>(src), &*r); });
  return r;
}

std::optional<ConstTensor> EvalRange(const Args& a) {
  const ConstTensor* start = a.Value(0);
  const ConstTensor* limit = a.Value(1);
  const ConstTensor* delta = a.Value(2);
  if (start == nullptr || limit == nullptr || delta == nullptr ||
      start->size() != 1 || limit->size() != 1 || delta->size() != 1) {
    return std::nullopt;
  }
  const double d = delta->AsDouble(0);
  if (d == 0) return std::nullopt;
  const double n =
      std::max(std::ceil((limit->AsDouble(0) - start->AsDouble(0)) / d), 0.0);
  if (!(n <= kMaxEvaluatedElements)) return std::nullopt;
  std::optional<ConstTensor> r =
      Allocate(start->elem_type, {static_cast<int64_t>(n)});
  if (!r.has_value()) return std::nullopt;
  for (int64_t k = 0; k < static_cast<int64_t>(n); ++k) {
    if (r->is_float()) {
      r->floats.push_back(RoundToType(start->floats[0] + k * d, r->elem_type));
    } else {
      r->ints.push_back(WrapToType(
          static_cast<int64_t>(static_cast<uint64_t>(start->ints[0]) +
                               static_cast<uint64_t>(k) *
                                   static_cast<uint64_t>(delta->ints[0])),
          r->elem_type));
    }
  }
  return r;
}

std::optional<ConstTensor> EvalConstantOfShape(const Args& a) {
  const ConstTensor* shape = a.Value(0);
  if (shape == nullptr || shape->is_float()) return std::nullopt;
  ConstTensor fill;
  fill.elem_type = onnx::TensorProto::FLOAT;
  fill.floats = {0.0};
  if (const onnx::AttributeProto* v = FindAttribute(a.node, "value")) {
    std::optional<ConstTensor> parsed = ParseConstTensor(v->t());
    if (!parsed.has_value() || parsed->size() != 1) return std::nullopt;
    fill = *std::move(parsed);
  }
  std::optional<ConstTensor> r = Allocate(fill.elem_type, shape->ints);
  if (!r.has_value()) return std::nullopt;
  const size_t n = static_cast<size_t>(NumElements(shape->ints));
  for (size_t k = 0; k < n; ++k) Append(fill, 0, &*r);
  return r;
}

// Expand and Tile: every output element copies one element of x.
std::optional<ConstTensor> EvalExpandOrTile(const Args& a,
                                            const std::string& op) {
  const ConstTensor* x = a.Value(0);
  const ConstTensor* arg = a.Value(1);
  if (x == nullptr || arg == nullptr || arg->is_float()) return std::nullopt;
  if (op == "Expand") {
    std::optional<Dims> out = BroadcastDims({&x->dims, &arg->ints});
    if (!out.has_value()) return std::nullopt;
    std::optional<ConstTensor> r = Allocate(x->elem_type, *out);
    if (!r.has_value()) return std::nullopt;
    for (size_t src : BroadcastIndex(x->dims, *out)) Append(*x, src, &*r);
    return r;
  }
  if (arg->ints.size() != x->dims.size()) return std::nullopt;
  Dims out_dims;
  for (size_t d = 0; d < x->dims.size(); ++d) {
    if (arg->ints[d] < 0) return std::nullopt;
    out_dims.push_back(x->dims[d] * arg->ints[d]);  // Both bounded.
  }
  std::optional<ConstTensor> r = Allocate(x->elem_type, out_dims);
  if (!r.has_value()) return std::nullopt;
  ForEachIndex(
      out_dims, Strides(x->dims),
      [&](size_t d, int64_t i) { return i % x->dims[d]; },
      [&](int64_t src) { Append(*x, static_cast<size_t>(src), &*r); });
  return r;
}

}  // namespace

bool IsEvaluatedOp(const std::string& op) {
  static const auto* kOps = new absl::flat_hash_set<std::string>{
      "Shape",    "Size",      "Identity",   "Reshape",   "Flatten",
      "Squeeze",  "Unsqueeze", "Cast",       "CastLike",  "Transpose",
      "Gather",   "Concat",    "Slice",      "Range",     "ConstantOfShape",
      "Expand",   "Tile",      "ReduceProd", "ReduceSum", "ReduceMax",
      "ReduceMin"};
  return kOps->contains(op) || IsElementwiseOp(op);
}

std::optional<ConstTensor> EvaluateNode(const onnx::NodeProto& node, int opset,
                                        const std::vector<FoldInput>& inputs) {
  if (node.output_size() != 1 || !IsDefaultDomain(node.domain())) {
    return std::nullopt;
  }
  const Args a{node, opset, inputs};
  const std::string& op = node.op_type();
  if (op == "Shape" || op == "Size") return EvalShape(a, op);
  if (op == "Identity" || op == "Reshape" || op == "Flatten" ||
      op == "Squeeze" || op == "Unsqueeze") {
    return EvalLayout(a, op);
  }
  if (op == "Cast" || op == "CastLike") return EvalCast(a, op);
  if (op == "Transpose") return EvalTranspose(a);
  if (op == "Gather") return EvalGather(a);
  if (op == "Concat") return EvalConcat(a);
  if (op == "Slice") return EvalSlice(a);
  if (op == "Range") return EvalRange(a);
  if (op == "ConstantOfShape") return EvalConstantOfShape(a);
  if (op == "Expand" || op == "Tile") return EvalExpandOrTile(a, op);
  if (op == "ReduceProd" || op == "ReduceSum" || op == "ReduceMax" ||
      op == "ReduceMin") {
    const ConstTensor* x = a.Value(0);
    if (x == nullptr || (a.Given(1) && a.Value(1) == nullptr)) {
      return std::nullopt;
    }
    return EvaluateReduction(node, opset, *x, a.Value(1));
  }
  if (!IsElementwiseOp(op)) return std::nullopt;
  std::vector<const ConstTensor*> values;
  for (int k = 0; k < node.input_size(); ++k) {
    const ConstTensor* v = a.Value(static_cast<size_t>(k));
    if (v == nullptr) return std::nullopt;
    values.push_back(v);
  }
  return EvaluateElementwise(node, opset, values);
}

}  // namespace onnx_internal
}  // namespace mcmpart
