// What every fuzz harness in tests/fuzz shares: the libFuzzer entry point
// it defines and the bound on one input.
//
// Each harness is one executable. Built with MCMPART_FUZZ (clang,
// -fsanitize=fuzzer,address,undefined) it is a libFuzzer binary; otherwise
// replay_main.cc drives it over files and directories, so that ctest runs
// every seed and every committed regression through the harness in the
// normal build.
#ifndef MCMPART_TESTS_FUZZ_HARNESS_H_
#define MCMPART_TESTS_FUZZ_HARNESS_H_

#include <cstddef>
#include <cstdint>

// Inputs larger than this are rejected at once: requests and files that big
// are legitimate, but a fuzzer gains nothing from them and each one would
// cost seconds. The two bundled models over it (gpt2_small.onnx, 3.3 MB;
// swin_t.onnx, 1.3 MB) are refused here when replayed; libFuzzer cuts
// them to its -max_len.
inline constexpr size_t kMaxFuzzInputBytes = size_t{1} << 20;

// Runs one input. Returns 0 (libFuzzer's contract); a bug aborts or is
// reported by a sanitizer.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // MCMPART_TESTS_FUZZ_HARNESS_H_
