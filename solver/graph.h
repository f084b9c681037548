// The validated graph IR every search loop runs on.
//
// A Graph is built once from a mcmpart.v1.Graph message, checked against the
// spec (docs/problem.md, "Inputs"), and then never changes: node ids are
// positions in a topological order, adjacency is stored compactly in both
// directions, and every per-node figure is a plain array. It is safe to share
// one const Graph between any number of threads.
#ifndef MCMPART_SOLVER_GRAPH_H_
#define MCMPART_SOLVER_GRAPH_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "mcmpart/v1/problem.pb.h"

namespace mcmpart {

// Limits on untrusted input, so that a hostile request cannot make the
// service allocate without bound. Generous for real models (the largest
// shared graph has 1,867 nodes).
inline constexpr int kMaxNodes = 1'000'000;
inline constexpr int kMaxEdges = 10'000'000;

class Graph {
 public:
  // Validates `proto` and builds the IR. Errors (all INVALID_ARGUMENT, the
  // message names the node and field):
  //   empty or duplicate node name, a dangling input, a cycle, a negative or
  //   non-finite flops/param_bytes/output_bytes/time_s, more than kMaxNodes
  //   nodes or kMaxEdges edges.
  // Node ids follow the message's order when it is already topological
  // (the common case), else a stable topological sort of it.
  static absl::StatusOr<Graph> FromProto(const v1::Graph& proto);

  const std::string& name() const { return name_; }
  int num_nodes() const { return static_cast<int>(names_.size()); }
  int num_edges() const { return static_cast<int>(succ_.size()); }

  // Node v's figures, 0 <= v < num_nodes(). Ids are topological: every edge
  // u -> v has u < v.
  const std::string& node_name(int v) const { return names_[v]; }
  const std::string& op(int v) const { return ops_[v]; }
  double flops(int v) const { return flops_[v]; }
  double param_bytes(int v) const { return param_bytes_[v]; }
  double output_bytes(int v) const { return output_bytes_[v]; }
  double time_s(int v) const { return time_s_[v]; }

  // Distinct node successors / predecessors of v, ascending.
  absl::Span<const int> successors(int v) const {
    return absl::MakeConstSpan(succ_).subspan(
        succ_begin_[v], succ_begin_[v + 1] - succ_begin_[v]);
  }
  absl::Span<const int> predecessors(int v) const {
    return absl::MakeConstSpan(pred_).subspan(
        pred_begin_[v], pred_begin_[v + 1] - pred_begin_[v]);
  }

  // Sum over the distinct node inputs u of v of output_bytes(u).
  double input_bytes(int v) const { return input_bytes_[v]; }

  // The id of the node called `name`, if any.
  std::optional<int> FindNode(absl::string_view name) const;

  // The graph back as a message, nodes in id (topological) order.
  v1::Graph ToProto() const;

 private:
  Graph() = default;

  std::string name_;
  std::vector<std::string> graph_inputs_;
  std::vector<std::string> names_;
  std::vector<std::string> ops_;
  std::vector<double> flops_, param_bytes_, output_bytes_, time_s_,
      input_bytes_;
  // CSR adjacency: successors of v are succ_[succ_begin_[v] ..
  // succ_begin_[v+1]).
  std::vector<int> succ_begin_, succ_;
  std::vector<int> pred_begin_, pred_;
  absl::flat_hash_map<std::string, int> index_;
};

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_GRAPH_H_
