// Hand-made ONNX models for the importer's tests: built in C++ as
// onnx::ModelProto, weights declared by dims and type only.
#ifndef MCMPART_TESTS_SOLVER_ONNX_MODEL_BUILDER_H_
#define MCMPART_TESTS_SOLVER_ONNX_MODEL_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "solver/graph.h"
#include "solver/onnx_import.h"

namespace mcmpart {
namespace testing_onnx {

// A dimension: a number, or a symbolic name.
struct Dim {
  Dim(int64_t v) : value(v) {}      // NOLINT: brace lists read like shapes.
  Dim(const char* p) : param(p) {}  // NOLINT
  int64_t value = -1;
  std::string param;
};

class ModelBuilder {
 public:
  ModelBuilder() {
    model_.set_ir_version(8);
    model_.set_producer_name("onnx_import_test");
    onnx::OperatorSetIdProto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(13);
    graph()->set_name("tiny");
  }

  onnx::GraphProto* graph() { return model_.mutable_graph(); }
  onnx::ModelProto& model() { return model_; }

  void Input(const std::string& name, const std::vector<Dim>& dims,
             int32_t type = onnx::TensorProto::FLOAT) {
    SetType(graph()->add_input(), name, dims, type);
  }
  void Output(const std::string& name, const std::vector<Dim>& dims,
              int32_t type = onnx::TensorProto::FLOAT) {
    SetType(graph()->add_output(), name, dims, type);
  }
  void ValueInfo(const std::string& name, const std::vector<Dim>& dims,
                 int32_t type = onnx::TensorProto::FLOAT) {
    SetType(graph()->add_value_info(), name, dims, type);
  }

  // Dims and type only; the data lives in a file that does not exist, as in
  // the bundled graphs.
  void Weight(const std::string& name, const std::vector<int64_t>& dims,
              int32_t type = onnx::TensorProto::FLOAT) {
    onnx::TensorProto* t = graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(type);
    for (int64_t d : dims) t->add_dims(d);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    onnx::StringStringEntryProto* loc = t->add_external_data();
    loc->set_key("location");
    loc->set_value("weights-not-shipped");
  }

  onnx::NodeProto* Node(const std::string& op,
                        const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs,
                        const std::string& name = "") {
    onnx::NodeProto* n = graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const std::string& in : inputs) n->add_input(in);
    for (const std::string& out : outputs) n->add_output(out);
    return n;
  }

  // A Constant node holding an int64 tensor.
  void IntConstant(const std::string& output, const std::vector<int64_t>& dims,
                   const std::vector<int64_t>& values) {
    onnx::NodeProto* n = Node("Constant", {}, {output}, output + "_const");
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    onnx::TensorProto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t v : values) t->add_int64_data(v);
  }

  // A Constant node holding a float tensor of `dims`, zeros.
  void FloatConstant(const std::string& output,
                     const std::vector<int64_t>& dims) {
    onnx::NodeProto* n = Node("Constant", {}, {output}, output + "_const");
    onnx::AttributeProto* a = n->add_attribute();
    a->set_name("value");
    a->set_type(onnx::AttributeProto::TENSOR);
    onnx::TensorProto* t = a->mutable_t();
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t count = 1;
    for (int64_t d : dims) {
      t->add_dims(d);
      count *= d;
    }
    for (int64_t k = 0; k < count; ++k) t->add_float_data(0);
  }

  std::string Bytes() const { return model_.SerializeAsString(); }

  absl::StatusOr<v1::Graph> Import(const OnnxImportOptions& options = {}) {
    absl::StatusOr<v1::Graph> g = ImportOnnx(Bytes(), options);
    if (g.ok()) {
      absl::StatusOr<Graph> ir = Graph::FromProto(*g);
      EXPECT_TRUE(ir.ok()) << ir.status();
    }
    return g;
  }

 private:
  static void SetType(onnx::ValueInfoProto* vi, const std::string& name,
                      const std::vector<Dim>& dims, int32_t type) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(type);
    auto* shape = tt->mutable_shape();
    for (const Dim& d : dims) {
      auto* dim = shape->add_dim();
      if (d.param.empty()) {
        dim->set_dim_value(d.value);
      } else {
        dim->set_dim_param(d.param);
      }
    }
  }

  onnx::ModelProto model_;
};

inline void AddInts(onnx::NodeProto* n, const std::string& name,
                    const std::vector<int64_t>& values) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (int64_t v : values) a->add_ints(v);
}

inline void AddInt(onnx::NodeProto* n, const std::string& name, int64_t value) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(value);
}

}  // namespace testing_onnx
}  // namespace mcmpart

#endif  // MCMPART_TESTS_SOLVER_ONNX_MODEL_BUILDER_H_
