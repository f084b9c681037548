#include "solver/onnx_import.h"

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "tests/solver/onnx_model_builder.h"

namespace mcmpart {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::testing::UnorderedElementsAre;
using testing_onnx::AddInt;
using testing_onnx::AddInts;
using testing_onnx::Dim;
using testing_onnx::ModelBuilder;

constexpr double kMiB = 1024.0 * 1024.0;

std::string GraphPath(const std::string& name) {
  return absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/", name, ".onnx");
}

std::string ReadGraph(const std::string& name) {
  absl::StatusOr<std::string> data = ReadFile(GraphPath(name));
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *data : "";
}

onnx::ModelProto ParseModel(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

const v1::Node* FindNode(const v1::Graph& g, const std::string& name) {
  for (const v1::Node& n : g.nodes()) {
    if (n.name() == name) return &n;
  }
  return nullptr;
}

double TotalParamBytes(const v1::Graph& g) {
  double total = 0;
  for (const v1::Node& n : g.nodes()) total += n.param_bytes();
  return total;
}

double TotalFlops(const v1::Graph& g) {
  double total = 0;
  for (const v1::Node& n : g.nodes()) total += n.flops();
  return total;
}

// The test's own element sizes, kept apart from the importer's table so that
// the initializer sum below is an independent check.
double TestElementBytes(int32_t type) {
  switch (type) {
    case onnx::TensorProto::FLOAT:
    case onnx::TensorProto::INT32:
      return 4;
    case onnx::TensorProto::INT64:
    case onnx::TensorProto::DOUBLE:
      return 8;
    case onnx::TensorProto::FLOAT16:
      return 2;
    case onnx::TensorProto::BOOL:
    case onnx::TensorProto::UINT8:
    case onnx::TensorProto::INT8:
      return 1;
    default:
      ADD_FAILURE() << "unexpected initializer type " << type;
      return 0;
  }
}

// ---------------------------------------------------------------------------
// The 17 bundled graphs.

struct SharedGraph {
  const char* name;
  // Nodes in the ONNX file.
  int onnx_nodes;
  // mcmpart nodes after folding. The difference is exactly the folded
  // constant producers:
  //  - every Constant node (bert_base 244, bert_large 484, gpt2_small 268,
  //    inception_v3 9 (Pad widths), mobilenet_v2 70 (Clip bounds),
  //    shufflenet_v2 110);
  //  - the shape arithmetic torch emits for chunk()/split(): per attention
  //    layer (bert 12 or 24 layers, gpt2 12) and per shufflenet unit (13) a
  //    chain Shape -> Gather -> Add -> Div and three (shufflenet: two) Muls
  //    computing Slice bounds, i.e. 7 (shufflenet 6) nodes.
  //  So bert_base 943 - 244 - 12*7 = 615, bert_large 1867 - 484 - 24*7 =
  //  1215, gpt2_small 991 - 268 - 12*7 = 639, shufflenet_v2 374 - 110 -
  //  13*6 = 186, inception_v3 233 - 9 = 224, mobilenet_v2 170 - 70 = 100;
  //  the CNNs without constants keep every node.
  int nodes;
};

constexpr SharedGraph kSharedGraphs[] = {
    {"alexnet", 20, 20},
    {"vgg16", 38, 38},
    {"resnet18", 49, 49},
    {"squeezenet1_1", 65, 65},
    {"mnasnet1_0", 99, 99},
    {"resnet50", 122, 122},
    {"resnext50_32x4d", 122, 122},
    {"googlenet", 139, 139},
    {"mobilenet_v3_large", 161, 161},
    {"mobilenet_v2", 170, 100},
    {"regnet_y_400mf", 217, 217},
    {"inception_v3", 233, 224},
    {"efficientnet_b0", 239, 239},
    {"shufflenet_v2", 374, 186},
    {"bert_base", 943, 615},
    {"gpt2_small", 991, 639},
    {"bert_large", 1867, 1215},
};

class SharedGraphTest : public ::testing::TestWithParam<SharedGraph> {};

TEST_P(SharedGraphTest, ImportsValidatesAndKeepsTheWeights) {
  const SharedGraph& expected = GetParam();
  const std::string bytes = ReadGraph(expected.name);
  const onnx::ModelProto model = ParseModel(bytes);
  ASSERT_EQ(model.graph().node_size(), expected.onnx_nodes);

  absl::StatusOr<v1::Graph> g = ImportOnnx(bytes);
  ASSERT_TRUE(g.ok()) << g.status();
  absl::StatusOr<Graph> ir = Graph::FromProto(*g);
  ASSERT_TRUE(ir.ok()) << ir.status();
  EXPECT_EQ(g->nodes_size(), expected.nodes);
  // torch names every graph "torch_jit": left empty so that LoadGraphFile
  // names the graph after its file.
  EXPECT_EQ(g->name(), "");
  EXPECT_THAT(g->inputs(), ElementsAre("input"));

  // Sum of initializer sizes from dims and dtype, independently of the
  // importer. No initializer in these graphs has more than one consumer, so
  // per-consumer counting adds nothing for them; the importer's total
  // exceeds this sum only by the Constant nodes it folds (0.63% for
  // gpt2_small's causal masks, bytes elsewhere).
  double initializer_bytes = 0;
  absl::flat_hash_map<std::string, int> consumers;
  for (const onnx::TensorProto& t : model.graph().initializer()) {
    double n = TestElementBytes(t.data_type());
    for (int64_t d : t.dims()) n *= static_cast<double>(d);
    initializer_bytes += n;
    consumers[t.name()] = 0;
  }
  for (const onnx::NodeProto& node : model.graph().node()) {
    for (const std::string& in : node.input()) {
      auto it = consumers.find(in);
      if (it != consumers.end()) ++it->second;
    }
  }
  for (const auto& [name, count] : consumers) {
    EXPECT_EQ(count, 1) << "initializer " << name;
  }
  const double params = TotalParamBytes(*g);
  EXPECT_GE(params, initializer_bytes);
  EXPECT_LE(params, initializer_bytes * 1.01);

  EXPECT_GT(TotalFlops(*g), 0);
  for (const v1::Node& n : g->nodes()) {
    EXPECT_GT(n.output_bytes(), 0) << n.name();
  }
}

INSTANTIATE_TEST_SUITE_P(OnnxImport, SharedGraphTest,
                         ::testing::ValuesIn(kSharedGraphs),
                         [](const ::testing::TestParamInfo<SharedGraph>& info) {
                           return std::string(info.param.name);
                         });

TEST(OnnxImportSharedTest, LoadGraphFileNamesTheGraphAfterTheFile) {
  absl::StatusOr<v1::Graph> g = LoadGraphFile(GraphPath("resnet18"));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->name(), "resnet18");
  EXPECT_EQ(g->nodes_size(), 49);
}

TEST(OnnxImportSharedTest, Vgg16FirstFullyConnectedLayerHolds392MiB) {
  absl::StatusOr<v1::Graph> g = ImportOnnx(ReadGraph("vgg16"));
  ASSERT_TRUE(g.ok()) << g.status();
  const v1::Node* fc = FindNode(*g, "/classifier/classifier.0/Gemm");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->op(), "Gemm");
  // 25088 x 4096 fp32 weights (exactly 392 MiB) plus a 4096 bias.
  EXPECT_EQ(fc->param_bytes(), 25088.0 * 4096 * 4 + 4096 * 4);
  EXPECT_GE(fc->param_bytes() / kMiB, 392);
  EXPECT_EQ(fc->flops(), 2.0 * 25088 * 4096 + 4096);
  EXPECT_EQ(fc->output_bytes(), 4096 * 4);
  for (const v1::Node& n : g->nodes()) {
    EXPECT_LE(n.param_bytes(), fc->param_bytes()) << n.name();
  }
}

