// Files users hand to mcmpart: graphs (.onnx, .json, .pb), hardware (.json),
// placements (.json). JSON files are the proto3 JSON mapping of the
// mcmpart.v1 messages (field names as in the .proto, snake_case).
#ifndef MCMPART_SOLVER_GRAPH_IO_H_
#define MCMPART_SOLVER_GRAPH_IO_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/onnx_import.h"

namespace mcmpart {

// Reads a whole file. NOT_FOUND when it does not exist, INVALID_ARGUMENT when
// it is larger than `max_bytes`.
absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     int64_t max_bytes = int64_t{2} << 30);
absl::Status WriteFile(const std::string& path, absl::string_view contents);

// A graph from a file, by extension: .onnx (imported with `onnx`), .json
// (proto3 JSON of mcmpart.v1.Graph) or .pb (binary mcmpart.v1.Graph).
// Errors name the file; the graph is not validated here (Graph::FromProto
// does that). `warnings` (may be null) receives what an ONNX import could
// not count without failing (ImportOnnxWithWarnings), each prefixed with
// the file.
absl::StatusOr<v1::Graph> LoadGraphFile(
    const std::string& path, const OnnxImportOptions& onnx = {},
    std::vector<std::string>* warnings = nullptr);

// Writes a graph as .json or .pb, by extension.
absl::Status SaveGraphFile(const std::string& path, const v1::Graph& graph);

// Parses proto3 JSON into `message`; unknown fields are an error unless
// `ignore_unknown` (placement files carry extra keys such as "evaluation").
absl::Status ParseJson(absl::string_view json,
                       google::protobuf::Message* message,
                       bool ignore_unknown = false);

// Proto3 JSON with snake_case names and every field printed, even zeros.
std::string ToJson(const google::protobuf::Message& message,
                   bool pretty = true);

// Hardware from a JSON file (mcmpart.v1.Hardware).
absl::StatusOr<v1::Hardware> LoadHardwareFile(const std::string& path);

// A placement file: JSON with an "assignment" object; other keys are ignored.
absl::StatusOr<v1::Placement> LoadPlacementFile(const std::string& path);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_GRAPH_IO_H_
