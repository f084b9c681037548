// Internal to the ONNX importer: the analysis of one ONNX graph (the model's
// or a subgraph body): the type and shape of every tensor, the values of
// constants, which nodes are folded, and the FLOPs of nodes with subgraphs.
// docs/onnx-import.md is the contract; onnx_import.cc turns the analysis of
// the model's graph into a mcmpart.v1.Graph.
#ifndef MCMPART_SOLVER_ONNX_SCOPE_H_
#define MCMPART_SOLVER_ONNX_SCOPE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "onnx/onnx_pb.h"
#include "solver/onnx_import.h"
#include "solver/onnx_tensor.h"

namespace mcmpart {
namespace onnx_internal {

class GraphScope {
 public:
  // One ONNX node as the importer sees it.
  struct Node {
    onnx::NodeProto* proto = nullptr;
    // op_type, with a domain prefix when not the default domain.
    std::string op;
    // Non-empty inputs, then the tensors its subgraphs read from outside.
    std::vector<std::string> reads;
    bool folded = false;
    // The mcmpart name, for kept nodes (set by the caller).
    std::string name;
    // Why libonnx could not infer its outputs, for error messages.
    std::string inference_error;
    // libonnx's schema check passed: the importer's shape rules apply only
    // to well-formed nodes.
    bool verified = false;
    // Nodes with subgraphs: the FLOPs of their bodies, when counted.
    std::optional<double> body_flops;
  };

  // The model's graph. `warnings` (not null) collects what the import
  // could not count.
  GraphScope(const OnnxImportOptions& options,
             std::unordered_map<std::string, int> opsets,
             std::vector<std::string>* warnings);

  // Loads g's type sources (initializers, inputs, Constants, value_info)
  // and indexes its nodes. `input_types`, when given, types g's inputs in
  // order (subgraph bodies, typed from the node that owns them) ahead of
  // what g declares. g must outlive the scope.
  absl::Status Load(onnx::GraphProto* g,
                    const std::vector<std::optional<TensorInfo>>* input_types);
  // Infers, evaluates and folds node by node in topological order, and
  // analyses subgraph bodies.
  absl::Status Analyse();

  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<int>& order() const { return order_; }
  bool IsConstant(const std::string& tensor) const {
    return constants_.contains(tensor);
  }
  bool IsGraphInput(const std::string& tensor) const {
    return graph_inputs_.contains(tensor);
  }
  const absl::flat_hash_set<std::string>& graph_inputs() const {
    return graph_inputs_;
  }
  // The index of the node producing `tensor` in this graph, or -1.
  int Producer(const std::string& tensor) const;
  // The type of `tensor`, or null. Valid until the next SetInfo (which may
  // move every entry).
  const TensorInfo* FindInfo(const std::string& tensor) const;

  // `node 'name' (Op)`, or `node #i (Op)` when unnamed.
  std::string Label(int i) const;
  // The type of `tensor`, which node i reads or writes as `role`; an error
  // saying why when it is unknown.
  absl::StatusOr<const TensorInfo*> Info(int i, const std::string& tensor,
                                         absl::string_view role) const;
  absl::StatusOr<double> Bytes(int i, const std::string& tensor,
                               absl::string_view role) const;
  // FLOPs of kept node i, its bodies included.
  absl::StatusOr<double> Flops(int i) const;

 private:
  enum class Which { kStatic, kSymbolic };

  // A scope for a subgraph of a node of `parent`: it sees every tensor the
  // parent knows.
  GraphScope(const GraphScope& parent, int depth);