TEST(OnnxImportSharedTest, Gpt2TokenEmbeddingHolds147MiB) {
  absl::StatusOr<v1::Graph> g = ImportOnnx(ReadGraph("gpt2_small"));
  ASSERT_TRUE(g.ok()) << g.status();
  const v1::Node* tok = FindNode(*g, "/tok/Gather");
  ASSERT_NE(tok, nullptr);
  // 50257 x 768 fp32 embedding table, read by token ids from the input.
  EXPECT_EQ(tok->param_bytes(), 50257.0 * 768 * 4);
  EXPECT_NEAR(tok->param_bytes() / kMiB, 147.2, 0.1);
  EXPECT_THAT(tok->inputs(), ElementsAre("input"));
  EXPECT_EQ(tok->flops(), 0);                     // Data movement.
  EXPECT_EQ(tok->output_bytes(), 256 * 768 * 4);  // 256 tokens.
  // The 256 x 256 causal mask is a Constant folded into the Add that reads
  // it.
  const v1::Node* mask_add = FindNode(*g, "/enc/layers.0/self_attn/Add_2");
  ASSERT_NE(mask_add, nullptr);
  EXPECT_EQ(mask_add->param_bytes(), 256 * 256 * 4);
}

TEST(OnnxImportSharedTest, Resnet18FirstConvolution) {
  absl::StatusOr<v1::Graph> g = ImportOnnx(ReadGraph("resnet18"));
  ASSERT_TRUE(g.ok()) << g.status();
  const v1::Node* conv = FindNode(*g, "/conv1/Conv");
  ASSERT_NE(conv, nullptr);
  // 64 x 3 x 7 x 7 kernel with bias on a 224 x 224 image, stride 2: a
  // 64 x 112 x 112 output, 147 multiply-adds and a bias add per element.
  const double out = 64.0 * 112 * 112;
  EXPECT_EQ(conv->flops(), 2 * out * 147 + out);
  EXPECT_EQ(conv->param_bytes(), (64 * 3 * 7 * 7 + 64) * 4);
  EXPECT_EQ(conv->output_bytes(), out * 4);
  EXPECT_THAT(conv->inputs(), ElementsAre("input"));
  // 1.82 GMACs is the figure usually quoted for ResNet-18.
  EXPECT_NEAR(TotalFlops(*g) / 1e9, 3.64, 0.01);
}

