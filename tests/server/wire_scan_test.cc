#include "server/wire_scan.h"

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/partitioner.pb.h"

namespace mcmpart::server {
namespace {

int64_t Count(const std::string& bytes, std::initializer_list<int> path) {
  google::protobuf::io::ArrayInputStream in(bytes.data(),
                                            static_cast<int>(bytes.size()));
  return CountGraphNodes(&in, path);
}

v1::Graph RandomGraph(std::mt19937& rng, int nodes) {
  v1::Graph g;
  g.set_name("g");
  g.add_inputs("x");
  for (int i = 0; i < nodes; ++i) {
    v1::Node* n = g.add_nodes();
    n->set_name(absl::StrCat("n", i));
    n->set_op(rng() % 2 ? "Conv" : "Relu");
    n->set_flops(static_cast<double>(rng() % 1000));
    if (i > 0) n->add_inputs(absl::StrCat("n", rng() % i));
  }
  return g;
}

TEST(WireScanTest, CountsWhatTheParseWouldFindOnEveryRequestShape) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 50; ++trial) {
    const int nodes = static_cast<int>(rng() % 40);
    v1::PartitionRequest partition;
    *partition.mutable_problem()->mutable_graph() = RandomGraph(rng, nodes);
    partition.mutable_problem()->set_preset("ring4");
    partition.set_strategy("anneal");
    EXPECT_EQ(Count(partition.SerializeAsString(), {1}), nodes);

    v1::SubmitJobRequest submit;
    *submit.mutable_request() = partition;
    EXPECT_EQ(Count(submit.SerializeAsString(), {1, 1}), nodes);

    v1::RepairRequest repair;
    *repair.mutable_problem() = partition.problem();
    (*repair.mutable_weights())["n0"] = 2;
    repair.set_time_limit_s(1);
    EXPECT_EQ(Count(repair.SerializeAsString(), {1}), nodes);
  }
}

TEST(WireScanTest, RepeatedOccurrencesAddUpAsAParseMergesThem) {
  v1::PartitionRequest a, b;
  std::mt19937 rng(5);
  *a.mutable_problem()->mutable_graph() = RandomGraph(rng, 3);
  *b.mutable_problem()->mutable_graph() = RandomGraph(rng, 4);
  const std::string both = a.SerializeAsString() + b.SerializeAsString();
  v1::PartitionRequest parsed;
  ASSERT_TRUE(parsed.ParseFromString(both));
  EXPECT_EQ(parsed.problem().graph().nodes_size(), 7);
  EXPECT_EQ(Count(both, {1}), 7);
}

TEST(WireScanTest, NoGraphMessageCountsZeroAndMalformedBytesMinusOne) {
  v1::PartitionRequest onnx;
  onnx.mutable_problem()->set_onnx_model(std::string(100, 'x'));
  EXPECT_EQ(Count(onnx.SerializeAsString(), {1}), 0);
  EXPECT_EQ(Count("", {1}), 0);
  EXPECT_EQ(Count(std::string("\x0a\x7f\x01", 3), {1}), -1);  // truncated
  EXPECT_EQ(Count(std::string(12, '\xff'), {1}), -1);         // bad varint
  EXPECT_EQ(Count(std::string("\x00", 1), {1}), -1);          // tag 0
}

}  // namespace
}  // namespace mcmpart::server
