// Loading one ONNX graph into its scope: the type sources (initializers,
// graph inputs, Constant values, the types the file declares), the index
// of its nodes and their order. The rules are the ones docs/onnx-import.md
// documents; keep the two in step.
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "solver/onnx_scope.h"
#include "solver/quote.h"
#include "solver/topological_order.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

// Tensors a subgraph (If/Loop/Scan body) reads from enclosing scopes without
// listing them as node inputs. They are real data dependencies of the node
// that owns the subgraph.
void CollectOuterReads(const onnx::GraphProto& g,
                       std::vector<std::string>* out) {
  absl::flat_hash_set<std::string> defined;
  for (const auto& v : g.input()) defined.insert(v.name());
  for (const auto& t : g.initializer()) defined.insert(t.name());
  for (const auto& t : g.sparse_initializer()) {
    defined.insert(t.values().name());
  }
  for (const auto& n : g.node()) {
    for (const std::string& o : n.output()) defined.insert(o);
  }
  for (const auto& n : g.node()) {
    for (const std::string& i : n.input()) {
      if (!i.empty() && !defined.contains(i)) out->push_back(i);
    }
    for (const onnx::AttributeProto& a : n.attribute()) {
      std::vector<std::string> inner;
      if (a.has_g()) CollectOuterReads(a.g(), &inner);
      for (const auto& sub : a.graphs()) CollectOuterReads(sub, &inner);
      for (std::string& name : inner) {
        if (!defined.contains(name)) out->push_back(std::move(name));
      }
    }
  }
}

}  // namespace

absl::Status GraphScope::AddValueInfos(
    const onnx::GraphProto& g, Which which,
    absl::flat_hash_map<std::string, TensorInfo>* into) const {
  for (const auto* list : {&g.input(), &g.value_info(), &g.output()}) {
    for (const onnx::ValueInfoProto& vi : *list) {
      if (into->contains(vi.name())) continue;
      const bool is_static = IsStatic(vi.type());
      if ((which == Which::kStatic && !is_static) ||
          (which == Which::kSymbolic && is_static)) {
        continue;
      }
      absl::StatusOr<std::optional<TensorInfo>> info =
          Resolve(vi.name(), vi.type());
      if (!info.ok()) return info.status();
      if (info->has_value()) into->emplace(vi.name(), **std::move(info));
    }
  }
  return absl::OkStatus();
}

