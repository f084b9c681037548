// The mcmpart binary, driven as a user drives it.
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "solver/graph_io.h"
#include "tests/client/cli_runner.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::RunCli;
using ::testing::HasSubstr;

const std::string kData = MCMPART_TEST_DATA_DIR;
const std::string kGraph = kData + "/worked/graph.json";
const std::string kHardware = kData + "/worked/hardware.json";
const std::string kPlacement = kData + "/worked/placement.json";

// Per-process, since ctest runs tests in parallel.
std::string Tmp(const std::string& name) {
  return ::testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
}

TEST(CliEvaluateTest, InvalidPlacementExitsOneAndListsViolation) {
  auto r = RunCli("evaluate " + kGraph + " " + kPlacement + " --hardware " +
                  kHardware);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("INVALID placement: 1 violation\n"));
  EXPECT_THAT(r.out, HasSubstr("[max_hops] edge 'a' -> 'e' spans 2 hops (chip "
                               "0 to chip 2); max_hops is 1"));
  EXPECT_THAT(
      r.out,
      HasSubstr("  0->1   50 B         2        6.000 s  <- bottleneck\n"));
}

TEST(CliEvaluateTest, JsonCarriesTheSpecFigures) {
  auto r = RunCli("evaluate " + kGraph + " " + kPlacement + " --hardware " +
                  kHardware + " --max-hops 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::Evaluation e;
  ASSERT_TRUE(ParseJson(r.out, &e).ok()) << r.out;
  EXPECT_TRUE(e.valid());
  EXPECT_DOUBLE_EQ(e.throughput_per_s(), 1.0 / 6);
  EXPECT_DOUBLE_EQ(e.bottleneck_s(), 6);
  EXPECT_NEAR(e.latency_s(), 18.93, 1e-12);
  EXPECT_NEAR(e.quality(), 9.43 / 3 / 6, 1e-12);
  EXPECT_THAT(e.memory_bytes(), ::testing::ElementsAre(60, 965, 33));
  for (const char* key :
       {"\"valid\"", "\"violations\"", "\"throughput_per_s\"",
        "\"bottleneck_s\"", "\"latency_s\"", "\"upper_bound_per_s\"",
        "\"quality\"", "\"compute_s\"", "\"comm_s\"", "\"memory_bytes\""}) {
    EXPECT_THAT(r.out, HasSubstr(key));
  }
}

TEST(CliEvaluateTest, BadInputExitsTwoWithMessage) {
  auto r = RunCli("evaluate " + kGraph + " " + kPlacement + " --preset ring9");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart evaluate: unknown hardware preset 'ring9'; presets are "
            "ring4, ring8, ring16\n");

  r = RunCli("evaluate " + kGraph + " " + kPlacement);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err,
            "mcmpart evaluate: give exactly one of --preset NAME or --hardware "
            "FILE\n");

  const std::string partial = Tmp("partial.json");
  ASSERT_TRUE(WriteFile(partial, R"({"assignment": {"a": 0, "zz": 1}})").ok());
  r = RunCli("evaluate " + kGraph + " " + partial + " --preset ring4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "mcmpart evaluate: " + partial +
                       ": placement: unknown node 'zz'\n");

  r = RunCli("evaluate " + kGraph + " " + kPlacement +
             " --preset ring4 --bogus");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("mcmpart evaluate: unknown flag --bogus\n"));
}

TEST(CliEvaluateTest, MalformedGraphNamesTheNode) {
  const std::string bad = Tmp("cycle.json");
  ASSERT_TRUE(WriteFile(bad, R"({"nodes": [
      {"name": "a", "inputs": ["b"]}, {"name": "b", "inputs": ["a"]}]})")
                  .ok());
  auto r = RunCli("evaluate " + bad + " " + kPlacement + " --preset ring4");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "mcmpart evaluate: " + bad +
                       ": graph has a cycle: 'a' -> 'b' -> 'a'\n");
}

TEST(CliConvertTest, JsonToProtobufAndBack) {
  const std::string pb = Tmp("worked.pb");
  auto r = RunCli("convert " + kGraph + " -o " + pb);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("worked: 5 nodes, 6 edges"));
  r = RunCli("evaluate " + pb + " " + kPlacement + " --hardware " + kHardware +
             " --max-hops 2");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST(CliTest, HelpAndUnknownCommand) {
  auto r = RunCli("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Exit codes:"));
  r = RunCli("frobnicate");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("mcmpart: unknown command 'frobnicate'"));
  r = RunCli("evaluate --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("Usage: mcmpart evaluate GRAPH PLACEMENT.json"));
}

}  // namespace
}  // namespace mcmpart

