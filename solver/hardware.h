// The hardware model: C chips on a one-way ring, plus the shipped presets.
#ifndef MCMPART_SOLVER_HARDWARE_H_
#define MCMPART_SOLVER_HARDWARE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "mcmpart/v1/problem.pb.h"

namespace mcmpart {

// At most this many chips; keeps per-chip arrays and the solver's model small
// whatever a request asks for.
inline constexpr int kMaxChips = 256;

struct ChipSpec {
  double sram_bytes = 0;
  double peak_flops = 0;
  double mem_bandwidth = 0;
};

struct LinkSpec {
  double bandwidth = 0;  // bytes/s
  double latency_s = 0;  // per tensor sent
};

// Immutable after FromProto; safe to share between threads.
class Hardware {
 public:
  // Errors (INVALID_ARGUMENT, naming the field): no chips, more than
  // kMaxChips, a chip or link figure that is not finite and > 0 (latency may
  // be 0), a link count other than C - 1 or C.
  static absl::StatusOr<Hardware> FromProto(const v1::Hardware& proto);

  int num_chips() const { return static_cast<int>(chips_.size()); }
  // Links 0..num_chips()-2; link k joins chip k to chip k + 1.
  int num_links() const { return static_cast<int>(links_.size()); }
  const ChipSpec& chip(int c) const { return chips_[c]; }
  const LinkSpec& link(int k) const { return links_[k]; }
  // True when every chip has the same figures (the spec's upper bound is
  // stated for this case).
  bool identical_chips() const { return identical_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::vector<ChipSpec> chips_;
  std::vector<LinkSpec> links_;
  bool identical_ = true;
};

// `chips` copies of `chip` joined by chips - 1 copies of `link`, named
// `name`: hardware of identical parts, as the presets and the random
// hardware of pre-training are. Not validated (Hardware::FromProto does
// that).
v1::Hardware IdenticalHardware(const std::string& name, int chips,
                               const v1::Chip& chip, const v1::Link& link);

// The preset names, in the order `--help` lists them.
std::vector<std::string> PresetNames();

// The preset called `name` ("ring4", "ring8", "ring16"): identical chips of
// 96 MiB SRAM, 64e12 FLOP/s, 2e12 B/s; links of 50e9 B/s and 1e-6 s per
// tensor. `chips` > 0 overrides the chip count (a ring of that many preset
// chips). Errors: NOT_FOUND for an unknown name (the message lists the
// presets), INVALID_ARGUMENT for a chip count outside 1..kMaxChips.
absl::StatusOr<v1::Hardware> PresetHardware(absl::string_view name,
                                            int chips = 0);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_HARDWARE_H_
