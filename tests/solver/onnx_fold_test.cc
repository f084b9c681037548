// The importer's evaluation of shape arithmetic, its own shape rules, the
// messages for shapes known only at run time, and the FLOPs of If and Loop
// bodies, on hand-made models with hand-worked expectations.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "onnx/onnx_pb.h"
#include "solver/graph_io.h"
#include "solver/onnx_import.h"
#include "tests/solver/onnx_model_builder.h"

namespace mcmpart {
namespace {

using ::testing::ElementsAre;
using testing_onnx::AddInt;
using testing_onnx::AddInts;
using testing_onnx::ModelBuilder;

std::vector<std::string> NodeNames(const v1::Graph& g) {
  std::vector<std::string> names;
  for (const v1::Node& n : g.nodes()) names.push_back(n.name());
  return names;
}

// The shape probe: the int64 vector `t` (a computed shape) expands the
// scalar input `one` to shape t, and a MatMul by a [t_last x 7] weight
// checks t's last entry (libonnx rejects a mismatch). Two kept nodes,
// "expand" (4 x prod(t) output bytes) and "probe" (4 x prod(t) / t_last x
// 7).
void AddProbe(ModelBuilder* b, const std::string& t, int64_t t_last) {
  b->Input("probe_one", {1});
  b->Node("Expand", {"probe_one", t}, {"probe_e"}, "expand");
  b->Weight("w_probe", {t_last, 7});
  b->Node("MatMul", {"probe_e", "w_probe"}, {"probe_m"}, "probe");
}

// Imports and checks that only the probe is left, with shape `dims`.
void ExpectProbeShape(ModelBuilder* b, const std::vector<int64_t>& dims) {
  absl::StatusOr<v1::Graph> g = b->Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(NodeNames(*g), ElementsAre("expand", "probe"));
  double n = 1;
  for (int64_t d : dims) n *= static_cast<double>(d);
  EXPECT_EQ(g->nodes(0).output_bytes(), 4 * n);
  EXPECT_EQ(g->nodes(1).output_bytes(), 4 * n / dims.back() * 7);
}

// ---------------------------------------------------------------------------
// Folded ops, one or a few per model.

TEST(OnnxFoldTest, ShapeGatherUnsqueezeConcatOfAnyAxis) {
  // t = Concat(Unsqueeze(Gather(Shape(x), 2)), Shape(x)[0:2]) on axis 0 =
  // [16, 2, 8] for x of [2, 8, 16].
  ModelBuilder b;
  b.Input("x", {2, 8, 16});
  b.Node("Shape", {"x"}, {"s"}, "shape");
  b.IntConstant("two", {}, {2});
  b.Node("Gather", {"s", "two"}, {"d2"}, "gather");
  b.IntConstant("zero", {1}, {0});
  b.Node("Unsqueeze", {"d2", "zero"}, {"d2v"}, "unsqueeze");
  b.IntConstant("start", {1}, {0});
  b.IntConstant("end", {1}, {2});
  b.Node("Slice", {"s", "start", "end"}, {"head"}, "slice");
  AddInt(b.Node("Concat", {"d2v", "head"}, {"t"}, "concat"), "axis", 0);
  AddProbe(&b, "t", 8);
  ExpectProbeShape(&b, {16, 2, 8});
}

TEST(OnnxFoldTest, SizeDivModMulSubNegAdd) {
  // x has 2 x 3 x 10 = 60 elements. t = [60 / 7, 60 % 7, -(3 * 2 - 10) + 1]
  // = [8, 4, 5]; integer Div truncates, Mod takes the divisor's sign.
  ModelBuilder b;
  b.Input("x", {2, 3, 10});
  b.Node("Size", {"x"}, {"n"}, "size");
  b.IntConstant("seven", {}, {7});
  b.Node("Div", {"n", "seven"}, {"q"}, "div");
  b.Node("Mod", {"n", "seven"}, {"r"}, "mod");
  b.IntConstant("three", {}, {3});
  b.IntConstant("two", {}, {2});
  b.IntConstant("ten", {}, {10});
  b.IntConstant("one", {}, {1});
  b.Node("Mul", {"three", "two"}, {"six"}, "mul");
  b.Node("Sub", {"six", "ten"}, {"minus4"}, "sub");
  b.Node("Neg", {"minus4"}, {"four"}, "neg");
  b.Node("Add", {"four", "one"}, {"five"}, "add");
  b.IntConstant("axis0", {1}, {0});
  for (const char* s : {"q", "r", "five"}) {
    b.Node("Unsqueeze", {s, "axis0"}, {absl::StrCat(s, "_v")},
           absl::StrCat("unsqueeze_", s));
  }
  AddInt(b.Node("Concat", {"q_v", "r_v", "five_v"}, {"t"}, "concat"), "axis",
         0);
  AddProbe(&b, "t", 5);
  ExpectProbeShape(&b, {8, 4, 5});
}

TEST(OnnxFoldTest, NegativeModuloTakesTheDivisorsSign) {
  // Python's -3 % 5 = 2 (fmod = 0); C's fmod(-3, 5) = -3, so |.| = 3.
  ModelBuilder b;
  b.IntConstant("a", {2}, {-3, 9});
  b.IntConstant("m", {}, {5});
  b.Node("Mod", {"a", "m"}, {"t_raw"}, "mod");  // [2, 4]
  onnx::NodeProto* c = b.Node("Mod", {"a", "m"}, {"c_raw"}, "cmod");
  AddInt(c, "fmod", 1);                    // [-3, 4]
  b.Node("Abs", {"c_raw"}, {"c"}, "abs");  // [3, 4]
  AddInt(b.Node("Concat", {"t_raw", "c"}, {"t"}, "concat"), "axis", 0);
  AddProbe(&b, "t", 4);
  ExpectProbeShape(&b, {2, 4, 3, 4});
}

TEST(OnnxFoldTest, EqualWhereReduceProdSqueezeCast) {
  // torch's view(-1) chain: t = Where(Equal(s, 1), [9, 9], s) of s = [1, 6]
  // = [9, 6]; then [ReduceProd(t)] = [54] (keepdims), Squeezed to a scalar
  // and Unsqueezed back, Cast from int32.
  ModelBuilder b;
  b.IntConstant("s", {2}, {1, 6});
  b.IntConstant("one", {}, {1});
  b.IntConstant("nine", {2}, {9, 9});
  b.Node("Equal", {"s", "one"}, {"is1"}, "equal");
  b.Node("Where", {"is1", "nine", "s"}, {"w"}, "where");
  b.Node("ReduceProd", {"w"}, {"p"}, "reduceprod");  // [54]
  b.IntConstant("axis0", {1}, {0});
  b.Node("Squeeze", {"p", "axis0"}, {"p0"}, "squeeze");
  AddInt(b.Node("Cast", {"p0"}, {"p32"}, "to_int32"), "to",
         onnx::TensorProto::INT32);
  AddInt(b.Node("Cast", {"p32"}, {"p64"}, "to_int64"), "to",
         onnx::TensorProto::INT64);
  b.Node("Unsqueeze", {"p64", "axis0"}, {"pv"}, "unsqueeze");
  AddInt(b.Node("Concat", {"w", "pv"}, {"t"}, "concat"), "axis", 0);
  AddProbe(&b, "t", 54);
  ExpectProbeShape(&b, {9, 6, 54});
}

TEST(OnnxFoldTest, RangeConstantOfShapeAndFloatArithmetic) {
  // Range(2, 11, 3) = [2, 5, 8]; ConstantOfShape([3]) of 1 = [1, 1, 1];
  // their sum is [3, 6, 9]. A float detour as torch writes for
  // ceil(9 / 2): Cast(9) / 2.0 = 4.5, Ceil = 5, Cast back to int64.
  ModelBuilder b;
  b.IntConstant("start", {}, {2});
  b.IntConstant("limit", {}, {11});
  b.IntConstant("delta", {}, {3});
  b.Node("Range", {"start", "limit", "delta"}, {"r"}, "range");
  b.IntConstant("len", {1}, {3});
  onnx::NodeProto* fill = b.Node("ConstantOfShape", {"len"}, {"ones"}, "cos");
  onnx::AttributeProto* v = fill->add_attribute();
  v->set_name("value");
  v->set_type(onnx::AttributeProto::TENSOR);
  v->mutable_t()->set_data_type(onnx::TensorProto::INT64);
  v->mutable_t()->add_dims(1);
  v->mutable_t()->add_int64_data(1);
  b.Node("Add", {"r", "ones"}, {"sum"}, "add");
  b.IntConstant("nine", {1}, {9});
  AddInt(b.Node("Cast", {"nine"}, {"nine_f"}, "to_float"), "to",
         onnx::TensorProto::FLOAT);
  onnx::NodeProto* two = b.Node("Constant", {}, {"two_f"}, "two_f_const");
  onnx::AttributeProto* two_value = two->add_attribute();
  two_value->set_name("value_float");
  two_value->set_type(onnx::AttributeProto::FLOAT);
  two_value->set_f(2.0f);
  b.Node("Div", {"nine_f", "two_f"}, {"half"}, "div");
  b.Node("Ceil", {"half"}, {"up"}, "ceil");
  AddInt(b.Node("Cast", {"up"}, {"five"}, "to_int"), "to",
         onnx::TensorProto::INT64);
  AddInt(b.Node("Concat", {"sum", "five"}, {"t"}, "concat"), "axis", 0);
  AddProbe(&b, "t", 5);
  ExpectProbeShape(&b, {3, 6, 9, 5});
}

TEST(OnnxFoldTest, TwoDimensionalSliceTransposeAndReshape) {
  // torch's F.pad export reverses the (begin, end) pairs: p = [0, 1, 0, 2,
  // 0, 0, 0, 0] Reshape [-1, 2] -> [[0,1],[0,2],[0,0],[0,0]], Slice with
  // step -1 over axis 0 -> [[0,0],[0,0],[0,2],[0,1]], Transpose ->
  // [[0,0,0,0],[0,0,2,1]], Reshape [-1]: ONNX pads [0,0,0,0, 0,0,2,1] for
  // a [1, 3, 4, 5] input: a [1, 3, 6, 6] output.
  ModelBuilder b;
  b.Input("x", {1, 3, 4, 5});
  b.IntConstant("p", {8}, {0, 1, 0, 2, 0, 0, 0, 0});
  b.IntConstant("pairs", {2}, {-1, 2});
  b.Node("Reshape", {"p", "pairs"}, {"p2"}, "reshape_pairs");
  b.IntConstant("s_start", {1}, {-1});
  b.IntConstant("s_end", {1}, {-std::numeric_limits<int64_t>::max()});
  b.IntConstant("s_axes", {1}, {0});
  b.IntConstant("s_steps", {1}, {-1});
  b.Node("Slice", {"p2", "s_start", "s_end", "s_axes", "s_steps"}, {"rev"},
         "slice");
  AddInts(b.Node("Transpose", {"rev"}, {"tr"}, "transpose"), "perm", {1, 0});
  b.IntConstant("flat", {1}, {-1});
  b.Node("Reshape", {"tr", "flat"}, {"pads"}, "reshape_flat");
  b.Node("Pad", {"x", "pads"}, {"y"}, "pad");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(NodeNames(*g), ElementsAre("pad"));
  EXPECT_EQ(g->nodes(0).output_bytes(), 1 * 3 * 6 * 6 * 4);
  EXPECT_EQ(g->nodes(0).param_bytes(), 8 * 8);  // The folded pads.
}

TEST(OnnxFoldTest, PositionIdsFromRangeGatherAnEmbedding) {
  // Range(0, 16) position ids Unsqueezed to [1, 16] index a [100 x 32]
  // table; the Gather stays (a float result from a weight), the Range goes.
  ModelBuilder b;
  b.Input("x", {1, 16, 32});
  b.IntConstant("zero", {}, {0});
  b.IntConstant("sixteen", {}, {16});
  b.IntConstant("one", {}, {1});
  b.Node("Range", {"zero", "sixteen", "one"}, {"ids"}, "range");
  b.IntConstant("axis0", {1}, {0});
  b.Node("Unsqueeze", {"ids", "axis0"}, {"ids2"}, "unsqueeze");
  b.Weight("table", {100, 32});
  b.Node("Gather", {"table", "ids2"}, {"pos"}, "embed");
  b.Node("Add", {"x", "pos"}, {"y"}, "add");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT(NodeNames(*g), ElementsAre("embed", "add"));
  EXPECT_EQ(g->nodes(0).param_bytes(), 100 * 32 * 4 + 16 * 8);
  EXPECT_EQ(g->nodes(0).output_bytes(), 16 * 32 * 4);
  EXPECT_EQ(g->nodes(1).flops(), 16 * 32);
}

// ---------------------------------------------------------------------------
// A Swin-style shifted-window block: the pad amounts and reshape targets are
// computed from shapes, as torch 1.13 exports torchvision's swin_t.

TEST(OnnxFoldTest, WindowAttentionBlockFoldsItsShapeArithmetic) {
  // x: B=1, H=10, W=13, C=8; window 7. pad_b = (7 - 10 % 7) % 7 = 4, pad_r
  // = (7 - 13 % 7) % 7 = 1: padded to 14 x 14, 2 x 2 windows of 49 tokens.
  ModelBuilder b;
  b.Input("x", {1, 10, 13, 8});
  b.Node("Shape", {"x"}, {"s"}, "shape");
  b.IntConstant("i1", {}, {1});
  b.IntConstant("i2", {}, {2});
  b.IntConstant("i3", {}, {3});
  b.IntConstant("ws", {}, {7});
  b.Node("Gather", {"s", "i1"}, {"h"}, "gather_h");
  b.Node("Gather", {"s", "i2"}, {"w"}, "gather_w");
  for (const char* d : {"h", "w"}) {
    const std::string n(d);
    b.Node("Mod", {n, "ws"}, {n + "_m"}, "mod1_" + n);
    b.Node("Sub", {"ws", n + "_m"}, {n + "_s"}, "sub_" + n);
    b.Node("Mod", {n + "_s", "ws"}, {n + "_p"}, "mod2_" + n);
    AddInt(b.Node("Cast", {n + "_p"}, {n + "_c"}, "cast_" + n), "to",
           onnx::TensorProto::INT64);
  }
  b.IntConstant("axis0", {1}, {0});
  b.Node("Unsqueeze", {"h_c", "axis0"}, {"pb"}, "unsqueeze_pb");
  b.Node("Unsqueeze", {"w_c", "axis0"}, {"pr"}, "unsqueeze_pr");
  b.IntConstant("zeros5", {5}, {0, 0, 0, 0, 0});
  b.IntConstant("zero1", {1}, {0});
  AddInt(b.Node("Concat", {"zeros5", "pb", "pr", "zero1"}, {"pads"},
                "concat_pads"),
         "axis", 0);
  b.Node("Pad", {"x", "pads"}, {"xp"}, "pad");
  // view(B, Hp / 7, 7, Wp / 7, 7, C) from the padded shape.
  b.Node("Shape", {"xp"}, {"sp"}, "shape_p");
  b.IntConstant("i0", {}, {0});
  std::vector<std::string> parts;
  for (const auto& [idx, div] : std::vector<std::pair<std::string, bool>>{
           {"i0", false}, {"i1", true}, {"i2", true}, {"i3", false}}) {
    const std::string g = "g_" + idx;
    b.Node("Gather", {"sp", idx}, {g}, "gather_p_" + idx);
    std::string value = g;
    if (div) {
      b.Node("Div", {g, "ws"}, {g + "_d"}, "div_" + idx);
      value = g + "_d";
    }
    b.Node("Unsqueeze", {value, "axis0"}, {value + "_u"}, "unsq_" + idx);
    parts.push_back(value + "_u");
  }
  b.IntConstant("seven", {1}, {7});
  AddInt(b.Node("Concat",
                {parts[0], parts[1], "seven", parts[2], "seven", parts[3]},
                {"target"}, "concat_target"),
         "axis", 0);
  b.Node("Reshape", {"xp", "target"}, {"win"}, "view");
  AddInts(b.Node("Transpose", {"win"}, {"wt"}, "permute"), "perm",
          {0, 1, 3, 2, 4, 5});
  b.IntConstant("tokens", {3}, {-1, 49, 8});
  b.Node("Reshape", {"wt", "tokens"}, {"windows"}, "windows");
  b.Weight("qkv", {8, 24});
  b.Node("MatMul", {"windows", "qkv"}, {"q"}, "qkv");
  const int onnx_nodes = b.graph()->node_size();
  ASSERT_EQ(onnx_nodes, 41);

  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  // 41 ONNX nodes: 10 Constants and 26 shape nodes (Shape, Gather, Mod,
  // Sub, Cast, Unsqueeze, Concat, Div) fold; 5 remain.
  EXPECT_THAT(NodeNames(*g),
              ElementsAre("pad", "view", "permute", "windows", "qkv"));
  EXPECT_EQ(g->nodes(0).output_bytes(), 14 * 14 * 8 * 4);
  EXPECT_EQ(g->nodes(0).param_bytes(), 8 * 8);  // int64[8] pads.
  EXPECT_EQ(g->nodes(1).output_bytes(), 14 * 14 * 8 * 4);
  EXPECT_EQ(g->nodes(1).param_bytes(), 6 * 8);  // int64[6] target.
  EXPECT_EQ(g->nodes(3).output_bytes(), 4 * 49 * 8 * 4);
  EXPECT_EQ(g->nodes(4).flops(), 2.0 * 4 * 49 * 24 * 8);
  EXPECT_EQ(g->nodes(4).output_bytes(), 4 * 49 * 24 * 4);
}

// ---------------------------------------------------------------------------
// Bounds: evaluation is limited in size; what is not evaluated stays
// unknown, with a message.

TEST(OnnxFoldTest, HugeRangeIsNotEvaluated) {
  // Range(0, 2^40) would be 8 TiB of int64: not evaluated, so the Reshape
  // target it feeds stays unknown.
  ModelBuilder b;
  b.Input("x", {4});
  b.IntConstant("zero", {}, {0});
  b.IntConstant("big", {}, {int64_t{1} << 40});
  b.IntConstant("one", {}, {1});
  b.Node("Range", {"zero", "big", "one"}, {"r"}, "range");
  b.Node("Reshape", {"x", "r"}, {"y"}, "reshape");
  EXPECT_EQ(b.Import().status(),
            absl::InvalidArgumentError(
                "node 'reshape' (Reshape): the shape of output 'y' cannot be "
                "determined: its output shape depends on the value of input "
                "#1, 'r', a constant whose value the importer does not "
                "compute (made by node 'range' (Range)); declare it in the "
                "file: a value_info for 'y' with its shape (a symbolic "
                "dimension takes its value from --dim NAME=N)"));
}

// ---------------------------------------------------------------------------
// Shapes known only at run time.

TEST(OnnxFoldTest, NonZeroNeedsADeclaredShape) {
  ModelBuilder b;
  b.Input("x", {3, 4});
  b.Node("NonZero", {"x"}, {"idx"}, "nz");
  b.Node("Transpose", {"idx"}, {"t"}, "transpose");
  EXPECT_EQ(b.Import().status(),
            absl::InvalidArgumentError(
                "node 'nz' (NonZero): the shape of output 'idx' cannot be "
                "determined: NonZero's output shape depends on the values in "
                "its input, which are known only at run time; declare it in "
                "the file: a value_info for 'idx' with its shape (a symbolic "
                "dimension takes its value from --dim NAME=N)"));
  // Declared with a symbolic dimension, --dim sets it.
  b.ValueInfo("idx", {2, "nnz"}, onnx::TensorProto::INT64);
  OnnxImportOptions options;
  options.dim_values["nnz"] = 5;
  absl::StatusOr<v1::Graph> g = b.Import(options);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes(0).output_bytes(), 2 * 5 * 8);
  EXPECT_EQ(g->nodes(1).output_bytes(), 5 * 2 * 8);
}

TEST(OnnxFoldTest, ReshapeToAShapeComputedFromActivations) {
  ModelBuilder b;
  b.Input("x", {2, 6});
  b.Input("k", {2}, onnx::TensorProto::INT64);
  b.Node("Relu", {"k"}, {"target"}, "relu");
  b.Node("Reshape", {"x", "target"}, {"y"}, "reshape");
  EXPECT_EQ(b.Import().status(),
            absl::InvalidArgumentError(
                "node 'reshape' (Reshape): the shape of output 'y' cannot be "
                "determined: its output shape depends on the value of input "
                "#1, 'target', which node 'relu' (Relu) computes from "
                "activations at run time; declare it in the file: a "
                "value_info for 'y' with its shape (a symbolic dimension "
                "takes its value from --dim NAME=N)"));
}

// ---------------------------------------------------------------------------
// The importer's own shape rules.

TEST(OnnxShapeRuleTest, Opset9DropoutMaskHasTheInputsShapeAndType) {
  ModelBuilder b;
  b.model().mutable_opset_import(0)->set_version(9);
  b.Input("x", {1, 64});
  onnx::NodeProto* d = b.Node("Dropout", {"x"}, {"y", "mask"}, "dropout");
  onnx::AttributeProto* ratio = d->add_attribute();
  ratio->set_name("ratio");
  ratio->set_type(onnx::AttributeProto::FLOAT);
  ratio->set_f(0.5f);
  b.Node("Relu", {"y"}, {"r"}, "relu");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->nodes_size(), 2);
  EXPECT_EQ(g->nodes(0).flops(), 0);
  EXPECT_EQ(g->nodes(0).output_bytes(), 64 * 4 + 64 * 4);  // Float mask.
  EXPECT_EQ(g->nodes(1).flops(), 64);
}