  absl::Status CheckOptions() const;
  int64_t ResolveDim(const onnx::TensorShapeProto::Dimension& d) const;
  static bool IsStatic(const onnx::TypeProto& type);
  absl::StatusOr<std::optional<TensorInfo>> Resolve(
      const std::string& tensor, const onnx::TypeProto& type) const;
  // Records a tensor's type unless one is known already (the first source
  // wins, so sources are added from most to least trustworthy).
  void SetInfo(const std::string& tensor, TensorInfo info);
  // Records a constant's value when its shape agrees with the known one and
  // the evaluation budget allows.
  void SetValue(const std::string& tensor, ConstTensor value);
  absl::Status AddValueInfos(
      const onnx::GraphProto& g, Which which,
      absl::flat_hash_map<std::string, TensorInfo>* into) const;
  absl::Status AddInitializers(const onnx::GraphProto& g);
  absl::Status AddInputs(
      const onnx::GraphProto& g,
      const std::vector<std::optional<TensorInfo>>* input_types);
  absl::Status AddConstantValue(const onnx::NodeProto& node);
  absl::Status IndexNodes(onnx::GraphProto* g);
  absl::Status SortNodes();
  int Opset(const onnx::NodeProto& node) const;
  void InferOutputs(int i);
  void FoldOrEvaluate(int i);
  void ApplyShapeRules(int i);
  // Why node i's outputs have no shape when they depend on values known
  // only at run time; empty otherwise.
  std::string DataDependence(int i) const;
  std::string DescribeRuntimeValue(const std::string& tensor) const;

  // Subgraph bodies (onnx_subgraph.cc): type the outputs of If, Loop and
  // Scan from their bodies and count the bodies' FLOPs, or warn.
  void AnalyseSubgraphs(int i);
  absl::StatusOr<double> AnalyseIf(int i);
  absl::StatusOr<double> AnalyseLoop(int i);
  absl::StatusOr<double> AnalyseScan(int i);
  // Analyses `body` with its inputs typed `inputs`; returns its FLOPs and
  // the types of its outputs (nullopt where unknown).
  absl::StatusOr<double> AnalyseBody(
      onnx::GraphProto* body,
      const std::vector<std::optional<TensorInfo>>& inputs,
      std::vector<std::optional<TensorInfo>>* outputs);
  // Total FLOPs of the kept nodes: a body's cost per run.
  absl::StatusOr<double> TotalFlops() const;

  const OnnxImportOptions& options_;
  // Opset version per domain ("" for the default ONNX domain).
  std::unordered_map<std::string, int> opsets_;
  std::vector<std::string>* warnings_;
  // Nesting depth: 0 for the model's graph.
  int depth_ = 0;
  // Elements of evaluated constants still allowed, shared with subgraphs.
  double* evaluation_budget_;
  double own_budget_ = 0;

  std::vector<Node> nodes_;
  std::vector<int> order_;
  // Tensor name -> index of the node that produces it.
  absl::flat_hash_map<std::string, int> producer_;
  absl::flat_hash_set<std::string> initializers_;
  absl::flat_hash_set<std::string> graph_inputs_;  // Non-initializer inputs.
  // Names defined in enclosing graphs (subgraph bodies only).
  absl::flat_hash_set<std::string> outer_names_;
  // Tensors whose value is known without running the model: initializers
  // and outputs of folded nodes.
  absl::flat_hash_set<std::string> constants_;
  // Every tensor whose type and shape are known, dimensions resolved.
  absl::flat_hash_map<std::string, TensorInfo> shapes_;
  // The file's declared types with symbolic dimensions, resolved: the last
  // resort for a tensor that shape inference cannot type.
  absl::flat_hash_map<std::string, TensorInfo> symbolic_;
  // The same types and the constant values, in the form libonnx's per-node
  // shape inference reads. Deques keep the pointers stable; a subgraph's
  // maps point into its parents' deques too, which outlive it.
  std::deque<onnx::TypeProto> type_storage_;
  std::unordered_map<std::string, onnx::TypeProto*> onnx_types_;
  std::deque<onnx::TensorProto> data_storage_;
  std::unordered_map<std::string, const onnx::TensorProto*> onnx_data_;
  // Values of constants the importer read or computed.
  absl::flat_hash_map<std::string, ConstTensor> values_;
};

}  // namespace onnx_internal
}  // namespace mcmpart

#endif  // MCMPART_SOLVER_ONNX_SCOPE_H_
