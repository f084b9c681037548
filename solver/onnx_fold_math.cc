// Elementwise arithmetic and reductions for constant folding. Integer
// arithmetic wraps (two's complement) rather than overflowing: the operands
// come from untrusted files.
#include "solver/onnx_fold_math.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"

namespace mcmpart {
namespace onnx_internal {

using Dims = std::vector<int64_t>;

// Row-major strides of dims.
Dims Strides(const Dims& dims) {
  Dims s(dims.size(), 1);
  for (size_t d = dims.size(); d-- > 1;) s[d - 1] = s[d] * dims[d];
  return s;
}

// Calls f(flat source index) for every element of `out_dims` in row-major
// order, where element i of the output takes source index
// sum(src_of(d, i_d) * src_strides[d]).
void ForEachIndex(const Dims& out_dims, const Dims& src_strides,
                  const std::function<int64_t(size_t, int64_t)>& src_of,
                  const std::function<void(int64_t)>& f) {
  const size_t rank = out_dims.size();
  const double n = NumElements(out_dims);
  if (n == 0) return;
  Dims index(rank, 0);
  for (double k = 0; k < n; ++k) {
    int64_t offset = 0;
    for (size_t d = 0; d < rank; ++d) {
      offset += src_of(d, index[d]) * src_strides[d];
    }
    f(offset);
    for (size_t d = rank; d-- > 0;) {
      if (++index[d] < out_dims[d]) break;
      index[d] = 0;
    }
  }
}

// Multidirectional (numpy) broadcast of several shapes.
std::optional<Dims> BroadcastDims(const std::vector<const Dims*>& shapes) {
  size_t rank = 0;
  for (const Dims* s : shapes) rank = std::max(rank, s->size());
  Dims out(rank, 1);
  for (const Dims* s : shapes) {
    for (size_t k = 0; k < s->size(); ++k) {
      const int64_t d = (*s)[s->size() - 1 - k];
      int64_t& o = out[rank - 1 - k];
      if (d == o || d == 1) continue;
      if (o != 1) return std::nullopt;
      o = d;
    }
  }
  return out;
}

// For each element of `to` (a broadcast of `from`), the flat index of the
// element of `from` it takes.
std::vector<size_t> BroadcastIndex(const Dims& from, const Dims& to) {
  const size_t shift = to.size() - from.size();
  Dims strides(to.size(), 0);
  const Dims own = Strides(from);
  for (size_t k = 0; k < from.size(); ++k) {
    if (from[k] != 1) strides[shift + k] = own[k];
  }
  std::vector<size_t> out;
  ForEachIndex(
      to, strides, [](size_t, int64_t i) { return i; },
      [&](int64_t offset) { out.push_back(static_cast<size_t>(offset)); });
  return out;
}

namespace {

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

bool IsComparison(const std::string& op) {
  return op == "Equal" || op == "Less" || op == "Greater" ||
         op == "LessOrEqual" || op == "GreaterOrEqual";
}

bool IsLogic(const std::string& op) {
  return op == "And" || op == "Or" || op == "Xor" || op == "Not";
}

// Number of inputs op takes; 0 for variadic (at least one).
int Arity(const std::string& op) {
  static const auto* kUnary = new absl::flat_hash_set<std::string>{
      "Neg",   "Abs",  "Sign", "Floor",     "Ceil",
      "Round", "Sqrt", "Not",  "Reciprocal"};
  static const auto* kBinary = new absl::flat_hash_set<std::string>{
      "Add",  "Sub",     "Mul",         "Div",           "Mod",
      "Pow",  "And",     "Or",          "Xor",           "Equal",
      "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
  if (kUnary->contains(op)) return 1;
  if (kBinary->contains(op)) return 2;
  if (op == "Where") return 3;
  if (op == "Max" || op == "Min" || op == "Sum") return 0;
  return -1;
}

// Integer Mod: fmod = 0 takes the divisor's sign (Python's %), fmod = 1
// the dividend's (C's %).
std::optional<int64_t> IntMod(int64_t a, int64_t b, bool fmod) {
  if (b == 0) return std::nullopt;
  if (b == -1) return 0;  // Also avoids INT64_MIN % -1.
  int64_t r = a % b;
  if (!fmod && r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

std::optional<int64_t> IntPow(int64_t a, int64_t b) {
  if (b < 0) return std::nullopt;
  int64_t r = 1;
  for (int64_t k = 0; k < b; ++k) {
    r = WrapMul(r, a);
    if (k > 64 && (a == 0 || a == 1)) break;  // Fixed points.
    if (k > 64) return std::nullopt;          // Wrapped garbage: not a shape.
  }
  return r;
}

// One element of an integer op; nullopt when undefined.
std::optional<int64_t> IntOp(const std::string& op, const int64_t* x, size_t n,
                             bool fmod) {
  const int64_t a = x[0];
  const int64_t b = n > 1 ? x[1] : 0;
  if (op == "Add") return WrapAdd(a, b);
  if (op == "Sub") return WrapSub(a, b);
  if (op == "Mul") return WrapMul(a, b);
  if (op == "Div") {
    if (b == 0 || (b == -1 && a == std::numeric_limits<int64_t>::min())) {
      return std::nullopt;
    }
    return a / b;  // Integer Div truncates, as in C.
  }
  if (op == "Mod") return IntMod(a, b, fmod);
  if (op == "Pow") return IntPow(a, b);
  if (op == "Neg") return WrapSub(0, a);
  if (op == "Abs") return a < 0 ? WrapSub(0, a) : a;
  if (op == "Sign") return (a > 0) - (a < 0);
  if (op == "Not") return a == 0;
  if (op == "And") return a != 0 && b != 0;
  if (op == "Or") return a != 0 || b != 0;
  if (op == "Xor") return (a != 0) != (b != 0);
  if (op == "Max") return *std::max_element(x, x + n);
  if (op == "Min") return *std::min_element(x, x + n);
  if (op == "Sum") {
    int64_t s = 0;
    for (size_t k = 0; k < n; ++k) s = WrapAdd(s, x[k]);
    return s;
  }
  return std::nullopt;  // Floor, Sqrt, ... take floats only.
}

std::optional<double> FloatOp(const std::string& op, const double* x, size_t n,
                              bool fmod) {
  const double a = x[0];
  const double b = n > 1 ? x[1] : 0;
  if (op == "Add") return a + b;
  if (op == "Sub") return a - b;
  if (op == "Mul") return a * b;
  if (op == "Div") return a / b;
  if (op == "Mod") {
    if (!fmod) return std::nullopt;  // ONNX requires fmod=1 for floats.
    return std::fmod(a, b);
  }
  if (op == "Pow") return std::pow(a, b);
  if (op == "Neg") return -a;
  if (op == "Abs") return std::fabs(a);
  if (op == "Sign") return static_cast<double>((a > 0) - (a < 0));
  if (op == "Floor") return std::floor(a);
  if (op == "Ceil") return std::ceil(a);
  if (op == "Round") return std::nearbyint(a);  // Half to even.
  if (op == "Sqrt") return std::sqrt(a);
  if (op == "Reciprocal") return 1 / a;
  if (op == "Max") return *std::max_element(x, x + n);
  if (op == "Min") return *std::min_element(x, x + n);
  if (op == "Sum") {
    double s = 0;
    for (size_t k = 0; k < n; ++k) s += x[k];
    return s;
  }
  return std::nullopt;
}

// The comparison `op` (IsComparison; GreaterOrEqual when none of the
// others), on int64_t operands when every input is an integer tensor, else
// on doubles.
template <typename T>
bool Compare(const std::string& op, T a, T b) {
  if (op == "Equal") return a == b;
  if (op == "Less") return a < b;
  if (op == "Greater") return a > b;
  if (op == "LessOrEqual") return a <= b;
  return a >= b;
}

// The element type of op's output, or 0 when the inputs' types do not fit
// the op.
int32_t ResultType(const std::string& op,
                   const std::vector<const ConstTensor*>& in) {
  if (op == "Where") {
    if (in[0]->is_float() || in[1]->elem_type != in[2]->elem_type) return 0;
    return in[1]->elem_type;
  }
  for (const ConstTensor* x : in) {
    if (x->elem_type != in[0]->elem_type && op != "Pow") return 0;
  }
  if (IsComparison(op) || IsLogic(op)) return onnx::TensorProto::BOOL;
  return in[0]->elem_type;
}

}  // namespace

bool IsElementwiseOp(const std::string& op) { return Arity(op) >= 0; }

std::optional<ConstTensor> EvaluateElementwise(
    const onnx::NodeProto& node, int opset,
    const std::vector<const ConstTensor*>& in) {
  const std::string& op = node.op_type();
  const int arity = Arity(op);
  if (in.empty() || (arity > 0 && static_cast<int>(in.size()) != arity)) {
    return std::nullopt;
  }
  const int32_t type = ResultType(op, in);
  std::vector<const Dims*> shapes;
  for (const ConstTensor* x : in) shapes.push_back(&x->dims);
  std::optional<Dims> out_dims = BroadcastDims(shapes);
  if (type == 0 || !out_dims.has_value() ||
      !(NumElements(*out_dims) <= kMaxEvaluatedElements)) {
    return std::nullopt;
  }
  // Before opset 7 broadcasting was explicit and aligned by `axis`: only
  // equal shapes are evaluated there.
  for (const ConstTensor* x : in) {
    if (opset < 7 && x->dims != *out_dims) return std::nullopt;
  }
  std::vector<std::vector<size_t>> index;
  for (const ConstTensor* x : in) {
    index.push_back(BroadcastIndex(x->dims, *out_dims));
  }
  const onnx::AttributeProto* fmod_attr = FindAttribute(node, "fmod");
  const bool fmod = fmod_attr != nullptr && fmod_attr->i() != 0;
  const bool all_int = std::none_of(
      in.begin(), in.end(), [](const ConstTensor* x) { return x->is_float(); });
  ConstTensor r;
  r.elem_type = type;
  r.dims = *out_dims;
  const size_t n = index[0].size();
  std::vector<int64_t> ix(in.size());
  std::vector<double> fx(in.size());
  for (size_t k = 0; k < n; ++k) {
    for (size_t j = 0; j < in.size(); ++j) {
      const size_t src = index[j][k];
      if (all_int) ix[j] = in[j]->ints[src];
      fx[j] = in[j]->AsDouble(src);
    }
    if (op == "Where") {
      const ConstTensor& pick = *in[ix[0] != 0 ? 1 : 2];
      const size_t src = index[ix[0] != 0 ? 1 : 2][k];
      if (r.is_float()) {
        r.floats.push_back(pick.floats[src]);
      } else {
        r.ints.push_back(pick.ints[src]);
      }
    } else if (IsComparison(op)) {
      r.ints.push_back(all_int ? Compare<int64_t>(op, ix[0], ix[1])
                               : Compare<double>(op, fx[0], fx[1]));
    } else if (r.is_float()) {
      std::optional<double> y = FloatOp(op, fx.data(), fx.size(), fmod);
      if (!y.has_value()) return std::nullopt;
      r.floats.push_back(RoundToType(*y, type));
    } else {
      if (!all_int) return std::nullopt;
      std::optional<int64_t> y = IntOp(op, ix.data(), ix.size(), fmod);
      if (!y.has_value()) return std::nullopt;
      r.ints.push_back(WrapToType(*y, type));
    }
  }
  return r;
}

std::optional<ConstTensor> EvaluateReduction(const onnx::NodeProto& node,
                                             int opset, const ConstTensor& x,
                                             const ConstTensor* axes_input) {
  const std::string& op = node.op_type();
  Dims axes;
  if (axes_input != nullptr) {
    if (axes_input->is_float()) return std::nullopt;
    axes = axes_input->ints;
  } else if (const onnx::AttributeProto* a = FindAttribute(node, "axes")) {
    axes.assign(a->ints().begin(), a->ints().end());
  }
  const onnx::AttributeProto* keep = FindAttribute(node, "keepdims");
  const onnx::AttributeProto* noop =
      FindAttribute(node, "noop_with_empty_axes");
  const bool keepdims = keep == nullptr || keep->i() != 0;
  if (axes.empty() && noop != nullptr && noop->i() != 0) return x;
  const int64_t rank = static_cast<int64_t>(x.dims.size());
  std::vector<bool> reduce(static_cast<size_t>(rank), axes.empty());
  for (int64_t axis : axes) {
    if (axis < 0) axis += rank;
    if (axis < 0 || axis >= rank) return std::nullopt;
    reduce[axis] = true;
  }
  // Output element of each input element: its index with reduced axes 0.
  Dims out_dims, kept_dims = x.dims;
  for (int64_t d = 0; d < rank; ++d) {
    if (reduce[d]) kept_dims[d] = 1;
    if (!reduce[d] || keepdims) out_dims.push_back(kept_dims[d]);
  }
  const Dims out_strides = Strides(kept_dims);
  Dims src_strides(static_cast<size_t>(rank));
  for (int64_t d = 0; d < rank; ++d) {
    src_strides[d] = reduce[d] ? 0 : out_strides[d];
  }
  const size_t n_out = static_cast<size_t>(NumElements(kept_dims));
  ConstTensor r;
  r.elem_type = x.elem_type;
  r.dims = out_dims;
  std::vector<std::vector<double>> groups_f(x.is_float() ? n_out : 0);
  std::vector<std::vector<int64_t>> groups_i(x.is_float() ? 0 : n_out);
  size_t k = 0;
  ForEachIndex(
      x.dims, src_strides, [](size_t, int64_t i) { return i; },
      [&](int64_t out) {
        if (x.is_float()) {
          groups_f[static_cast<size_t>(out)].push_back(x.floats[k++]);
        } else {
          groups_i[static_cast<size_t>(out)].push_back(x.ints[k++]);
        }
      });
  const std::string elementwise = op == "ReduceProd"  ? "Mul"
                                  : op == "ReduceSum" ? "Add"
                                                      : op.substr(6);
  for (size_t o = 0; o < n_out; ++o) {
    if (x.is_float()) {
      const std::vector<double>& g = groups_f[o];
      double acc = op == "ReduceProd" ? 1 : 0;
      if (op == "ReduceMax" || op == "ReduceMin") {
        if (g.empty()) return std::nullopt;
        acc = *FloatOp(elementwise, g.data(), g.size(), false);
      } else {
        for (double v : g) acc = op == "ReduceProd" ? acc * v : acc + v;
      }
      r.floats.push_back(RoundToType(acc, x.elem_type));
    } else {
      const std::vector<int64_t>& g = groups_i[o];
      int64_t acc = op == "ReduceProd" ? 1 : 0;
      if (op == "ReduceMax" || op == "ReduceMin") {
        if (g.empty()) return std::nullopt;
        acc = *IntOp(elementwise, g.data(), g.size(), false);
      } else {
        for (int64_t v : g) {
          acc = op == "ReduceProd" ? WrapMul(acc, v) : WrapAdd(acc, v);
        }
      }
      r.ints.push_back(WrapToType(acc, x.elem_type));
    }
  }
  return r;
}

}  // namespace onnx_internal
}  // namespace mcmpart