TEST(OnnxShapeRuleTest, Opset10DropoutMaskIsBool) {
  ModelBuilder b;
  b.model().mutable_opset_import(0)->set_version(10);
  b.Input("x", {1, 64});
  b.Node("Dropout", {"x"}, {"y", "mask"}, "dropout");
  absl::StatusOr<v1::Graph> g = b.Import();
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->nodes(0).output_bytes(), 64 * 4 + 64 * 1);
}

// ---------------------------------------------------------------------------
// Subgraph bodies.

// A subgraph attribute `name` of node n, with outputs typed by element type
// only (as exporters write them).
onnx::GraphProto* Body(onnx::NodeProto* n, const std::string& name) {
  onnx::AttributeProto* a = n->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::GRAPH);
  a->mutable_g()->set_name(name);
  return a->mutable_g();
}

onnx::NodeProto* BodyNode(onnx::GraphProto* g, const std::string& op,
                          const std::vector<std::string>& inputs,
                          const std::string& output) {
  onnx::NodeProto* n = g->add_node();
  n->set_op_type(op);
  n->set_name(output + "_node");
  for (const std::string& in : inputs) n->add_input(in);
  n->add_output(output);
  return n;
}

void BodyValue(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>* list,
               const std::string& name, int32_t type) {
  onnx::ValueInfoProto* v = list->Add();
  v->set_name(name);
  v->mutable_type()->mutable_tensor_type()->set_elem_type(type);
}

