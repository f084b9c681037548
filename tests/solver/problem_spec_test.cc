#include "solver/problem_spec.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mcmpart {
namespace {

using ::testing::HasSubstr;

// a -> b, on ring4 with two pins.
v1::ProblemSpec Spec() {
  v1::ProblemSpec spec;
  v1::Graph* g = spec.mutable_graph();
  g->set_name("ab");
  g->add_inputs("x");
  v1::Node* a = g->add_nodes();
  a->set_name("a");
  a->set_op("Conv");
  a->add_inputs("x");
  a->set_flops(1e9);
  a->set_output_bytes(1024);
  v1::Node* b = g->add_nodes();
  b->set_name("b");
  b->set_op("Relu");
  b->add_inputs("a");
  b->set_flops(1e6);
  b->set_output_bytes(1024);
  spec.set_preset("ring4");
  (*spec.mutable_constraints()->mutable_pins())["a"] = 0;
  (*spec.mutable_constraints()->mutable_pins())["b"] = 1;
  return spec;
}

TEST(ProblemSpecTest, ResolvesGraphPresetAndConstraints) {
  absl::StatusOr<ResolvedProblem> r = ProblemFromSpec(Spec());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->problem->num_nodes(), 2);
  EXPECT_EQ(r->problem->num_chips(), 4);
  EXPECT_EQ(r->problem->pin(0), 0);
  EXPECT_EQ(r->problem->pin(1), 1);
  EXPECT_TRUE(r->warnings.empty());
}

// The digest keys caches shared between processes: it must not depend on
// the process (absl::Hash would), nor on map order.
TEST(ProblemSpecTest, DigestIsTheSameInEveryProcessAndIgnoresMapOrder) {
  absl::StatusOr<ResolvedProblem> r = ProblemFromSpec(Spec());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->digest, ProblemFromSpec(Spec())->digest);
  // Worked once and fixed here: a change means caches written by an
  // earlier build stop matching (bump deliberately, never by accident).
  EXPECT_EQ(r->digest, "43948c22442ac599a27587fe649fe4de-278");
  v1::ProblemSpec reordered = Spec();
  reordered.mutable_constraints()->clear_pins();
  (*reordered.mutable_constraints()->mutable_pins())["b"] = 1;
  (*reordered.mutable_constraints()->mutable_pins())["a"] = 0;
  EXPECT_EQ(ProblemFromSpec(reordered)->digest, r->digest);
  v1::ProblemSpec other = Spec();
  other.set_chips(8);
  EXPECT_NE(ProblemFromSpec(other)->digest, r->digest);
}

TEST(ProblemSpecTest, ErrorsNameTheField) {
  v1::ProblemSpec no_graph = Spec();
  no_graph.clear_graph();
  EXPECT_EQ(ProblemFromSpec(no_graph).status().message(),
            "the request has no graph: set problem.graph or "
            "problem.onnx_model");
  v1::ProblemSpec no_hw = Spec();
  no_hw.clear_preset();
  EXPECT_EQ(ProblemFromSpec(no_hw).status().message(),
            "the request has no hardware: set problem.preset or "
            "problem.hardware");
  v1::ProblemSpec chips = Spec();
  chips.set_chips(300);
  EXPECT_EQ(ProblemFromSpec(chips).status().message(),
            "problem.chips is 300; must be in 1..256 (or 0 for the preset's "
            "own count)");
  ProblemSpecOptions small;
  small.max_nodes = 1;
  EXPECT_EQ(ProblemFromSpec(Spec(), small).status().message(),
            "the graph has 2 nodes; this server accepts at most 1 "
            "(--max-nodes)");
  v1::ProblemSpec bad = Spec();
  bad.mutable_graph()->mutable_nodes(1)->set_inputs(0, "nowhere");
  ProblemSpecOptions labelled;
  labelled.graph_label = "model.json";
  const absl::Status s = ProblemFromSpec(bad, labelled).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("model.json: node 'b'"));
  v1::ProblemSpec onnx = Spec();
  onnx.set_onnx_model("not onnx");
  EXPECT_THAT(ProblemFromSpec(onnx).status().message(),
              HasSubstr("problem.onnx_model: "));
}

}  // namespace
}  // namespace mcmpart