TEST(OnnxImportSharedTest, BertAttentionShapesAndFoldedShapeArithmetic) {
  absl::StatusOr<v1::Graph> g = ImportOnnx(ReadGraph("bert_base"));
  ASSERT_TRUE(g.ok()) << g.status();
  // The q/k/v split: Slice bounds come from Shape -> Gather -> Add -> Div ->
  // Mul, folded; the file has no shape for the Slice outputs, so they are
  // inferred from the computed bounds: 128 tokens x 768 of the 2304.
  const v1::Node* slice = FindNode(*g, "/enc/layers.0/self_attn/Slice");
  ASSERT_NE(slice, nullptr);
  EXPECT_THAT(slice->inputs(), ElementsAre("/enc/layers.0/self_attn/Add"));
  EXPECT_EQ(slice->output_bytes(), 128 * 768 * 4);
  EXPECT_EQ(slice->param_bytes(), 3 * 8);  // starts, ends, axes: int64[1].
  EXPECT_EQ(FindNode(*g, "/enc/layers.0/self_attn/Shape"), nullptr);
  EXPECT_EQ(FindNode(*g, "/enc/layers.0/self_attn/Div"), nullptr);
  // Scores: 12 heads of (128 x 64) x (64 x 128); softmax over them.
  const v1::Node* scores = FindNode(*g, "/enc/layers.0/self_attn/MatMul_1");
  ASSERT_NE(scores, nullptr);
  EXPECT_EQ(scores->flops(), 2.0 * 12 * 128 * 128 * 64);
  EXPECT_EQ(scores->output_bytes(), 12 * 128 * 128 * 4);
  const v1::Node* softmax = FindNode(*g, "/enc/layers.0/self_attn/Softmax");
  ASSERT_NE(softmax, nullptr);
  EXPECT_EQ(softmax->flops(), 5.0 * 12 * 128 * 128);
  // The fused q/k/v projection: 128 x 768 by 768 x 2304.
  const v1::Node* qkv = FindNode(*g, "/enc/layers.0/self_attn/MatMul");
  ASSERT_NE(qkv, nullptr);
  EXPECT_EQ(qkv->flops(), 2.0 * 128 * 2304 * 768);
  EXPECT_EQ(qkv->param_bytes(), 768 * 2304 * 4);
}

// Without value_info the importer must reach the same graph by shape
// inference plus its own evaluation of shape arithmetic.
TEST(OnnxImportSharedTest, SameGraphWithoutValueInfo) {
  for (const char* name : {"resnet18", "inception_v3", "shufflenet_v2",
                           "bert_base", "gpt2_small"}) {
    SCOPED_TRACE(name);
    const std::string bytes = ReadGraph(name);
    onnx::ModelProto model = ParseModel(bytes);
    model.mutable_graph()->clear_value_info();
    absl::StatusOr<v1::Graph> with = ImportOnnx(bytes);
    absl::StatusOr<v1::Graph> without = ImportOnnx(model.SerializeAsString());
    ASSERT_TRUE(with.ok()) << with.status();
    ASSERT_TRUE(without.ok()) << without.status();
    EXPECT_EQ(with->SerializeAsString(), without->SerializeAsString());
  }
}

TEST(OnnxImportSharedTest, DynamicBatchTakesDefaultOrNamedValue) {
  onnx::ModelProto model = ParseModel(ReadGraph("resnet18"));
  auto* batch = model.mutable_graph()
                    ->mutable_input(0)
                    ->mutable_type()
                    ->mutable_tensor_type()
                    ->mutable_shape()
                    ->mutable_dim(0);
  batch->set_dim_param("batch");
  model.mutable_graph()
      ->mutable_output(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(0)
      ->set_dim_param("batch");
  model.mutable_graph()->clear_value_info();
  const std::string bytes = model.SerializeAsString();

  absl::StatusOr<v1::Graph> one = ImportOnnx(bytes);
  ASSERT_TRUE(one.ok()) << one.status();
  absl::StatusOr<v1::Graph> fixed = ImportOnnx(ReadGraph("resnet18"));
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  EXPECT_EQ(one->SerializeAsString(), fixed->SerializeAsString());

  OnnxImportOptions options;
  options.dim_values["batch"] = 4;
  absl::StatusOr<v1::Graph> four = ImportOnnx(bytes, options);
  ASSERT_TRUE(four.ok()) << four.status();
  ASSERT_EQ(four->nodes_size(), one->nodes_size());
  for (int v = 0; v < one->nodes_size(); ++v) {
    const v1::Node& a = one->nodes(v);
    const v1::Node& b = four->nodes(v);
    EXPECT_EQ(b.output_bytes(), 4 * a.output_bytes()) << a.name();
    EXPECT_EQ(b.flops(), 4 * a.flops()) << a.name();
    EXPECT_EQ(b.param_bytes(), a.param_bytes()) << a.name();
  }
}

// ---------------------------------------------------------------------------
// Hand-made models.

// ModelBuilder, Dim, AddInt and AddInts: tests/solver/onnx_model_builder.h.

// No value_info in these models unless said: shapes come from inference.

TEST(OnnxImportTest, MatMulWithWeightAndBatched) {
  ModelBuilder b;
  b.Input("x", {1, 128, 64});
  b.Input("q", {2, 8, 16, 4});
  b.Input("k", {2, 8, 4, 16});
  b.Weight("w", {64, 32});
  b.Node("MatMul", {"x", "w"}, {"y"}, "proj");
  b.Node("MatMul", {"q", "k"}, {"s"}, "scores");
  b.Output("y", {1, 128, 32});
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->name(), "tiny");
  EXPECT_THAT(g->inputs(), ElementsAre("x", "q", "k"));
  ASSERT_EQ(g->nodes_size(), 2);
  const v1::Node& proj = g->nodes(0);
  EXPECT_EQ(proj.name(), "proj");
  EXPECT_EQ(proj.op(), "MatMul");
  EXPECT_THAT(proj.inputs(), ElementsAre("x"));
  EXPECT_EQ(proj.flops(), 2.0 * 128 * 32 * 64);  // Multiply-add = 2 FLOPs.
  EXPECT_EQ(proj.param_bytes(), 64 * 32 * 4);
  EXPECT_EQ(proj.output_bytes(), 128 * 32 * 4);
  const v1::Node& scores = g->nodes(1);
  EXPECT_EQ(scores.flops(), 2.0 * (2 * 8 * 16 * 16) * 4);
  EXPECT_EQ(scores.param_bytes(), 0);
  EXPECT_EQ(scores.output_bytes(), 2 * 8 * 16 * 16 * 4);
}