TEST(OnnxSubgraphTest, IfCostsItsLargerBranchAndTypesItsOutput) {
  // then: [1 x 8] x [8 x 4] MatMul = 64 FLOPs; else: Relu of a [1 x 4]
  // activation = 4. No value_info for the If's output: both branches give
  // [1, 4].
  ModelBuilder b;
  b.Input("x", {1, 8});
  b.Input("z", {1, 4});
  b.Input("cond", {}, onnx::TensorProto::BOOL);
  b.Weight("w", {8, 4});
  onnx::NodeProto* node = b.Node("If", {"cond"}, {"y"}, "if");
  onnx::GraphProto* then_g = Body(node, "then_branch");
  BodyNode(then_g, "MatMul", {"x", "w"}, "t");
  BodyValue(then_g->mutable_output(), "t", onnx::TensorProto::FLOAT);
  onnx::GraphProto* else_g = Body(node, "else_branch");
  BodyNode(else_g, "Relu", {"z"}, "e");
  BodyValue(else_g->mutable_output(), "e", onnx::TensorProto::FLOAT);
  b.Node("Relu", {"y"}, {"r"}, "after");
  absl::StatusOr<OnnxImportResult> result = ImportOnnxWithWarnings(b.Bytes());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings, ElementsAre());
  const v1::Graph& g = result->graph;
  ASSERT_EQ(g.nodes_size(), 2);
  EXPECT_EQ(g.nodes(0).flops(), 2.0 * 4 * 8);
  EXPECT_EQ(g.nodes(0).output_bytes(), 4 * 4);
  EXPECT_EQ(g.nodes(0).param_bytes(), 8 * 4 * 4);  // w, read by the body.
  EXPECT_EQ(g.nodes(1).flops(), 4);
}

