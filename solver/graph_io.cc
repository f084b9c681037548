#include "solver/graph_io.h"

#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"

namespace mcmpart {
namespace {

std::string Extension(const std::string& path) {
  size_t dot = path.find_last_of('.');
  size_t slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) {
    return "";
  }
  return absl::AsciiStrToLower(path.substr(dot));
}

absl::Status Annotate(const absl::Status& s, absl::string_view path) {
  return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path,
                                     int64_t max_bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open file"));
  }
  const std::streamoff size = in.tellg();
  if (size < 0)
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read file"));
  if (size > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": file is ", size, " bytes; the limit is ", max_bytes));
  }
  std::string data(static_cast<size_t>(size), '\0');
  in.seekg(0);
  if (!in.read(data.data(), size)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read file"));
  }
  return data;
}

absl::Status WriteFile(const std::string& path, absl::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::PermissionDeniedError(
        absl::StrCat(path, ": cannot write file"));
  }
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  out.close();
  if (!out) {
    return absl::InternalError(absl::StrCat(path, ": write failed"));
  }
  return absl::OkStatus();
}

absl::Status ParseJson(absl::string_view json,
                       google::protobuf::Message* message,
                       bool ignore_unknown) {
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = ignore_unknown;
  auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), message,
      options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid ", message->GetDescriptor()->name(),
                     " in JSON: ", std::string(status.message())));
  }
  return absl::OkStatus();
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  // Printing a valid message cannot fail.
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

absl::StatusOr<v1::Graph> LoadGraphFile(const std::string& path,
                                        const OnnxImportOptions& onnx,
                                        std::vector<std::string>* warnings) {
  const std::string ext = Extension(path);
  if (ext != ".onnx" && ext != ".json" && ext != ".pb") {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": unknown graph format; use .onnx, .json or .pb"));
  }
  absl::StatusOr<std::string> data = ReadFile(path);
  if (!data.ok()) return data.status();
  v1::Graph graph;
  if (ext == ".onnx") {
    absl::StatusOr<OnnxImportResult> imported =
        ImportOnnxWithWarnings(*data, onnx);
    if (!imported.ok()) return Annotate(imported.status(), path);
    graph = std::move(imported->graph);
    if (warnings != nullptr) {
      for (const std::string& w : imported->warnings) {
        warnings->push_back(absl::StrCat(path, ": ", w));
      }
    }
    if (graph.name().empty()) {
      size_t slash = path.find_last_of('/');
      std::string base =
          path.substr(slash == std::string::npos ? 0 : slash + 1);
      graph.set_name(base.substr(0, base.size() - ext.size()));
    }
  } else if (ext == ".json") {
    if (absl::Status s = ParseJson(*data, &graph); !s.ok())
      return Annotate(s, path);
  } else if (!graph.ParseFromString(*data)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": not a valid mcmpart.v1.Graph protobuf (truncated or corrupt)"));
  }
  return graph;
}

absl::Status SaveGraphFile(const std::string& path, const v1::Graph& graph) {
  const std::string ext = Extension(path);
  if (ext == ".json") return WriteFile(path, ToJson(graph) + "\n");
  if (ext == ".pb") return WriteFile(path, graph.SerializeAsString());
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": unknown output format; use .json or .pb"));
}

absl::StatusOr<v1::Hardware> LoadHardwareFile(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path, 64 << 20);
  if (!data.ok()) return data.status();
  v1::Hardware hw;
  if (absl::Status s = ParseJson(*data, &hw); !s.ok()) return Annotate(s, path);
  return hw;
}

absl::StatusOr<v1::Placement> LoadPlacementFile(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFile(path, 1 << 30);
  if (!data.ok()) return data.status();
  v1::Placement placement;
  if (absl::Status s = ParseJson(*data, &placement, /*ignore_unknown=*/true);
      !s.ok()) {
    return Annotate(s, path);
  }
  return placement;
}

}  // namespace mcmpart