TEST(OnnxImportTest, GemmWithTransposedWeightAndBias) {
  ModelBuilder b;
  b.Input("x", {1, 512});
  b.Weight("w", {1000, 512});
  b.Weight("bias", {1000});
  AddInt(b.Node("Gemm", {"x", "w", "bias"}, {"y"}, "fc"), "transB", 1);
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 1);
  EXPECT_EQ(g->nodes(0).flops(), 2.0 * 1000 * 512 + 1000);
  EXPECT_EQ(g->nodes(0).param_bytes(), (1000 * 512 + 1000) * 4);
  EXPECT_EQ(g->nodes(0).output_bytes(), 1000 * 4);
}

TEST(OnnxImportTest, GroupedConvolution) {
  ModelBuilder b;
  b.Input("x", {1, 32, 56, 56});
  b.Weight("w", {64, 8, 3, 3});  // group 4: 32 / 4 = 8 input channels each.
  b.Weight("bias", {64});
  onnx::NodeProto* conv = b.Node("Conv", {"x", "w", "bias"}, {"y"}, "conv");
  AddInt(conv, "group", 4);
  AddInts(conv, "kernel_shape", {3, 3});
  AddInts(conv, "pads", {1, 1, 1, 1});
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 1);
  const double out = 64.0 * 56 * 56;
  EXPECT_EQ(g->nodes(0).flops(), 2 * out * (8 * 3 * 3) + out);
  EXPECT_EQ(g->nodes(0).param_bytes(), (64 * 8 * 3 * 3 + 64) * 4);
  EXPECT_EQ(g->nodes(0).output_bytes(), out * 4);
}

TEST(OnnxImportTest, Pooling) {
  ModelBuilder b;
  b.Input("x", {1, 64, 112, 112});
  onnx::NodeProto* pool = b.Node("MaxPool", {"x"}, {"p"}, "maxpool");
  AddInts(pool, "kernel_shape", {3, 3});
  AddInts(pool, "strides", {2, 2});
  AddInts(pool, "pads", {1, 1, 1, 1});
  b.Node("GlobalAveragePool", {"p"}, {"g"}, "gap");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 2);
  const double pooled = 64.0 * 56 * 56;
  EXPECT_EQ(g->nodes(0).flops(), pooled * 9);  // One op per window element.
  EXPECT_EQ(g->nodes(0).output_bytes(), pooled * 4);
  EXPECT_EQ(g->nodes(1).flops(), pooled);  // One op per input element.
  EXPECT_EQ(g->nodes(1).output_bytes(), 64 * 4);
  EXPECT_THAT(g->nodes(1).inputs(), ElementsAre("maxpool"));
}

TEST(OnnxImportTest, SoftmaxAndElementwise) {
  ModelBuilder b;
  b.Input("s", {1, 12, 128, 128});
  b.Input("x", {1, 64, 56, 56});
  b.Weight("bias", {64, 1, 1});
  b.Node("Softmax", {"s"}, {"p"}, "softmax");
  b.Node("Add", {"x", "bias"}, {"a"}, "add");  // Broadcast bias.
  b.Node("Relu", {"a"}, {"r"}, "relu");
  b.Node("Erf", {"r"}, {"e"}, "erf");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 4);
  // Max, subtract, exp, sum, divide.
  EXPECT_EQ(g->nodes(0).flops(), 5.0 * 12 * 128 * 128);
  EXPECT_EQ(g->nodes(0).output_bytes(), 12 * 128 * 128 * 4);
  const double elements = 64.0 * 56 * 56;
  for (int v = 1; v < 4; ++v) {
    EXPECT_EQ(g->nodes(v).flops(), elements) << g->nodes(v).name();
    EXPECT_EQ(g->nodes(v).output_bytes(), elements * 4);
  }
  EXPECT_EQ(g->nodes(1).param_bytes(), 64 * 4);
}