// Loop: M (trip count), cond, carried v [1 x 4]; body v + w, Relu of it as
// a scan output.
ModelBuilder LoopModel(bool constant_trips) {
  ModelBuilder b;
  b.Input("v0", {1, 4});
  b.Weight("w", {1, 4});
  if (constant_trips) {
    b.IntConstant("m", {}, {5});
  } else {
    b.Input("m", {}, onnx::TensorProto::INT64);
  }
  onnx::NodeProto* loop =
      b.Node("Loop", {"m", "", "v0"}, {"v", "scan"}, "loop");
  onnx::GraphProto* body = Body(loop, "body");
  BodyValue(body->mutable_input(), "iter", onnx::TensorProto::INT64);
  BodyValue(body->mutable_input(), "cond_in", onnx::TensorProto::BOOL);
  BodyValue(body->mutable_input(), "v_in", onnx::TensorProto::FLOAT);
  BodyNode(body, "Identity", {"cond_in"}, "cond_out");
  BodyNode(body, "Add", {"v_in", "w"}, "v_out");
  BodyNode(body, "Relu", {"v_out"}, "s_out");
  BodyValue(body->mutable_output(), "cond_out", onnx::TensorProto::BOOL);
  BodyValue(body->mutable_output(), "v_out", onnx::TensorProto::FLOAT);
  BodyValue(body->mutable_output(), "s_out", onnx::TensorProto::FLOAT);
  return b;
}