// Initializers are constants whatever else the file says: their dims and
// type are authoritative. Only dims are counted, never the (absent) data;
// data stored inline is handed to shape inference, which may read small
// tensors (Reshape targets, Resize scales in older exports).
absl::Status GraphScope::AddInitializers(const onnx::GraphProto& g) {
  auto add = [this](const std::string& name, int32_t type,
                    const google::protobuf::RepeatedField<int64_t>& dims,
                    const onnx::TensorProto* inline_data) -> absl::Status {
    if (name.empty()) {
      return absl::InvalidArgumentError("an initializer has an empty name");
    }
    if (!initializers_.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer ", QuoteInput(name), " is declared twice"));
    }
    TensorInfo info;
    info.elem_type = type;
    for (int64_t d : dims) {
      if (d < 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "initializer ", QuoteInput(name), " has a negative dimension ", d));
      }
      info.dims.push_back(d);
    }
    SetInfo(name, std::move(info));
    constants_.insert(name);
    if (inline_data != nullptr &&
        inline_data->data_location() != onnx::TensorProto::EXTERNAL) {
      onnx_data_[name] = inline_data;
      if (std::optional<ConstTensor> v = ParseConstTensor(*inline_data)) {
        SetValue(name, *std::move(v));
      }
    }
    return absl::OkStatus();
  };
  for (const onnx::TensorProto& t : g.initializer()) {
    if (absl::Status s = add(t.name(), t.data_type(), t.dims(), &t); !s.ok()) {
      return s;
    }
  }
  for (const onnx::SparseTensorProto& t : g.sparse_initializer()) {
    if (absl::Status s =
            add(t.values().name(), t.values().data_type(), t.dims(), nullptr);
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

// A Constant node's output type, and for integers its value, are in its
// attribute; reading them needs no shape inference.
absl::Status GraphScope::AddConstantValue(const onnx::NodeProto& node) {
  if (node.output_size() < 1 || node.output(0).empty()) {
    return absl::OkStatus();
  }
  const std::string& out = node.output(0);
  for (const onnx::AttributeProto& a : node.attribute()) {
    TensorInfo info;
    std::optional<ConstTensor> value;
    if (a.name() == "value" && a.has_t()) {
      info.elem_type = a.t().data_type();
      info.dims.assign(a.t().dims().begin(), a.t().dims().end());
      value = ParseConstTensor(a.t());
      if (a.t().data_location() != onnx::TensorProto::EXTERNAL) {
        onnx_data_[out] = &a.t();  // Float data too: Resize reads scales.
      }
    } else if (a.name() == "sparse_value" && a.has_sparse_tensor()) {
      info.elem_type = a.sparse_tensor().values().data_type();
      info.dims.assign(a.sparse_tensor().dims().begin(),
                       a.sparse_tensor().dims().end());
    } else if (a.name() == "value_float") {
      info.elem_type = onnx::TensorProto::FLOAT;
      value = ConstTensor{info.elem_type, {}, {}, {a.f()}};
    } else if (a.name() == "value_floats") {
      info.elem_type = onnx::TensorProto::FLOAT;
      info.dims = {a.floats_size()};
      if (a.floats_size() <= kMaxEvaluatedElements) {
        value = ConstTensor{info.elem_type,
                            info.dims,
                            {},
                            {a.floats().begin(), a.floats().end()}};
      }
    } else if (a.name() == "value_int") {
      info.elem_type = onnx::TensorProto::INT64;
      value = ConstTensor{onnx::TensorProto::INT64, {}, {a.i()}, {}};
    } else if (a.name() == "value_ints") {
      info.elem_type = onnx::TensorProto::INT64;
      info.dims = {a.ints_size()};
      value = ConstTensor{onnx::TensorProto::INT64,
                          info.dims,
                          {a.ints().begin(), a.ints().end()},
                          {}};
    } else {
      continue;
    }
    for (int64_t d : info.dims) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("Constant ", QuoteInput(node.name()),
                         " has a negative dimension ", d, " in its value"));
      }
    }
    SetInfo(out, std::move(info));
    if (value.has_value()) SetValue(out, *std::move(value));
    break;
  }
  return absl::OkStatus();
}

std::string GraphScope::Label(int i) const {
  const Node& n = nodes_[i];
  if (n.proto->name().empty()) {
    return absl::StrCat("node #", i, " (", n.op, ")");
  }
  return absl::StrCat("node ", QuoteInput(n.proto->name()), " (", n.op, ")");
}

absl::Status GraphScope::IndexNodes(onnx::GraphProto* g) {
  nodes_.resize(g->node_size());
  for (int i = 0; i < g->node_size(); ++i) {
    Node& n = nodes_[i];
    n.proto = g->mutable_node(i);
    n.op = IsDefaultDomain(n.proto->domain())
               ? n.proto->op_type()
               : absl::StrCat(n.proto->domain(), ".", n.proto->op_type());
    if (n.proto->op_type().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(Label(i), " has no op_type"));
    }
    for (const std::string& in : n.proto->input()) {
      if (!in.empty()) n.reads.push_back(in);
    }
    for (const onnx::AttributeProto& a : n.proto->attribute()) {
      if (a.has_g()) CollectOuterReads(a.g(), &n.reads);
      for (const auto& sub : a.graphs()) CollectOuterReads(sub, &n.reads);
    }
    for (const std::string& out : n.proto->output()) {
      if (out.empty()) continue;  // An omitted optional output.
      auto [it, inserted] = producer_.emplace(out, i);
      if (!inserted) {
        return absl::InvalidArgumentError(
            absl::StrCat("tensor ", QuoteInput(out), " is an output of both ",
                         Label(it->second), " and ", Label(i)));
      }
      if (initializers_.contains(out) || graph_inputs_.contains(out)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "tensor ", QuoteInput(out), " is an output of ", Label(i),
            " and also a ",
            initializers_.contains(out) ? "initializer" : "graph input"));
      }
    }
  }
  for (int i = 0; i < static_cast<int>(nodes_.size()); ++i) {
    for (const std::string& in : nodes_[i].reads) {
      if (!producer_.contains(in) && !initializers_.contains(in) &&
          !graph_inputs_.contains(in) && !outer_names_.contains(in)) {
        return absl::InvalidArgumentError(absl::StrCat(
            Label(i), " reads tensor ", QuoteInput(in),
            ", which no node produces and which is neither a graph input "
            "nor an initializer"));
      }
    }
  }
  return absl::OkStatus();
}

