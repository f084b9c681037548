// ONNX import: a serialized ONNX model to a mcmpart.v1.Graph.
//
// Reads structure, shapes and dtypes only; never weight data (initializers
// may point at external files that do not exist). The rules for FLOPs,
// output bytes, parameter bytes and folded constants are documented in
// docs/onnx-import.md.
#ifndef MCMPART_SOLVER_ONNX_IMPORT_H_
#define MCMPART_SOLVER_ONNX_IMPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mcmpart/v1/problem.pb.h"

namespace mcmpart {

struct OnnxImportOptions {
  // Value of every dynamic (symbolic or unknown) dimension not named in
  // `dim_values`. Models exported for inference mark the batch dimension
  // dynamic; one sample is the spec's unit.
  int64_t default_dim = 1;
  // Symbolic dimension name (e.g. "batch", "sequence") -> value.
  absl::flat_hash_map<std::string, int64_t> dim_values;
};

// Parses `model_bytes` as an onnx.ModelProto and converts it. Errors:
// INVALID_ARGUMENT for bytes that are not an ONNX model (truncated or
// corrupt protobuf), a model without a graph, or a tensor whose shape cannot
// be determined (the message names the ONNX node and tensor, and for shapes
// that depend on run-time values says what to declare); RESOURCE_EXHAUSTED
// when memory runs out. Never throws. Thread-safe.
absl::StatusOr<v1::Graph> ImportOnnx(absl::string_view model_bytes,
                                     const OnnxImportOptions& options = {});

// The graph and what the import could not count without failing: one
// message per node, naming it (`node 'loop' (Loop): the FLOPs of its body
// are not counted (the node counts 0): ...`), in the model's order.
struct OnnxImportResult {
  v1::Graph graph;
  std::vector<std::string> warnings;
};

// ImportOnnx with its warnings; the same graph, errors and guarantees.
absl::StatusOr<OnnxImportResult> ImportOnnxWithWarnings(
    absl::string_view model_bytes, const OnnxImportOptions& options = {});

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_IMPORT_H_
