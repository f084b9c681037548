// Tests of reading and writing graph files (solver/graph_io.h).
#include "solver/graph_io.h"

#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::AddNode;

TEST(GraphIoTest, JsonRoundTripUsesProtoFieldNames) {
  v1::Graph p;
  p.set_name("g");
  AddNode(p, "a", {}, 2, 3, 4);
  std::string json = ToJson(p);
  EXPECT_NE(json.find("\"param_bytes\": 3"), std::string::npos) << json;
  v1::Graph back;
  ASSERT_TRUE(ParseJson(json, &back).ok());
  EXPECT_EQ(back.nodes(0).output_bytes(), 4);
}

TEST(GraphIoTest, JsonErrorsNameTheProblem) {
  v1::Graph g;
  absl::Status s =
      ParseJson(R"({"nodes": [{"name": "a", "flops": "lots"}]})", &g);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              ::testing::StartsWith("not a valid Graph in JSON: "));
  EXPECT_FALSE(ParseJson(R"({"nodez": []})", &g).ok());
}

TEST(GraphIoTest, TruncatedProtobufIsRejected) {
  v1::Graph p;
  for (int i = 0; i < 20; ++i)
    AddNode(p, "node" + std::to_string(i), {}, 1, 2, 3);
  std::string bytes = p.SerializeAsString();
  const std::string path = ::testing::TempDir() + "/truncated.pb";
  ASSERT_TRUE(WriteFile(path, bytes.substr(0, bytes.size() / 2 + 3)).ok());
  auto g = LoadGraphFile(path);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      g.status().message(),
      path + ": not a valid mcmpart.v1.Graph protobuf (truncated or corrupt)");
}

TEST(GraphIoTest, FileErrors) {
  EXPECT_EQ(LoadGraphFile("/nonexistent/g.json").status().message(),
            "/nonexistent/g.json: cannot open file");
  EXPECT_EQ(LoadGraphFile("model.txt").status().message(),
            "model.txt: unknown graph format; use .onnx, .json or .pb");
}

}  // namespace
}  // namespace mcmpart