TEST(OnnxImportTest, NormalisationTransposedConvEinsumAndDataMovement) {
  ModelBuilder b;
  b.model().mutable_opset_import(0)->set_version(17);  // LayerNormalization.
  b.Input("x", {1, 16, 8, 8});
  b.Input("t", {1, 10, 32});
  for (const char* w : {"scale", "shift", "mean", "var"}) b.Weight(w, {16});
  b.Weight("ln_scale", {32});
  b.Weight("ln_bias", {32});
  b.Weight("up", {16, 4, 2, 2});  // ConvTranspose: C_in x C_out x k x k.
  b.Weight("e", {32, 6});
  b.Node("BatchNormalization", {"x", "scale", "shift", "mean", "var"}, {"bn"},
         "bn");
  AddInt(
      b.Node("LayerNormalization", {"t", "ln_scale", "ln_bias"}, {"ln"}, "ln"),
      "axis", -1);
  onnx::NodeProto* up = b.Node("ConvTranspose", {"bn", "up"}, {"u"}, "up");
  AddInts(up, "kernel_shape", {2, 2});
  AddInts(up, "strides", {2, 2});
  onnx::NodeProto* es = b.Node("Einsum", {"ln", "e"}, {"o"}, "einsum");
  onnx::AttributeProto* eq = es->add_attribute();
  eq->set_name("equation");
  eq->set_type(onnx::AttributeProto::STRING);
  eq->set_s("bij,jk->bik");
  b.ValueInfo("o", {1, 10, 6});  // libonnx 1.12 infers only Einsum's rank.
  AddInts(b.Node("Transpose", {"u"}, {"ut"}, "transpose"), "perm",
          {0, 2, 3, 1});
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 5);
  EXPECT_EQ(g->nodes(0).flops(), 2.0 * 16 * 8 * 8);  // Scale and shift.
  EXPECT_EQ(g->nodes(0).param_bytes(), 4 * 16 * 4);
  EXPECT_EQ(g->nodes(1).flops(), 7.0 * 10 * 32);
  // Each input element meets the 4 x 2 x 2 weights of its channel.
  EXPECT_EQ(g->nodes(2).flops(), 2.0 * (16 * 8 * 8) * (4 * 2 * 2));
  EXPECT_EQ(g->nodes(2).output_bytes(), 4 * 16 * 16 * 4);
  EXPECT_EQ(g->nodes(3).flops(), 2.0 * 10 * 32 * 6);  // b*i*j*k points.
  EXPECT_EQ(g->nodes(4).flops(), 0);
  EXPECT_EQ(g->nodes(4).output_bytes(), 4 * 16 * 16 * 4);
}

TEST(OnnxImportTest, FoldsConstantAndIdentityOfInitializerPerConsumer) {
  ModelBuilder b;
  b.Input("x", {1, 64});
  b.Weight("gamma", {64});
  b.FloatConstant("c", {64});
  b.Node("Identity", {"gamma"}, {"gamma_id"}, "gamma_identity");
  b.Node("Mul", {"x", "c"}, {"m"}, "mul");
  b.Node("Add", {"m", "gamma_id"}, {"a"}, "add");
  b.Node("Sub", {"a", "c"}, {"s"}, "sub");  // c again: counted again.
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 3);
  EXPECT_EQ(FindNode(*g, "c_const"), nullptr);
  EXPECT_EQ(FindNode(*g, "gamma_identity"), nullptr);
  EXPECT_EQ(g->nodes(0).name(), "mul");
  EXPECT_THAT(g->nodes(0).inputs(), ElementsAre("x"));
  EXPECT_EQ(g->nodes(0).param_bytes(), 64 * 4);
  EXPECT_THAT(g->nodes(1).inputs(), ElementsAre("mul"));
  EXPECT_EQ(g->nodes(1).param_bytes(), 64 * 4);
  EXPECT_THAT(g->nodes(2).inputs(), ElementsAre("add"));
  EXPECT_EQ(g->nodes(2).param_bytes(), 64 * 4);
  EXPECT_EQ(TotalParamBytes(*g), 3 * 64 * 4);
}

