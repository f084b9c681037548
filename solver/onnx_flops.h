// Internal to the ONNX importer: the FLOPs of one ONNX node from the shapes
// of its inputs and outputs, by the table in docs/onnx-import.md ("FLOPs").
// Nodes with subgraphs (If, Loop, Scan) are costed by the importer, which
// analyses their bodies; here they count 0.
#ifndef MCMPART_SOLVER_ONNX_FLOPS_H_
#define MCMPART_SOLVER_ONNX_FLOPS_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "onnx/onnx_pb.h"
#include "solver/onnx_tensor.h"

namespace mcmpart {
namespace onnx_internal {

// The type of `tensor`, which the node reads or writes in `role` ("input",
// "output"); an error naming the node and tensor when it is unknown.
using TensorLookup = std::function<absl::StatusOr<const TensorInfo*>(
    const std::string& tensor, absl::string_view role)>;

// FLOPs of `node` (a multiply-add counts 2). `label` names the node in
// errors (`node 'x' (Op)`). Errors: a shape the formula needs is unknown, or
// an input has a rank the formula cannot use.
absl::StatusOr<double> NodeFlops(const onnx::NodeProto& node,
                                 absl::string_view label,
                                 const TensorLookup& lookup);

}  // namespace onnx_internal
}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_FLOPS_H_
