// Placeholder so the build links until the importer lands.
#include "solver/onnx_import.h"

#include "absl/status/status.h"

namespace mcmpart {
absl::StatusOr<v1::Graph> ImportOnnx(absl::string_view, const OnnxImportOptions&) {
  return absl::UnimplementedError("ONNX import is not built yet");
}
}  // namespace mcmpart
