// ONNX import: the analysis of the model's graph (onnx_scope.h) turned into
// a mcmpart.v1.Graph. The rules implemented here and in the onnx_* files
// (which nodes are folded, how bytes and FLOPs are counted, how dynamic
// dimensions are resolved, how nodes are named) are the ones
// docs/onnx-import.md documents; keep the two in step.
#include "solver/onnx_import.h"

#include <cmath>
#include <exception>
#include <limits>
#include <new>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "onnx/onnx_pb.h"
#include "solver/onnx_scope.h"
#include "solver/onnx_tensor.h"
#include "solver/quote.h"

namespace mcmpart {
namespace {

using onnx_internal::GraphScope;

// Torch's exporter names every graph "torch_jit" (older versions
// "torch-jit-export"). Such a name tells the user nothing; leaving it empty
// lets LoadGraphFile name the graph after its file.
bool IsPlaceholderGraphName(const std::string& name) {
  return name == "torch_jit" || name == "torch-jit-export";
}

// ONNX node names when usable; generated ones otherwise. A name already in
// use (by a graph input or another node) is never handed out again, so that
// every input name resolves to exactly one thing.
void AssignNames(GraphScope* scope) {
  std::vector<GraphScope::Node>& nodes = scope->nodes();
  absl::flat_hash_set<std::string> taken(scope->graph_inputs().begin(),
                                         scope->graph_inputs().end());
  std::vector<int> unnamed;
  for (int i = 0; i < static_cast<int>(nodes.size()); ++i) {
    GraphScope::Node& n = nodes[i];
    if (n.folded) continue;
    if (!n.proto->name().empty() && taken.insert(n.proto->name()).second) {
      n.name = n.proto->name();
    } else {
      unnamed.push_back(i);
    }
  }
  for (int i : unnamed) {
    GraphScope::Node& n = nodes[i];
    const std::string base = absl::StrCat(
        n.proto->name().empty() ? n.proto->op_type() : n.proto->name(), "_", i);
    std::string candidate = base;
    for (int k = 2; !taken.insert(candidate).second; ++k) {
      candidate = absl::StrCat(base, "_", k);
    }
    n.name = std::move(candidate);
  }
}

absl::StatusOr<v1::Node> Convert(const GraphScope& scope, int i) {
  const GraphScope::Node& n = scope.nodes()[i];
  v1::Node out;
  out.set_name(n.name);
  out.set_op(n.op);
  double param_bytes = 0;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& in : n.reads) {
    if (!seen.insert(in).second) continue;  // Read twice, stored once.
    if (scope.IsConstant(in)) {
      // A weight or constant, folded or not: it lives with this consumer.
      absl::StatusOr<double> bytes = scope.Bytes(i, in, "constant input");
      if (!bytes.ok()) return bytes.status();
      param_bytes += *bytes;
    } else if (int producer = scope.Producer(in); producer >= 0) {
      out.add_inputs(scope.nodes()[producer].name);
    } else {
      out.add_inputs(in);  // A graph input: no edge.
    }
  }
  double output_bytes = 0;
  for (const std::string& o : n.proto->output()) {
    if (o.empty()) continue;
    absl::StatusOr<double> bytes = scope.Bytes(i, o, "output");
    if (!bytes.ok()) return bytes.status();
    output_bytes += *bytes;
  }
  absl::StatusOr<double> flops = scope.Flops(i);
  if (!flops.ok()) return flops.status();
  for (auto [field, value] :
       {std::pair<absl::string_view, double>{"FLOPs", *flops},
        {"param bytes", param_bytes},
        {"output bytes", output_bytes}}) {
    if (!std::isfinite(value) || value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(scope.Label(i), ": its ", field, " come out as ", value,
                       "; the tensor shapes are out of range"));
    }
  }
  out.set_flops(*flops);
  out.set_param_bytes(param_bytes);
  out.set_output_bytes(output_bytes);
  return out;
}

absl::StatusOr<onnx::ModelProto> Parse(absl::string_view bytes) {
  if (bytes.empty()) {
    return absl::InvalidArgumentError("not an ONNX model: the input is empty");
  }
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an ONNX model: ", bytes.size(),
                     " bytes is more than protobuf can parse (2 GiB)"));
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "not an ONNX model: the bytes do not parse as an onnx.ModelProto "
        "(truncated or corrupt protobuf)");
  }
  if (!model.has_graph()) {
    return absl::InvalidArgumentError("the ONNX model has no graph");
  }
  if (model.graph().node_size() == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ONNX graph ", QuoteInput(model.graph().name()), " has no nodes"));
  }
  return model;
}

absl::StatusOr<OnnxImportResult> Run(absl::string_view bytes,
                                     const OnnxImportOptions& options) {
  absl::StatusOr<onnx::ModelProto> model = Parse(bytes);
  if (!model.ok()) return model.status();
  std::unordered_map<std::string, int> opsets;
  for (const onnx::OperatorSetIdProto& o : model->opset_import()) {
    opsets[onnx_internal::IsDefaultDomain(o.domain()) ? "" : o.domain()] =
        static_cast<int>(o.version());
  }
  OnnxImportResult result;
  GraphScope scope(options, std::move(opsets), &result.warnings);
  onnx::GraphProto* g = model->mutable_graph();
  if (absl::Status s = scope.Load(g, nullptr); !s.ok()) return s;
  if (absl::Status s = scope.Analyse(); !s.ok()) return s;
  AssignNames(&scope);

  v1::Graph& graph = result.graph;
  if (!IsPlaceholderGraphName(g->name())) graph.set_name(g->name());
  for (const onnx::ValueInfoProto& in : g->input()) {
    if (scope.IsGraphInput(in.name())) graph.add_inputs(in.name());
  }
  for (int i : scope.order()) {
    if (scope.nodes()[i].folded) continue;
    absl::StatusOr<v1::Node> node = Convert(scope, i);
    if (!node.ok()) return node.status();
    *graph.add_nodes() = *std::move(node);
  }
  if (graph.nodes_size() == 0) {
    return absl::InvalidArgumentError(
        "the ONNX graph computes only constants: no node is left to place "
        "after folding them");
  }
  return result;
}

}  // namespace

absl::StatusOr<OnnxImportResult> ImportOnnxWithWarnings(
    absl::string_view model_bytes, const OnnxImportOptions& options) {
  // libonnx and protobuf report some failures by throwing; none may escape.
  try {
    return Run(model_bytes, options);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        "ONNX import ran out of memory; the model is too large");
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("ONNX import failed: ", e.what()));
  } catch (...) {
    return absl::InvalidArgumentError("ONNX import failed: unknown error");
  }
}

absl::StatusOr<v1::Graph> ImportOnnx(absl::string_view model_bytes,
                                     const OnnxImportOptions& options) {
  absl::StatusOr<OnnxImportResult> result =
      ImportOnnxWithWarnings(model_bytes, options);
  if (!result.ok()) return result.status();
  return std::move(result->graph);
}

}  // namespace mcmpart
