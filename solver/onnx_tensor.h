// Internal to the ONNX importer (onnx_import.cc, onnx_fold.cc,
// onnx_shape_rules.cc, onnx_flops.cc): tensor types, element sizes and the
// values of small constants. Not part of the solver's public API.
#ifndef MCMPART_SOLVER_ONNX_TENSOR_H_
#define MCMPART_SOLVER_ONNX_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "onnx/onnx_pb.h"

namespace mcmpart {
namespace onnx_internal {

// A tensor's element type and its dimensions, every one of them a number
// (dynamic dimensions already resolved through OnnxImportOptions).
struct TensorInfo {
  int32_t elem_type = 0;
  std::vector<int64_t> dims;
};

// Bits per element of an ONNX element type; 0 when unknown or not fixed
// (STRING). Types newer than libonnx 1.12 (float8, 4-bit) are listed by
// number so that models using them still import.
int ElementBits(int32_t elem_type);

// Integer and boolean tensors: what shape and index arithmetic computes.
bool IsIntegerType(int32_t elem_type);

// FLOAT and DOUBLE: the floating-point types whose values the importer
// evaluates (shape arithmetic in torch exports passes through float for
// `/`, `math.ceil` and interpolation scales).
bool IsEvaluatedFloatType(int32_t elem_type);

// Element counts are doubles: the figures they feed are doubles, and a
// hostile shape must overflow to infinity (caught by callers) rather than
// wrap.
double NumElements(const std::vector<int64_t>& dims);
inline double NumElements(const TensorInfo& t) { return NumElements(t.dims); }

bool IsDefaultDomain(const std::string& domain);

// If, Loop, Scan and any op with a graph attribute.
bool HasSubgraph(const onnx::NodeProto& node);

// The attribute `name` of `node`, or null.
const onnx::AttributeProto* FindAttribute(const onnx::NodeProto& node,
                                          absl::string_view name);

// The value of a constant tensor the importer knows: integer and bool
// elements in `ints`, FLOAT and DOUBLE ones in `floats` (as doubles, already
// rounded to the element type). Exactly one of the two holds
// NumElements(dims) entries.
struct ConstTensor {
  int32_t elem_type = 0;
  std::vector<int64_t> dims;
  std::vector<int64_t> ints;
  std::vector<double> floats;

  bool is_float() const { return IsEvaluatedFloatType(elem_type); }
  size_t size() const { return is_float() ? floats.size() : ints.size(); }
  // Element k as a double / as an integer (floats truncated toward zero,
  // saturated), whatever the type.
  double AsDouble(size_t k) const;
  int64_t AsInt(size_t k) const;
};

// Constants are evaluated only up to this many elements each: shape
// arithmetic works on a handful of numbers, and the bound keeps a hostile
// file from making the importer allocate gigabytes.
constexpr double kMaxEvaluatedElements = 1 << 16;

// Reads a TensorProto's inline data (typed fields or raw bytes) when it is
// an integer, bool, FLOAT or DOUBLE tensor of at most kMaxEvaluatedElements
// elements; nullopt otherwise (external data, other types, malformed).
std::optional<ConstTensor> ParseConstTensor(const onnx::TensorProto& t);

// The TensorProto form ONNX shape inference reads a constant input from.
onnx::TensorProto ToTensorProto(const ConstTensor& v);

// Normalises an integer to its element type's range (wrapping, as integer
// arithmetic on the type would; bool to 0 or 1).
int64_t WrapToType(int64_t x, int32_t elem_type);

// Rounds a double to the float type's precision (FLOAT: to float).
double RoundToType(double x, int32_t elem_type);

}  // namespace onnx_internal
}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_TENSOR_H_
