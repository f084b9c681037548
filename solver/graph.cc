#include "solver/graph.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/quote.h"
#include "solver/topological_order.h"

namespace mcmpart {
namespace {

absl::Status CheckFigure(const v1::Node& node, absl::string_view field,
                         double value) {
  if (std::isfinite(value) && value >= 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("node ", QuoteInput(node.name()), ": ", field, " is ", value,
                   "; must be a finite number >= 0"));
}

// Every node has a unique, non-empty name and finite, non-negative
// figures. Fills `index` (name -> position in the message) on the way, since
// the edge pass needs it to resolve inputs.
absl::Status IndexNodes(const v1::Graph& proto,
                        absl::flat_hash_map<std::string, int>& index) {
  const int n = proto.nodes_size();
  index.reserve(n);
  for (int i = 0; i < n; ++i) {
    const v1::Node& node = proto.nodes(i);
    if (node.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "node #", i, " (op ", QuoteInput(node.op()), ") has an empty name"));
    }
    if (!index.emplace(node.name(), i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("duplicate node name ", QuoteInput(node.name()),
                       " (nodes #", index[node.name()], " and #", i, ")"));
    }
    for (auto [field, value] :
         {std::pair<absl::string_view, double>{"flops", node.flops()},
          {"param_bytes", node.param_bytes()},
          {"output_bytes", node.output_bytes()},
          {"time_s", node.time_s()}}) {
      if (absl::Status s = CheckFigure(node, field, value); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

// The predecessors of every node as message positions, in message order and
// deduplicated per consumer (a node that reads the same tensor twice has one
// edge). An input that is neither a node nor a graph input is an error, and
// so is going past kMaxEdges: counted as we go, so that a hostile message
// fails before it is all read.
absl::Status ReadEdges(const v1::Graph& proto,
                       const absl::flat_hash_map<std::string, int>& index,
                       std::vector<std::vector<int>>& preds) {
  const int n = proto.nodes_size();
  absl::flat_hash_set<absl::string_view> graph_inputs(proto.inputs().begin(),
                                                      proto.inputs().end());
  preds.assign(n, {});
  int64_t edges = 0;
  for (int i = 0; i < n; ++i) {
    const v1::Node& node = proto.nodes(i);
    for (const std::string& input : node.inputs()) {
      auto it = index.find(input);
      if (it != index.end()) {
        preds[i].push_back(it->second);
      } else if (!graph_inputs.contains(input)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "node ", QuoteInput(node.name()), ": input ", QuoteInput(input),
            " is neither a node nor a graph input"));
      }
    }
    std::sort(preds[i].begin(), preds[i].end());
    preds[i].erase(std::unique(preds[i].begin(), preds[i].end()),
                   preds[i].end());
    edges += static_cast<int64_t>(preds[i].size());
    if (edges > kMaxEdges) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph has more than ", kMaxEdges, " edges"));
    }
  }
  return absl::OkStatus();
}

// The error for a graph that is not a DAG: the cycle by node names, closed
// (the first name again at the end) so the user sees the loop.
absl::Status CycleError(const v1::Graph& proto, const std::vector<int>& cycle) {
  std::vector<std::string> names;
  for (int u : cycle) {
    names.push_back(QuoteInput(proto.nodes(u).name()));
  }
  names.push_back(names.front());
  return absl::InvalidArgumentError(
      absl::StrCat("graph has a cycle: ", absl::StrJoin(names, " -> ")));
}

// Packs per-node adjacency lists (indexed by message position, naming
// message positions) into CSR form indexed by and naming topological ids:
// `flat[begin[id] .. begin[id+1])` are id's neighbours, ascending.
void BuildCsr(const std::vector<std::vector<int>>& lists,
              const std::vector<int>& order, const std::vector<int>& id_of,
              std::vector<int>& begin, std::vector<int>& flat) {
  const int n = static_cast<int>(order.size());
  begin.assign(n + 1, 0);
  for (int id = 0; id < n; ++id) {
    begin[id + 1] = begin[id] + static_cast<int>(lists[order[id]].size());
  }
  flat.resize(begin[n]);
  for (int id = 0; id < n; ++id) {
    int* out = flat.data() + begin[id];
    for (int x : lists[order[id]]) *out++ = id_of[x];
    std::sort(flat.data() + begin[id], out);
  }
}

}  // namespace

// Validation first (names, figures, edges, acyclicity, in that order, so the
// first error a user sees is the same whatever else is wrong), then the
// renumbering into topological ids and the compact arrays.
absl::StatusOr<Graph> Graph::FromProto(const v1::Graph& proto) {
  const int n = proto.nodes_size();
  if (n == 0) return absl::InvalidArgumentError("graph has no nodes");
  if (n > kMaxNodes) {
    return absl::InvalidArgumentError(
        absl::StrCat("graph has ", n, " nodes; the limit is ", kMaxNodes));
  }

  absl::flat_hash_map<std::string, int> index;
  if (absl::Status s = IndexNodes(proto, index); !s.ok()) return s;
  std::vector<std::vector<int>> preds;
  if (absl::Status s = ReadEdges(proto, index, preds); !s.ok()) return s;

  // Ids follow a stable topological order, so an already sorted message
  // keeps its order and ids match what the user wrote.
  std::vector<int> order, cycle;
  if (!StableTopologicalOrder(preds, &order, &cycle)) {
    return CycleError(proto, cycle);
  }
  std::vector<std::vector<int>> succs(n);
  for (int v = 0; v < n; ++v) {
    for (int u : preds[v]) succs[u].push_back(v);
  }

  Graph g;
  g.name_ = proto.name();
  g.graph_inputs_.assign(proto.inputs().begin(), proto.inputs().end());
  std::vector<int> id_of(n);
  for (int id = 0; id < n; ++id) id_of[order[id]] = id;
  g.names_.resize(n);
  g.ops_.resize(n);
  g.flops_.resize(n);
  g.param_bytes_.resize(n);
  g.output_bytes_.resize(n);
  g.time_s_.resize(n);
  g.input_bytes_.assign(n, 0.0);
  for (int id = 0; id < n; ++id) {
    const v1::Node& node = proto.nodes(order[id]);
    g.names_[id] = node.name();
    g.ops_[id] = node.op();
    g.flops_[id] = node.flops();
    g.param_bytes_[id] = node.param_bytes();
    g.output_bytes_[id] = node.output_bytes();
    g.time_s_[id] = node.time_s();
    g.index_.emplace(node.name(), id);
  }

  BuildCsr(preds, order, id_of, g.pred_begin_, g.pred_);
  BuildCsr(succs, order, id_of, g.succ_begin_, g.succ_);
  for (int v = 0; v < n; ++v) {
    for (int u : g.predecessors(v)) g.input_bytes_[v] += g.output_bytes_[u];
  }
  return g;
}

std::optional<int> Graph::FindNode(absl::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

v1::Graph Graph::ToProto() const {
  v1::Graph proto;
  proto.set_name(name_);
  for (const std::string& input : graph_inputs_) proto.add_inputs(input);
  for (int v = 0; v < num_nodes(); ++v) {
    v1::Node* node = proto.add_nodes();
    node->set_name(names_[v]);
    node->set_op(ops_[v]);
    for (int u : predecessors(v)) node->add_inputs(names_[u]);
    node->set_flops(flops_[v]);
    node->set_param_bytes(param_bytes_[v]);
    node->set_output_bytes(output_bytes_[v]);
    node->set_time_s(time_s_[v]);
  }
  return proto;
}

}  // namespace mcmpart
