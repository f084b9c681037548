#include "solver/problem_spec.h"

#include <functional>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "solver/hardware.h"
#include "solver/onnx_import.h"
#include "solver/quote.h"

namespace mcmpart {
namespace {

// Serialization with map entries sorted, so that equal messages give equal
// bytes (a cache key must not depend on map iteration order).
void AppendDeterministic(const google::protobuf::MessageLite& message,
                         std::string* out) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  absl::StrAppend(out, bytes.size(), ":", bytes);
}

// FNV-1a: stable across processes, unlike absl::Hash (seeded per process).
uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Two independent 64-bit hashes: a collision would hand one model's
// placement to another, so 64 bits alone are not enough comfort.
// libstdc++'s std::hash of a string is MurmurHash2 with a fixed seed.
std::string Digest(const std::string& material) {
  const uint64_t a = Fnv1a(material);
  const uint64_t b = std::hash<std::string_view>()(material);
  return absl::StrFormat("%016x%016x-%d", a, b, material.size());
}

absl::StatusOr<v1::Graph> ImportSpecOnnx(const v1::ProblemSpec& spec,
                                         std::vector<std::string>* warnings) {
  OnnxImportOptions onnx;
  if (spec.onnx().default_dim() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("problem.onnx.default_dim is ", spec.onnx().default_dim(),
                     "; must be >= 1"));
  }
  if (spec.onnx().default_dim() > 0)
    onnx.default_dim = spec.onnx().default_dim();
  for (const auto& [name, value] : spec.onnx().dims()) {
    if (value < 1) {
      return absl::InvalidArgumentError(absl::StrCat("problem.onnx.dims[",
                                                     QuoteInput(name), "] is ",
                                                     value, "; must be >= 1"));
    }
    onnx.dim_values[name] = value;
  }
  absl::StatusOr<OnnxImportResult> r =
      ImportOnnxWithWarnings(spec.onnx_model(), onnx);
  if (!r.ok()) {
    return absl::Status(r.status().code(), absl::StrCat("problem.onnx_model: ",
                                                        r.status().message()));
  }
  *warnings = std::move(r->warnings);
  return std::move(r->graph);
}

absl::StatusOr<v1::Hardware> SpecHardware(const v1::ProblemSpec& spec) {
  switch (spec.hardware_source_case()) {
    case v1::ProblemSpec::kPreset:
      if (spec.chips() < 0 || spec.chips() > kMaxChips) {
        return absl::InvalidArgumentError(
            absl::StrFormat("problem.chips is %d; must be in 1..%d (or 0 for "
                            "the preset's own count)",
                            spec.chips(), kMaxChips));
      }
      return PresetHardware(spec.preset(), spec.chips());
    case v1::ProblemSpec::kHardware:
      if (spec.chips() != 0) {
        return absl::InvalidArgumentError(
            "problem.chips goes with problem.preset, not problem.hardware");
      }
      return spec.hardware();
    case v1::ProblemSpec::HARDWARE_SOURCE_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "the request has no hardware: set problem.preset or problem.hardware");
}

}  // namespace

absl::StatusOr<ResolvedProblem> ProblemFromSpec(
    const v1::ProblemSpec& spec, const ProblemSpecOptions& options) {
  ResolvedProblem out;
  std::string material;
  v1::Graph imported;
  const v1::Graph* graph_proto = nullptr;
  switch (spec.graph_source_case()) {
    case v1::ProblemSpec::kGraph:
      graph_proto = &spec.graph();
      AppendDeterministic(spec.graph(), &material);
      break;
    case v1::ProblemSpec::kOnnxModel: {
      absl::StatusOr<v1::Graph> g = ImportSpecOnnx(spec, &out.warnings);
      if (!g.ok()) return g.status();
      imported = *std::move(g);
      graph_proto = &imported;
      absl::StrAppend(&material, "onnx", spec.onnx_model().size(), ":",
                      spec.onnx_model());
      AppendDeterministic(spec.onnx(), &material);
      break;
    }
    case v1::ProblemSpec::GRAPH_SOURCE_NOT_SET:
      return absl::InvalidArgumentError(
          "the request has no graph: set problem.graph or problem.onnx_model");
  }
  if (graph_proto->nodes_size() > options.max_nodes) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the graph has %d nodes; this server accepts at most %d (--max-nodes)",
        graph_proto->nodes_size(), options.max_nodes));
  }
  absl::StatusOr<Graph> graph = Graph::FromProto(*graph_proto);
  if (!graph.ok()) {
    if (options.graph_label.empty()) return graph.status();
    return absl::Status(
        graph.status().code(),
        absl::StrCat(options.graph_label, ": ", graph.status().message()));
  }
  absl::StatusOr<v1::Hardware> hardware = SpecHardware(spec);
  if (!hardware.ok()) return hardware.status();
  const v1::Constraints constraints =
      spec.has_constraints() ? spec.constraints() : hardware->constraints();
  hardware->clear_constraints();
  AppendDeterministic(*hardware, &material);
  AppendDeterministic(constraints, &material);
  absl::StatusOr<Problem> problem = Problem::Create(
      std::make_shared<const Graph>(*std::move(graph)), *hardware, constraints);
  if (!problem.ok()) return problem.status();
  out.problem = std::make_shared<const Problem>(*std::move(problem));
  out.digest = Digest(material);
  return out;
}

}  // namespace mcmpart