TEST(OnnxSubgraphTest, LoopWithConstantTripCountMultipliesItsBody) {
  ModelBuilder b = LoopModel(/*constant_trips=*/true);
  absl::StatusOr<OnnxImportResult> result = ImportOnnxWithWarnings(b.Bytes());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings, ElementsAre());
  ASSERT_EQ(result->graph.nodes_size(), 1);
  const v1::Node& loop = result->graph.nodes(0);
  // 5 iterations of Add (4) and Relu (4); Identity 0.
  EXPECT_EQ(loop.flops(), 5 * (4 + 4));
  // Final v [1, 4] and the scan output stacked to [5, 1, 4].
  EXPECT_EQ(loop.output_bytes(), 4 * 4 + 5 * 4 * 4);
  EXPECT_EQ(loop.param_bytes(), 8 + 4 * 4);  // m (int64) and w.
  EXPECT_THAT(loop.inputs(), ElementsAre("v0"));
}

TEST(OnnxSubgraphTest, LoopWithRuntimeTripCountWarns) {
  ModelBuilder b = LoopModel(/*constant_trips=*/false);
  b.ValueInfo("scan", {"steps", 1, 4});
  OnnxImportOptions options;
  options.dim_values["steps"] = 3;
  absl::StatusOr<OnnxImportResult> result =
      ImportOnnxWithWarnings(b.Bytes(), options);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings,
              ElementsAre("node 'loop' (Loop): the FLOPs of its body are not "
                          "counted (the node counts 0): its trip count "
                          "(input M, the graph input 'm', whose value is "
                          "known only at run time) is not a constant"));
  const v1::Node& loop = result->graph.nodes(0);
  EXPECT_EQ(loop.flops(), 0);
  EXPECT_EQ(loop.output_bytes(), 4 * 4 + 3 * 4 * 4);
  EXPECT_THAT(loop.inputs(), ElementsAre("m", "v0"));

  // Loading the file hands the same warning on, naming the file.
  const std::string path = ::testing::TempDir() + "/loop_runtime_trips.onnx";
  ASSERT_TRUE(WriteFile(path, b.Bytes()).ok());
  std::vector<std::string> warnings;
  absl::StatusOr<v1::Graph> loaded = LoadGraphFile(path, options, &warnings);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], path + ": " + result->warnings[0]);
}

