// Internal to the ONNX importer: evaluation of the ops that compute shapes
// and small integer (or float) tensors, on constant inputs. The importer
// folds a node whose output this computes (docs/onnx-import.md, "Folded
// nodes") and hands the value to ONNX shape inference as a constant.
#ifndef MCMPART_SOLVER_ONNX_FOLD_H_
#define MCMPART_SOLVER_ONNX_FOLD_H_

#include <optional>
#include <string>
#include <vector>

#include "onnx/onnx_pb.h"
#include "solver/onnx_tensor.h"

namespace mcmpart {
namespace onnx_internal {

// What the importer knows about one input of a node: its type and shape
// (null when unknown) and its value (null unless it is a constant whose
// value the importer holds). An omitted optional input has both null.
struct FoldInput {
  const TensorInfo* info = nullptr;
  const ConstTensor* value = nullptr;
};

// Whether EvaluateNode handles `op_type` (default domain) at all.
bool IsEvaluatedOp(const std::string& op_type);

// The value of the single output of the default-domain node `node` (opset
// `opset`), computed from `inputs` (one entry per input position). Shape and
// Size need only their input's shape; every other op needs the values of
// its inputs. Returns nullopt, never throws, when the op is not one
// IsEvaluatedOp accepts, a value it needs is unknown, the node is malformed
// (bad axes, shapes that do not broadcast), the result is undefined
// (integer division by zero, an index out of range) or would hold more than
// kMaxEvaluatedElements elements: the caller then treats the output as
// unknown, exactly as if the importer did not evaluate.
std::optional<ConstTensor> EvaluateNode(const onnx::NodeProto& node, int opset,
                                        const std::vector<FoldInput>& inputs);

}  // namespace onnx_internal
}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_FOLD_H_
