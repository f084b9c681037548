// Internal to the ONNX importer's constant folding (onnx_fold.cc): index
// helpers, and the elementwise ops and reductions shape arithmetic uses.
#ifndef MCMPART_SOLVER_ONNX_FOLD_MATH_H_
#define MCMPART_SOLVER_ONNX_FOLD_MATH_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"
#include "solver/onnx_tensor.h"

namespace mcmpart {
namespace onnx_internal {

// Row-major strides of dims.
std::vector<int64_t> Strides(const std::vector<int64_t>& dims);

// Calls f(flat source index) for every element of `out_dims` in row-major
// order; output element (i_0, ..., i_r) takes the source index
// sum(src_of(d, i_d) * src_strides[d]).
void ForEachIndex(const std::vector<int64_t>& out_dims,
                  const std::vector<int64_t>& src_strides,
                  const std::function<int64_t(size_t, int64_t)>& src_of,
                  const std::function<void(int64_t)>& f);

// Multidirectional (numpy) broadcast of several shapes; nullopt when they
// do not broadcast.
std::optional<std::vector<int64_t>> BroadcastDims(
    const std::vector<const std::vector<int64_t>*>& shapes);

// For each element of `to` (a broadcast of `from`), the flat index of the
// element of `from` it takes.
std::vector<size_t> BroadcastIndex(const std::vector<int64_t>& from,
                                   const std::vector<int64_t>& to);

// Add, Sub, Mul, Div, Mod, Pow, Neg, Abs, Sign, Floor, Ceil, Round, Sqrt,
// Reciprocal, comparisons, logic, Where, Max, Min, Sum.
bool IsElementwiseOp(const std::string& op_type);

// One of those ops with numpy broadcasting; nullopt as for EvaluateNode.
std::optional<ConstTensor> EvaluateElementwise(
    const onnx::NodeProto& node, int opset,
    const std::vector<const ConstTensor*>& inputs);

// ReduceProd, ReduceSum, ReduceMax, ReduceMin of x, axes from the `axes`
// attribute or (newer opsets) `axes_input`.
std::optional<ConstTensor> EvaluateReduction(const onnx::NodeProto& node,
                                             int opset, const ConstTensor& x,
                                             const ConstTensor* axes_input);

}  // namespace onnx_internal
}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_FOLD_MATH_H_
