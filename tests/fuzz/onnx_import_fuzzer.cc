// Fuzzes the ONNX importer: bytes as a serialized onnx.ModelProto, the way
// `mcmpart convert`, LoadGraphFile and the server's problem.onnx_model see
// them. Every input must end in a graph or an error status (never a crash,
// a sanitizer report or a hang); a graph that imports is built into the IR
// too, as every caller does next.
#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "solver/graph.h"
#include "solver/onnx_import.h"
#include "tests/fuzz/harness.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxFuzzInputBytes) return 0;
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<mcmpart::OnnxImportResult> imported =
      mcmpart::ImportOnnxWithWarnings(bytes);
  if (!imported.ok()) return 0;
  (void)mcmpart::Graph::FromProto(imported->graph);
  return 0;
}