TEST(OnnxImportTest, FoldsShapeGatherUnsqueezeConcatChain) {
  // y = x.reshape(-1, x.shape[2]) as torch exports it.
  ModelBuilder b;
  b.Input("x", {2, 8, 16});
  b.Node("Shape", {"x"}, {"shape"}, "shape");
  b.IntConstant("two", {}, {2});
  AddInt(b.Node("Gather", {"shape", "two"}, {"dim"}, "gather"), "axis", 0);
  b.IntConstant("zero", {1}, {0});
  b.Node("Unsqueeze", {"dim", "zero"}, {"dim1"}, "unsqueeze");
  b.IntConstant("minus_one", {1}, {-1});
  AddInt(b.Node("Concat", {"minus_one", "dim1"}, {"target"}, "concat"), "axis",
         0);
  b.Node("Reshape", {"x", "target"}, {"y"}, "reshape");
  b.Node("Relu", {"y"}, {"r"}, "relu");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 2);
  const v1::Node& reshape = g->nodes(0);
  EXPECT_EQ(reshape.name(), "reshape");
  EXPECT_THAT(reshape.inputs(), ElementsAre("x"));
  EXPECT_EQ(reshape.param_bytes(), 2 * 8);  // The int64[2] target shape.
  EXPECT_EQ(reshape.output_bytes(), 16 * 16 * 4);
  EXPECT_EQ(g->nodes(1).flops(), 16 * 16);  // Only known via the chain.
}

TEST(OnnxImportTest, FoldsConstantOfShape) {
  ModelBuilder b;
  b.Input("x", {4, 4});
  b.IntConstant("dims", {2}, {4, 4});
  onnx::NodeProto* fill = b.Node("ConstantOfShape", {"dims"}, {"ones"}, "cos");
  onnx::AttributeProto* v = fill->add_attribute();
  v->set_name("value");
  v->set_type(onnx::AttributeProto::TENSOR);
  v->mutable_t()->set_data_type(onnx::TensorProto::FLOAT);
  v->mutable_t()->add_dims(1);
  v->mutable_t()->add_float_data(1);
  b.Node("Add", {"x", "ones"}, {"y"}, "add");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 1);
  EXPECT_EQ(g->nodes(0).param_bytes(), 4 * 4 * 4);
}

TEST(OnnxImportTest, UsesDeclaredShapesAndDomainPrefix) {
  // libonnx knows no com.example ops: the declared shape is what counts.
  ModelBuilder b;
  onnx::OperatorSetIdProto* opset = b.model().add_opset_import();
  opset->set_domain("com.example");
  opset->set_version(1);
  b.Input("x", {1, 10});
  b.Node("Mystery", {"x"}, {"y"}, "m")->set_domain("com.example");
  b.ValueInfo("y", {1, 20});
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 1);
  EXPECT_EQ(g->nodes(0).op(), "com.example.Mystery");
  EXPECT_EQ(g->nodes(0).flops(), 20);  // Default rule: 1 per output element.
  EXPECT_EQ(g->nodes(0).output_bytes(), 20 * 4);
}

TEST(OnnxImportTest, GeneratesUniqueNamesForEmptyOrDuplicateNames) {
  ModelBuilder b;
  b.Input("x", {1, 4});
  b.Node("Relu", {"x"}, {"a"});            // #0, no name.
  b.Node("Relu", {"a"}, {"b"}, "dup");     // #1
  b.Node("Relu", {"b"}, {"c"}, "dup");     // #2, duplicate.
  b.Node("Relu", {"c"}, {"d"}, "x");       // #3, a graph input's name.
  b.Node("Relu", {"d"}, {"e"}, "Relu_0");  // #4, collides with #0's.
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<std::string> names;
  for (const v1::Node& n : g->nodes()) names.push_back(n.name());
  EXPECT_THAT(names, ElementsAre("Relu_0_2", "dup", "dup_2", "x_3", "Relu_0"));
  EXPECT_THAT(g->nodes(3).inputs(), ElementsAre("dup_2"));
}

TEST(OnnxImportTest, InitializerListedAsInputIsAConstant) {
  // Before IR version 4 initializers were also graph inputs.
  ModelBuilder b;
  b.model().set_ir_version(3);
  b.Input("x", {1, 8});
  b.Input("w", {8, 8});
  b.Weight("w", {8, 8});
  b.Node("MatMul", {"x", "w"}, {"y"}, "mm");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(g->inputs(), ElementsAre("x"));
  EXPECT_EQ(g->nodes(0).param_bytes(), 8 * 8 * 4);
}

TEST(OnnxImportTest, DynamicDimsResolveByNameElseDefault) {
  ModelBuilder b;
  b.Input("x", {"batch", "seq", 64});
  b.Weight("w", {64, 8});
  b.Node("MatMul", {"x", "w"}, {"y"}, "mm");
  b.ValueInfo("y", {"batch", "seq", 8});
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes(0).output_bytes(), 1 * 1 * 8 * 4);

  OnnxImportOptions options;
  options.dim_values["seq"] = 128;
  options.default_dim = 2;
  g = b.Import(options);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes(0).output_bytes(), 2 * 128 * 8 * 4);
  EXPECT_EQ(g->nodes(0).flops(), 2.0 * 2 * 128 * 8 * 64);

  options.dim_values["seq"] = 0;
  EXPECT_EQ(b.Import(options).status(),
            absl::InvalidArgumentError("dim_values['seq'] is 0; must be >= 1"));
}

