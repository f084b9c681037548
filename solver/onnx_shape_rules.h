// Internal to the ONNX importer: shape rules of its own for common ops whose
// libonnx 1.12 inference leaves an output without a shape (Dropout's mask
// in opsets before 12, ops of opsets libonnx gives no inference function).
// The importer uses them only for outputs that inference left unknown
// (docs/onnx-import.md, "Shapes and dynamic dimensions").
#ifndef MCMPART_SOLVER_ONNX_SHAPE_RULES_H_
#define MCMPART_SOLVER_ONNX_SHAPE_RULES_H_

#include <optional>
#include <vector>

#include "onnx/onnx_pb.h"
#include "solver/onnx_tensor.h"

namespace mcmpart {
namespace onnx_internal {

// The type and shape of output `k` of the default-domain node `node` (opset
// `opset`) from the types of its inputs (`inputs[j]` null when unknown or
// omitted); nullopt when no rule covers the op or output, or an input the
// rule needs is unknown. Rules:
//  * Dropout: output 0 and the mask (output 1) have input 0's shape; the
//    mask is bool from opset 10, input 0's type before;
//  * shape-preserving ops (activations, unary math, LRN, normalisations,
//    Softmax, Identity, Clip, ...): output 0 is input 0's type and shape;
//    BatchNormalization's optional outputs 1-4 have the scale's (input 1);
//  * Cast: input 0's shape, the `to` type;
//  * broadcasting elementwise ops (Add, Mul, Pow, PRelu, comparisons, ...):
//    the numpy broadcast of the inputs' shapes (before opset 7, with the
//    `broadcast` attribute, input 0's shape); comparisons give bool.
std::optional<TensorInfo> RuleOutputInfo(
    const onnx::NodeProto& node, int opset, int k,
    const std::vector<const TensorInfo*>& inputs);

}  // namespace onnx_internal
}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_SHAPE_RULES_H_