// ---------------------------------------------------------------------------
// Models from the ONNX model zoo and torchvision, weight-stripped.

std::string ZooPath(const std::string& name) {
  return absl::StrCat(MCMPART_TEST_DATA_DIR, "/graphs/zoo/", name, ".onnx");
}

struct ZooModel {
  const char* name;
  int onnx_nodes;
  // mcmpart nodes: the ONNX nodes less the folded ones.
  int nodes;
};

// The opset-9 "light" models build each weight as ConstantOfShape of its
// shape (alexnet 16, inception_v1 93, squeezenet 39, vgg19 36), all folded,
// as is inception_v1's Reshape of its classifier weight; Dropout's mask is
// typed by the importer's rule.
// swin_t: torchvision 0.14's, exported by torch 1.13 at opset 13 (6,623
// nodes) with its float weights stripped: 2,759 Constants and 2,827 nodes of
// shape arithmetic (every Shape, Range, Mod, ConstantOfShape, ...) fold;
// what stays includes the float shift masks built from shapes (ScatterND,
// Equal, Where), which are not integer arithmetic.
constexpr ZooModel kZooModels[] = {
    {"light_bvlc_alexnet", 40, 24}, {"light_inception_v1", 237, 143},
    {"light_squeezenet", 105, 66},  {"light_vgg19", 82, 46},
    {"swin_t", 6623, 1037},
};