TEST(OnnxImportTest, SubgraphReadsOfOuterTensorsAreInputs) {
  // An If whose branches read `r` (an activation) and `w` (a weight) from
  // the enclosing graph without listing them as inputs.
  ModelBuilder b;
  b.Input("x", {1, 8});
  b.Input("cond", {}, onnx::TensorProto::BOOL);
  b.Weight("w", {1, 8});
  b.Node("Relu", {"x"}, {"r"}, "relu");
  onnx::NodeProto* branch = b.Node("If", {"cond"}, {"y"}, "if");
  for (const char* name : {"then_branch", "else_branch"}) {
    onnx::AttributeProto* a = branch->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::GRAPH);
    onnx::GraphProto* sub = a->mutable_g();
    sub->set_name(name);
    onnx::NodeProto* add = sub->add_node();
    add->set_op_type("Add");
    add->add_input("r");
    add->add_input("w");
    add->add_output(absl::StrCat(name, "_out"));
    onnx::ValueInfoProto* out = sub->add_output();
    out->set_name(absl::StrCat(name, "_out"));
    out->mutable_type()->mutable_tensor_type()->set_elem_type(
        onnx::TensorProto::FLOAT);
  }
  b.ValueInfo("y", {1, 8});  // Control flow is not inferred node by node.
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 2);
  const v1::Node& node = g->nodes(1);
  EXPECT_EQ(node.op(), "If");
  EXPECT_THAT(node.inputs(), UnorderedElementsAre("cond", "relu"));
  EXPECT_EQ(node.param_bytes(), 8 * 4);  // w, once.
  EXPECT_EQ(node.flops(), 8);            // The larger branch: one Add.
  EXPECT_EQ(node.output_bytes(), 8 * 4);
}

// ---------------------------------------------------------------------------
// Broken input: INVALID_ARGUMENT with a message, never a crash.

const absl::Status kNotAModel = absl::InvalidArgumentError(
    "not an ONNX model: the bytes do not parse as an onnx.ModelProto "
    "(truncated or corrupt protobuf)");

TEST(OnnxImportErrorTest, TruncatedProtobuf) {
  const std::string bytes = ReadGraph("resnet18");
  ASSERT_GT(bytes.size(), 100u);
  EXPECT_EQ(ImportOnnx(bytes.substr(0, 100)).status(), kNotAModel);
  EXPECT_EQ(ImportOnnx(bytes.substr(0, bytes.size() - 1)).status(), kNotAModel);
}