namespace mcmpart {
namespace {

using ::mcmpart::testing::RunCli;
using ::testing::HasSubstr;

TEST(CliReportTest, WritesWellFormedSvgAndDot) {
  const std::string data = MCMPART_TEST_DATA_DIR;
  const std::string svg =
      ::testing::TempDir() + "/" + std::to_string(getpid()) + ".svg";
  const std::string dot =
      ::testing::TempDir() + "/" + std::to_string(getpid()) + ".dot";
  auto r = RunCli("report " + data + "/worked/graph.json " + data +
                  "/worked/placement.json --hardware " + data +
                  "/worked/hardware.json --max-hops 2 --svg " + svg +
                  " --dot " + dot);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(
      r.out,
      HasSubstr("  0->1   50 B         2        6.000 s  <- bottleneck\n"));
  EXPECT_THAT(
      r.out, HasSubstr("  1     2      3.930 s      965 B / 1000 B   96.5%\n"));
  // Parsed by real tools, as a user's viewer would.
  EXPECT_EQ(std::system(("xmllint --noout " + svg).c_str()), 0);
  const std::string picture = ::mcmpart::testing::Slurp(svg);
  EXPECT_THAT(picture, HasSubstr("<g class=\"chip\" id=\"chip1\">"));
  // The bottleneck link is drawn in red, the other link is not.
  EXPECT_THAT(picture,
              HasSubstr("<g class=\"link\" id=\"link0\">\n<line x1=\"234\" "
                        "y1=\"125\" x2=\"310\" y2=\"125\" stroke=\"#d62728\""));
  EXPECT_EQ(std::system(("dot -Tsvg -o /dev/null " + dot).c_str()), 0);
  const std::string graph = ::mcmpart::testing::Slurp(dot);
  EXPECT_THAT(graph,
              HasSubstr("n2 [label=\"c\\nGemm\", fillcolor=\"#ffffb3\"];"));
  EXPECT_THAT(graph, HasSubstr("n0 -> n2 [color=red];"));
}

// The default strategy proves the optimum and says so, in the text, in
// --json, and again when `report` reads the placement file.
TEST(CliSearchTest, AutoSaysProvedOptimalAndTheReportKeepsIt) {
  const std::string graph = kData + "/graphs/googlenet.onnx";
  const std::string file = Tmp("googlenet_ring4.json");
  auto r = RunCli("search " + graph + " --preset ring4 --out " + file);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("auto: "));
  EXPECT_THAT(r.out, HasSubstr("ended by converged\n"));
  EXPECT_THAT(r.out, HasSubstr("  throughput  43059.8 /s"));
  EXPECT_THAT(r.out,
              HasSubstr("\n  optimality  proved optimal (exact search)\n"));
  r = RunCli("report " + graph + " " + file + " --preset ring4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              HasSubstr("\n  optimality  proved optimal (exact search)\n"));
  r = RunCli("search " + graph + " --preset ring4 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::SearchReport report;
  ASSERT_TRUE(ParseJson(r.out, &report).ok()) << r.out;
  EXPECT_EQ(report.strategy(), "auto");
  EXPECT_EQ(report.end_reason(), "converged");
  EXPECT_TRUE(report.evaluation().proved_optimal());
  EXPECT_EQ(report.evaluation().gap(), 0);
  EXPECT_EQ(report.evaluation().bound_source(), "exact");
}

// Without the exact search the answer still says how far it may be from
// the best possible, against the compute bound.
TEST(CliSearchTest, OtherStrategiesStateTheirGapToTheComputeBound) {
  const std::string graph = kData + "/graphs/googlenet.onnx";
  auto r = RunCli("search " + graph +
                  " --preset ring4 --strategy constructive --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  v1::SearchReport report;
  ASSERT_TRUE(ParseJson(r.out, &report).ok()) << r.out;
  const v1::Evaluation& e = report.evaluation();
  EXPECT_FALSE(e.proved_optimal());
  EXPECT_EQ(e.bound_source(), "compute");
  EXPECT_DOUBLE_EQ(e.bound_per_s(), e.upper_bound_per_s());
  EXPECT_NEAR(e.gap(), 1 - e.quality(), 1e-12);
  r = RunCli("search " + graph + " --preset ring4 --strategy constructive");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex(
                         "\n  optimality  at most [0-9.]+% below the best "
                         "possible \\(proved bound [0-9.]+ /s, compute "
                         "bound\\)\n"));
}

}  // namespace
}  // namespace mcmpart
