// The ONNX importer over Debian's libonnx-testdata corpus (the ONNX backend
// test models: one small model per op and variant, plus converted torch
// models): every model must import or fail with a clean INVALID_ARGUMENT
// message; a crash fails the test binary. docs/onnx-import.md records the
// counts. Skips when the package is not installed
// (`apt-get install libonnx-testdata`); MCMPART_ONNX_CORPUS=<dir> runs it
// over another directory and prints every failure and warning instead of
// checking the recorded counts.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "solver/graph.h"
#include "solver/graph_io.h"
#include "solver/onnx_import.h"

namespace mcmpart {
namespace {

constexpr char kDebianCorpus[] = "/usr/share/libonnx-testdata/data";

std::vector<std::string> OnnxFiles(const std::string& root) {
  std::vector<std::string> files;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file() && entry.path().extension() == ".onnx") {
      files.push_back(entry.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// The kind of a failure, for the summary: the message up to its first
// quote-delimited specifics.
std::string Kind(absl::string_view message) {
  for (absl::string_view marker :
       {"computes only constants", "cannot be determined", "element type",
        "has no nodes", "knows no op"}) {
    if (message.find(marker) != absl::string_view::npos) {
      return std::string(marker);
    }
  }
  return std::string(message.substr(0, 60));
}

TEST(OnnxImportCorpusTest, LibonnxTestdataImportsOrFailsCleanly) {
  const char* override_dir = std::getenv("MCMPART_ONNX_CORPUS");
  const std::string root =
      override_dir != nullptr ? override_dir : kDebianCorpus;
  if (!std::filesystem::is_directory(root)) {
    GTEST_SKIP() << root
                 << " is absent: install Debian's libonnx-testdata "
                    "(apt-get install libonnx-testdata) to run the corpus";
  }
  int converted = 0, clean_errors = 0, unclean = 0, warned = 0;
  std::map<std::string, int> kinds;
  for (const std::string& file : OnnxFiles(root)) {
    absl::StatusOr<std::string> bytes = ReadFile(file);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    absl::StatusOr<OnnxImportResult> result = ImportOnnxWithWarnings(*bytes);
    if (result.ok()) {
      ++converted;
      warned += result->warnings.empty() ? 0 : 1;
      if (override_dir != nullptr) {
        for (const std::string& w : result->warnings) {
          std::cout << file << ": warning: " << w << "\n";
        }
      }
      absl::StatusOr<Graph> ir = Graph::FromProto(result->graph);
      EXPECT_TRUE(ir.ok()) << file << ": " << ir.status();
      continue;
    }
    const absl::Status& s = result.status();
    const bool clean =
        s.code() == absl::StatusCode::kInvalidArgument && !s.message().empty();
    (clean ? clean_errors : unclean) += 1;
    kinds[Kind(s.message())] += 1;
    EXPECT_TRUE(clean) << file << ": " << s;
    if (override_dir != nullptr) std::cout << file << ": " << s << "\n";
  }
  std::cout << "converted " << converted << " (with warnings " << warned
            << "), clean errors " << clean_errors << ", other errors "
            << unclean << "\n";
  for (const auto& [kind, count] : kinds) {
    std::cout << "  " << count << " x " << kind << "\n";
  }
  EXPECT_EQ(unclean, 0);
  if (override_dir == nullptr) {
    // Debian 12's libonnx-testdata 1.12.0: 1072 models.
    EXPECT_EQ(converted + clean_errors, 1072);
  }
}

}  // namespace
}  // namespace mcmpart