// ONNX requires nodes in topological order, but files do not always comply;
// inference and folding need producers handled before consumers. Stable: a
// sorted file keeps its order.
absl::Status GraphScope::AddInputs(
    const onnx::GraphProto& g,
    const std::vector<std::optional<TensorInfo>>* input_types) {
  for (int k = 0; k < g.input_size(); ++k) {
    const onnx::ValueInfoProto& in = g.input(k);
    // Before IR version 4 every initializer was also listed as an input; an
    // input with an initializer is a constant, not a model input.
    if (initializers_.contains(in.name())) continue;
    if (in.name().empty()) {
      return absl::InvalidArgumentError("a graph input has an empty name");
    }
    if (!graph_inputs_.insert(in.name()).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          "graph input ", QuoteInput(in.name()), " is declared twice"));
    }
    if (input_types != nullptr && k < static_cast<int>(input_types->size()) &&
        (*input_types)[k].has_value()) {
      SetInfo(in.name(), *(*input_types)[k]);
    }
    absl::StatusOr<std::optional<TensorInfo>> info =
        Resolve(in.name(), in.type());
    if (!info.ok()) return info.status();
    if (info->has_value()) SetInfo(in.name(), **std::move(info));
  }
  return absl::OkStatus();
}

// Type sources, most trustworthy first: initializers; graph inputs, their
// dynamic dimensions resolved; Constant values; types the file states with
// every dimension a number. Per-node inference (Analyse) fills in the rest,
// and the file's symbolic types are the last resort.
absl::Status GraphScope::Load(
    onnx::GraphProto* g,
    const std::vector<std::optional<TensorInfo>>* input_types) {
  if (absl::Status s = CheckOptions(); !s.ok()) return s;
  if (absl::Status s = AddInitializers(*g); !s.ok()) return s;
  if (absl::Status s = AddInputs(*g, input_types); !s.ok()) return s;
  for (const onnx::NodeProto& node : g->node()) {
    if (node.op_type() == "Constant" && IsDefaultDomain(node.domain())) {
      if (absl::Status s = AddConstantValue(node); !s.ok()) return s;
    }
  }
  absl::flat_hash_map<std::string, TensorInfo> declared;
  if (absl::Status s = AddValueInfos(*g, Which::kStatic, &declared); !s.ok()) {
    return s;
  }
  for (auto& [name, info] : declared) SetInfo(name, std::move(info));
  if (absl::Status s = AddValueInfos(*g, Which::kSymbolic, &symbolic_);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = IndexNodes(g); !s.ok()) return s;
  return SortNodes();
}

absl::Status GraphScope::SortNodes() {
  const int n = static_cast<int>(nodes_.size());
  std::vector<std::vector<int>> preds(n);
  for (int v = 0; v < n; ++v) {
    absl::flat_hash_set<int> distinct;
    for (const std::string& in : nodes_[v].reads) {
      auto it = producer_.find(in);
      if (it != producer_.end()) distinct.insert(it->second);
    }
    for (int u : distinct) {
      if (u == v) {
        return absl::InvalidArgumentError(
            absl::StrCat(Label(v), " reads its own output"));
      }
      preds[v].push_back(u);
    }
  }
  std::vector<int> cycle;
  if (!StableTopologicalOrder(preds, &order_, &cycle)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the ONNX graph has a cycle through ", Label(cycle.front())));
  }
  return absl::OkStatus();
}

}  // namespace onnx_internal
}  // namespace mcmpart
