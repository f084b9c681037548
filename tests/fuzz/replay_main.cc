// The main of a fuzz harness in the normal build (no libFuzzer): runs every
// file named on the command line, and every file under each directory
// named, through LLVMFuzzerTestOneInput once, in sorted order. Arguments
// starting with '-' are libFuzzer flags and are ignored, so that one
// command line serves both builds. Prints one line per input with
// --verbose, then a summary; exits 1 when an argument cannot be read or no
// input was found (a seed corpus that went missing must not pass quietly).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

#include "tests/fuzz/harness.h"

namespace {

bool ReadWhole(const std::filesystem::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out->assign(std::istreambuf_iterator<char>(in),
              std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  bool verbose = false;
  std::vector<fs::path> inputs;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--verbose") == 0) {
      verbose = true;
      continue;
    }
    if (argv[i][0] == '-') continue;
    const fs::path arg(argv[i]);
    std::error_code ec;
    if (fs::is_directory(arg, ec)) {
      for (const fs::directory_entry& e :
           fs::recursive_directory_iterator(arg, ec)) {
        if (e.is_regular_file()) inputs.push_back(e.path());
      }
    } else if (fs::is_regular_file(arg, ec)) {
      inputs.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
      return 1;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "replay: no inputs\n");
    return 1;
  }
  size_t bytes = 0;
  for (const fs::path& p : inputs) {
    std::string data;
    if (!ReadWhole(p, &data)) {
      std::fprintf(stderr, "replay: %s: cannot read\n", p.c_str());
      return 1;
    }
    if (verbose) std::fprintf(stderr, "replay: %s\n", p.c_str());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(data.data()),
                           data.size());
    bytes += data.size();
  }
  std::printf("replay: %zu inputs (%zu bytes) ran without a crash\n",
              inputs.size(), bytes);
  return 0;
}
