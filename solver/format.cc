#include "solver/format.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace mcmpart {

std::string FormatBytes(double bytes) {
  // Beyond a petabyte (no chip's SRAM, so a mistaken or hostile figure) the
  // exact count would be a wall of digits: 1e308 has 309 of them.
  if (!(std::fabs(bytes) < kExactBytesBelow)) {
    return absl::StrFormat("%.6g bytes", bytes);
  }
  return absl::StrFormat("%.2f MiB (%.0f bytes)", bytes / (1024.0 * 1024.0),
                         bytes);
}

}  // namespace mcmpart