TEST(OnnxImportErrorTest, RandomBytes) {
  std::mt19937 rng(42);
  std::string bytes(4096, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  EXPECT_EQ(ImportOnnx(bytes).status(), kNotAModel);
}

TEST(OnnxImportErrorTest, EmptyInputModelAndGraph) {
  EXPECT_EQ(
      ImportOnnx("").status(),
      absl::InvalidArgumentError("not an ONNX model: the input is empty"));
  onnx::ModelProto model;
  model.set_ir_version(8);
  EXPECT_EQ(ImportOnnx(model.SerializeAsString()).status(),
            absl::InvalidArgumentError("the ONNX model has no graph"));
  model.mutable_graph()->set_name("g");
  EXPECT_EQ(ImportOnnx(model.SerializeAsString()).status(),
            absl::InvalidArgumentError("the ONNX graph 'g' has no nodes"));
}

TEST(OnnxImportErrorTest, OnlyConstants) {
  ModelBuilder b;
  b.FloatConstant("c", {4});
  b.Output("c", {4});
  EXPECT_EQ(b.Import().status(),
            absl::InvalidArgumentError(
                "the ONNX graph computes only constants: no node is left to "
                "place after folding them"));
}

TEST(OnnxImportErrorTest, UndeterminableShapeNamesNodeAndTensor) {
  ModelBuilder b;
  b.Input("x", {1, 10});
  b.Node("Mystery", {"x"}, {"y"}, "m")->set_domain("com.example");
  EXPECT_EQ(b.Import().status(),
            absl::InvalidArgumentError(
                "node 'm' (com.example.Mystery): the shape of output 'y' "
                "cannot be determined: the file gives no shape (value_info) "
                "for it and ONNX shape inference could not infer it: libonnx "
                "knows no op 'Mystery' in domain 'com.example' (the model "
                "imports no opset for it)"));
}

TEST(OnnxImportErrorTest, LibonnxExceptionBecomesStatus) {
  // Relu takes one input: libonnx's schema check throws, the importer
  // reports it.
  ModelBuilder b;
  b.Input("x", {1, 10});
  b.Node("Relu", {"x", "x"}, {"y"}, "r");
  absl::Status s = b.Import().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              StartsWith("node 'r' (Relu): the shape of output 'y' cannot be "
                         "determined: the file gives no shape (value_info) "
                         "for it and ONNX shape inference could not infer "
                         "it: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("input size 2"));
}

TEST(OnnxImportErrorTest, DuplicateOutputName) {
  ModelBuilder b;
  b.Input("x", {1, 4});
  b.Node("Relu", {"x"}, {"y"}, "a");
  b.Node("Sigmoid", {"x"}, {"y"}, "b");
  EXPECT_EQ(b.Import().status(),
            absl::InvalidArgumentError("tensor 'y' is an output of both node "
                                       "'a' (Relu) and node 'b' (Sigmoid)"));
}

TEST(OnnxImportErrorTest, DanglingInputAndCycle) {
  ModelBuilder dangling;
  dangling.Input("x", {1, 4});
  dangling.Node("Add", {"x", "nowhere"}, {"y"}, "add");
  EXPECT_EQ(dangling.Import().status(),
            absl::InvalidArgumentError(
                "node 'add' (Add) reads tensor 'nowhere', which no node "
                "produces and which is neither a graph input nor an "
                "initializer"));

  ModelBuilder cycle;
  cycle.Input("x", {1, 4});
  cycle.Node("Add", {"x", "b"}, {"a"}, "first");
  cycle.Node("Relu", {"a"}, {"b"}, "second");
  EXPECT_EQ(cycle.Import().status(),
            absl::InvalidArgumentError(
                "the ONNX graph has a cycle through node 'first' (Add)"));
}

// Found by the importer's fuzzer (tests/fuzz/regressions/onnx_import): a
// BatchNormalization in training mode whose input's shape inference cannot
// read (a shape field corrupted), so the importer's own rules type all three
// outputs. Recording the first once moved the input types the other two
// were computed from (a use after free under ASan); the import must give
// y (2x3x4x5 floats) plus the running mean and variance (3 floats each).
TEST(OnnxImportRegressionTest, BatchNormTrainingOutputsAllComeFromRules) {
  absl::StatusOr<std::string> data =
      ReadFile(absl::StrCat(MCMPART_TEST_DATA_DIR,
                            "/../fuzz/regressions/onnx_import/"
                            "batchnorm-training-three-outputs-by-rule.onnx"));
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<v1::Graph> g = ImportOnnx(*data);
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 1);
  EXPECT_EQ(g->nodes(0).op(), "BatchNormalization");
  EXPECT_EQ(g->nodes(0).output_bytes(), (120 + 3 + 3) * 4);
}

// Found by the importer's fuzzer: a ConvTranspose whose W has a lower rank
// than X. libonnx 1.12's inference indexes W's dimensions by X's spatial
// rank (a read out of bounds, the process crashed); the importer checks it
// first and names the node.
TEST(OnnxImportRegressionTest, ConvTransposeWeightRankBelowInputRankIsAnError) {
  absl::StatusOr<std::string> data =
      ReadFile(absl::StrCat(MCMPART_TEST_DATA_DIR,
                            "/../fuzz/regressions/onnx_import/"
                            "convtranspose-weight-rank-below-input-rank.onnx"));
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<v1::Graph> g = ImportOnnx(*data);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(),
              ::testing::HasSubstr("node #0 (ConvTranspose)"));
  EXPECT_THAT(g.status().message(),
              ::testing::HasSubstr("W has rank 2 but X has rank 5"));
}

// Found by the importer's fuzzer (tests/fuzz/regressions/onnx_import/
// alexnet-zero-conv-or-pool-step.onnx): libonnx 1.12's convolution and
// pooling inference divides by strides, dilations and group, so a zero one
// killed the process with SIGFPE. The importer refuses it first.
TEST(OnnxImportRegressionTest, ZeroStridesDilationsOrGroupAreErrors) {
  struct Case {
    const char* op;
    const char* attribute;
    std::vector<int64_t> values;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"Conv",
            "strides",
            {1, 0},
            "Conv: attribute strides has 0 at "
            "position 1; each must be at least 1"},
           {"Conv", "dilations", {0, 1}, "dilations has 0 at position 0"},
           {"Conv",
            "group",
            {0},
            "Conv: attribute group is 0; must be at "
            "least 1"},
           {"MaxPool", "strides", {2, 0}, "MaxPool: attribute strides has 0"},
           {"AveragePool", "strides", {-1, 1}, "strides has -1"}}) {
    ModelBuilder b;
    b.Input("x", {1, 8, 16, 16});
    std::vector<std::string> inputs = {"x"};
    if (std::string(c.op) == "Conv") {
      b.Weight("w", {8, 8, 3, 3});
      inputs.push_back("w");
    }
    onnx::NodeProto* n = b.Node(c.op, inputs, {"y"}, "node");
    AddInts(n, "kernel_shape", {3, 3});
    if (std::string(c.attribute) == "group") {
      AddInt(n, "group", c.values[0]);
    } else {
      AddInts(n, c.attribute, c.values);
    }
    absl::StatusOr<v1::Graph> g = b.Import();
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument)
        << c.op << " " << c.attribute;
    EXPECT_THAT(g.status().message(), ::testing::HasSubstr(c.message));
  }
  absl::StatusOr<std::string> data = ReadFile(absl::StrCat(
      MCMPART_TEST_DATA_DIR,
      "/../fuzz/regressions/onnx_import/alexnet-zero-conv-or-pool-step.onnx"));
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(ImportOnnx(*data).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mcmpart
