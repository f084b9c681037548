// Nodes with subgraphs: If, Loop and Scan. Their bodies are analysed like
// the model's graph, in a scope that sees the enclosing tensors; the body
// outputs type the node's outputs, and the body FLOPs give the node's
// (docs/onnx-import.md, "FLOPs"). What cannot be counted is a warning
// naming the node, never an error: the node still imports with 0 FLOPs.
#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "solver/onnx_scope.h"

namespace mcmpart {
namespace onnx_internal {
namespace {

// Nested subgraphs deeper than this are not analysed: a hostile file must
// not exhaust the stack.
constexpr int kMaxSubgraphDepth = 16;

// A Loop trip count above this is taken for the "no limit" placeholder
// exporters write for loops bounded by their condition (torch writes
// INT64_MAX), not for a number of iterations.
constexpr int64_t kMaxTripCount = int64_t{1} << 31;

onnx::GraphProto* GraphAttribute(onnx::NodeProto* node,
                                 absl::string_view name) {
  for (onnx::AttributeProto& a : *node->mutable_attribute()) {
    if (a.name() == name && a.has_g()) return a.mutable_g();
  }
  return nullptr;
}

bool SameType(const std::optional<TensorInfo>& a,
              const std::optional<TensorInfo>& b) {
  return a.has_value() && b.has_value() && a->elem_type == b->elem_type &&
         a->dims == b->dims;
}

}  // namespace

void GraphScope::AnalyseSubgraphs(int i) {
  Node& n = nodes_[i];
  const std::string& op = n.proto->op_type();
  absl::StatusOr<double> flops;
  if (!IsDefaultDomain(n.proto->domain()) ||
      (op != "If" && op != "Loop" && op != "Scan")) {
    flops = absl::UnimplementedError(
        absl::StrCat("the importer does not cost the subgraphs of ", n.op));
  } else if (depth_ >= kMaxSubgraphDepth) {
    flops = absl::UnimplementedError(absl::StrCat(
        "its subgraphs are nested more than ", kMaxSubgraphDepth, " deep"));
  } else if (op == "If") {
    flops = AnalyseIf(i);
  } else if (op == "Loop") {
    flops = AnalyseLoop(i);
  } else {
    flops = AnalyseScan(i);
  }
  if (flops.ok() && std::isfinite(*flops)) {
    n.body_flops = *flops;
    return;
  }
  warnings_->push_back(absl::StrCat(
      Label(i), ": the FLOPs of its body are not counted (the node counts 0): ",
      flops.ok() ? "they come out too large" : flops.status().message()));
}

absl::StatusOr<double> GraphScope::AnalyseBody(
    onnx::GraphProto* body,
    const std::vector<std::optional<TensorInfo>>& inputs,
    std::vector<std::optional<TensorInfo>>* outputs) {
  GraphScope child(*this, depth_ + 1);
  if (absl::Status s = child.Load(body, &inputs); !s.ok()) return s;
  if (absl::Status s = child.Analyse(); !s.ok()) return s;
  outputs->clear();
  for (const onnx::ValueInfoProto& out : body->output()) {
    const TensorInfo* info = child.FindInfo(out.name());
    outputs->push_back(info == nullptr ? std::nullopt
                                       : std::optional<TensorInfo>(*info));
  }
  return child.TotalFlops();
}

absl::StatusOr<double> GraphScope::TotalFlops() const {
  double total = 0;
  for (int i : order_) {
    if (nodes_[i].folded) continue;
    absl::StatusOr<double> f = Flops(i);
    if (!f.ok()) return f.status();
    total += *f;
  }
  return total;
}

// The larger branch: the node's cost is bounded by it, and which branch
// runs is decided at run time.
absl::StatusOr<double> GraphScope::AnalyseIf(int i) {
  onnx::NodeProto* p = nodes_[i].proto;
  onnx::GraphProto* then_g = GraphAttribute(p, "then_branch");
  onnx::GraphProto* else_g = GraphAttribute(p, "else_branch");
  if (then_g == nullptr || else_g == nullptr) {
    return absl::InvalidArgumentError("it lacks then_branch or else_branch");
  }
  std::vector<std::optional<TensorInfo>> then_out, else_out;
  absl::StatusOr<double> then_flops = AnalyseBody(then_g, {}, &then_out);
  absl::StatusOr<double> else_flops = AnalyseBody(else_g, {}, &else_out);
  // An output is typed when both branches agree on its type.
  for (int k = 0; k < p->output_size(); ++k) {
    if (k < static_cast<int>(then_out.size()) &&
        k < static_cast<int>(else_out.size()) &&
        SameType(then_out[k], else_out[k])) {
      SetInfo(p->output(k), *then_out[k]);
    }
  }
  if (!then_flops.ok()) return then_flops.status();
  if (!else_flops.ok()) return else_flops.status();
  return std::max(*then_flops, *else_flops);
}

// Inputs (M, cond, v_1..v_N); body (iteration, cond, v_1..v_N) ->
// (cond, v_1..v_N, scan_1..scan_K); outputs (v_1..v_N final, scan_1..scan_K
// stacked over the iterations).
absl::StatusOr<double> GraphScope::AnalyseLoop(int i) {
  onnx::NodeProto* p = nodes_[i].proto;
  onnx::GraphProto* body = GraphAttribute(p, "body");
  if (body == nullptr) return absl::InvalidArgumentError("it lacks a body");
  std::optional<int64_t> trips;
  if (p->input_size() > 0 && !p->input(0).empty()) {
    auto v = values_.find(p->input(0));
    if (v != values_.end() && v->second.size() == 1) trips = v->second.AsInt(0);
  }
  std::vector<std::optional<TensorInfo>> inputs = {
      TensorInfo{onnx::TensorProto::INT64, {}},
      TensorInfo{onnx::TensorProto::BOOL, {}}};
  const int carried = std::max(p->input_size() - 2, 0);
  for (int k = 0; k < carried; ++k) {
    const TensorInfo* info = FindInfo(p->input(2 + k));
    inputs.push_back(info == nullptr ? std::nullopt
                                     : std::optional<TensorInfo>(*info));
  }
  std::vector<std::optional<TensorInfo>> outs;
  absl::StatusOr<double> flops = AnalyseBody(body, inputs, &outs);
  for (int k = 0; k < p->output_size() && 1 + k < static_cast<int>(outs.size());
       ++k) {
    std::optional<TensorInfo> info = outs[1 + k];
    if (k >= carried && info.has_value()) {  // A scan output: stacked.
      if (!trips.has_value() || *trips < 0 || *trips > kMaxTripCount) continue;
      info->dims.insert(info->dims.begin(), *trips);
    }
    if (info.has_value()) SetInfo(p->output(k), *std::move(info));
  }
  if (!flops.ok()) return flops.status();
  if (p->input_size() == 0 || p->input(0).empty()) {
    return absl::InvalidArgumentError(
        "it has no trip count (input M): it runs until its condition turns "
        "false at run time");
  }
  if (!trips.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("its trip count (input M, ",
                     DescribeRuntimeValue(p->input(0)), ") is not a constant"));
  }
  if (*trips < 0 || *trips > kMaxTripCount) {
    return absl::InvalidArgumentError(absl::StrCat(
        "its trip count ", *trips,
        " is no real bound: it runs until its condition turns false"));
  }
  return static_cast<double>(*trips) * *flops;
}

// Inputs (s_1..s_N, x_1..x_M); body (s_1..s_N, one slice of each x) ->
// (s_1..s_N, y_1..y_K); outputs (s final, y stacked along scan_output_axes).
absl::StatusOr<double> GraphScope::AnalyseScan(int i) {
  onnx::NodeProto* p = nodes_[i].proto;
  onnx::GraphProto* body = GraphAttribute(p, "body");
  const onnx::AttributeProto* num = FindAttribute(*p, "num_scan_inputs");
  if (Opset(*p) < 9) {
    return absl::UnimplementedError("Scan before opset 9 is not costed");
  }
  if (body == nullptr || num == nullptr || num->i() < 1 ||
      num->i() > p->input_size()) {
    return absl::InvalidArgumentError(
        "it lacks a body or a valid num_scan_inputs");
  }
  const int scans = static_cast<int>(num->i());
  const int states = p->input_size() - scans;
  auto axis_of = [&](absl::string_view attr, int k) -> int64_t {
    const onnx::AttributeProto* a = FindAttribute(*p, attr);
    return a != nullptr && k < a->ints_size() ? a->ints(k) : 0;
  };
  std::vector<std::optional<TensorInfo>> inputs;
  std::optional<int64_t> iterations;
  for (int k = 0; k < p->input_size(); ++k) {
    const TensorInfo* info = FindInfo(p->input(k));
    if (info == nullptr) {
      inputs.push_back(std::nullopt);
      continue;
    }
    TensorInfo t = *info;
    if (k >= states) {  // A scanned input: the body sees one slice.
      int64_t axis = axis_of("scan_input_axes", k - states);
      const int64_t rank = static_cast<int64_t>(t.dims.size());
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank) {
        return absl::InvalidArgumentError("a scan input axis is out of range");
      }
      if (!iterations.has_value()) iterations = t.dims[axis];
      t.dims.erase(t.dims.begin() + axis);
    }
    inputs.push_back(std::move(t));
  }
  std::vector<std::optional<TensorInfo>> outs;
  absl::StatusOr<double> flops = AnalyseBody(body, inputs, &outs);
  for (int k = 0; k < p->output_size() && k < static_cast<int>(outs.size());
       ++k) {
    std::optional<TensorInfo> info = outs[k];
    if (!info.has_value()) continue;
    if (k >= states) {  // Stacked along its scan output axis.
      if (!iterations.has_value()) continue;
      int64_t axis = axis_of("scan_output_axes", k - states);
      const int64_t rank = static_cast<int64_t>(info->dims.size()) + 1;
      if (axis < 0) axis += rank;
      if (axis < 0 || axis >= rank) continue;
      info->dims.insert(info->dims.begin() + axis, *iterations);
    }
    SetInfo(p->output(k), *std::move(info));
  }
  if (!flops.ok()) return flops.status();
  if (!iterations.has_value()) {
    return absl::InvalidArgumentError(
        "the shape of its scanned input is unknown");
  }
  return static_cast<double>(*iterations) * *flops;
}

}  // namespace onnx_internal
}  // namespace mcmpart