class ZooModelTest : public ::testing::TestWithParam<ZooModel> {};

TEST_P(ZooModelTest, Imports) {
  const ZooModel& expected = GetParam();
  absl::StatusOr<std::string> bytes = ReadFile(ZooPath(expected.name));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  onnx::ModelProto model;
  ASSERT_TRUE(model.ParseFromString(*bytes));
  EXPECT_EQ(model.graph().node_size(), expected.onnx_nodes);
  absl::StatusOr<OnnxImportResult> result = ImportOnnxWithWarnings(*bytes);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(result->warnings, ElementsAre());
  EXPECT_EQ(result->graph.nodes_size(), expected.nodes);
  absl::StatusOr<Graph> ir = Graph::FromProto(result->graph);
  EXPECT_TRUE(ir.ok()) << ir.status();
  // No shape computation is left to place.
  for (const v1::Node& n : result->graph.nodes()) {
    for (const char* op :
         {"Constant", "Shape", "Size", "Range", "ConstantOfShape", "Mod"}) {
      EXPECT_NE(n.op(), op) << n.name();
    }
  }
}

TEST(OnnxZooTest, SwinTinyCostsAndWindowPadding) {
  absl::StatusOr<std::string> bytes = ReadFile(ZooPath("swin_t"));
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  absl::StatusOr<v1::Graph> g = ImportOnnx(*bytes);
  ASSERT_TRUE(g.ok()) << g.status();
  // The shifted block's Pad of the 56 x 56 x 96 stage-1 map: the pad
  // amounts (0 here: 56 is a multiple of the window 7) come from Shape ->
  // Gather -> Mod -> Sub -> Mod -> ... -> Cast, all folded.
  const v1::Node* pad = nullptr;
  for (const v1::Node& n : g->nodes()) {
    if (n.name() == "/features/features.1/features.1.1/attn/Pad") pad = &n;
  }
  ASSERT_NE(pad, nullptr);
  EXPECT_EQ(pad->output_bytes(), 56 * 56 * 96 * 4);
  EXPECT_EQ(pad->param_bytes(), 8 * 8);  // The folded int64[8] pads.
  // 4.5 GMACs, the figure usually quoted for Swin-T at 224 x 224.
  double flops = 0;
  for (const v1::Node& n : g->nodes()) flops += n.flops();
  EXPECT_NEAR(flops / 1e9, 9.07, 0.01);
}

INSTANTIATE_TEST_SUITE_P(OnnxImport, ZooModelTest,
                         ::testing::ValuesIn(kZooModels),
                         [](const ::testing::TestParamInfo<ZooModel>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace mcmpart
