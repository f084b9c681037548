#include "solver/hardware.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "solver/quote.h"

namespace mcmpart {
namespace {

absl::Status CheckPositive(absl::string_view what, double value,
                           bool zero_ok = false) {
  if (std::isfinite(value) && (value > 0 || (zero_ok && value == 0))) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("hardware: ", what, " is ", value,
                   "; must be a finite number ", zero_ok ? ">= 0" : "> 0"));
}

struct Preset {
  const char* name;
  int chips;
};
constexpr Preset kPresets[] = {{"ring4", 4}, {"ring8", 8}, {"ring16", 16}};
constexpr double kPresetSram = 96.0 * 1024 * 1024;
constexpr double kPresetPeakFlops = 64e12;
constexpr double kPresetMemBandwidth = 2e12;
constexpr double kPresetLinkBandwidth = 50e9;
constexpr double kPresetLinkLatency = 1e-6;

}  // namespace

absl::StatusOr<Hardware> Hardware::FromProto(const v1::Hardware& proto) {
  const int c = proto.chips_size();
  if (c == 0) return absl::InvalidArgumentError("hardware: no chips");
  if (c > kMaxChips) {
    return absl::InvalidArgumentError(
        absl::StrCat("hardware: ", c, " chips; the limit is ", kMaxChips));
  }
  if (proto.links_size() != c - 1 && proto.links_size() != c) {
    return absl::InvalidArgumentError(absl::StrCat(
        "hardware: ", proto.links_size(), " links for ", c, " chips; need ",
        c - 1, " (link k joins chip k to chip k+1)"));
  }
  Hardware hw;
  hw.name_ = proto.name();
  for (int i = 0; i < c; ++i) {
    const v1::Chip& chip = proto.chips(i);
    const std::string at = absl::StrCat("chips[", i, "].");
    if (absl::Status s = CheckPositive(at + "sram_bytes", chip.sram_bytes());
        !s.ok())
      return s;
    if (absl::Status s = CheckPositive(at + "peak_flops", chip.peak_flops());
        !s.ok())
      return s;
    if (absl::Status s =
            CheckPositive(at + "mem_bandwidth", chip.mem_bandwidth());
        !s.ok())
      return s;
    hw.chips_.push_back(
        {chip.sram_bytes(), chip.peak_flops(), chip.mem_bandwidth()});
    const ChipSpec& first = hw.chips_.front();
    const ChipSpec& last = hw.chips_.back();
    hw.identical_ = hw.identical_ && first.sram_bytes == last.sram_bytes &&
                    first.peak_flops == last.peak_flops &&
                    first.mem_bandwidth == last.mem_bandwidth;
  }
  for (int k = 0; k < c - 1; ++k) {
    const v1::Link& link = proto.links(k);
    const std::string at = absl::StrCat("links[", k, "].");
    if (absl::Status s =
            CheckPositive(at + "link_bandwidth", link.link_bandwidth());
        !s.ok())
      return s;
    if (absl::Status s =
            CheckPositive(at + "link_latency_s", link.link_latency_s(), true);
        !s.ok())
      return s;
    hw.links_.push_back({link.link_bandwidth(), link.link_latency_s()});
  }
  return hw;
}

std::vector<std::string> PresetNames() {
  std::vector<std::string> names;
  for (const Preset& p : kPresets) names.push_back(p.name);
  return names;
}

v1::Hardware IdenticalHardware(const std::string& name, int chips,
                               const v1::Chip& chip, const v1::Link& link) {
  v1::Hardware hw;
  hw.set_name(name);
  for (int i = 0; i < chips; ++i) *hw.add_chips() = chip;
  for (int k = 0; k + 1 < chips; ++k) *hw.add_links() = link;
  return hw;
}

absl::StatusOr<v1::Hardware> PresetHardware(absl::string_view name, int chips) {
  const Preset* preset = nullptr;
  for (const Preset& p : kPresets) {
    if (name == p.name) preset = &p;
  }
  if (preset == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("unknown hardware preset ", QuoteInput(name),
                     "; presets are ", absl::StrJoin(PresetNames(), ", ")));
  }
  if (chips < 0 || chips > kMaxChips) {
    return absl::InvalidArgumentError(absl::StrCat(
        "chip count ", chips, " is out of range; must be 1..", kMaxChips));
  }
  const int c = chips > 0 ? chips : preset->chips;
  v1::Chip chip;
  chip.set_sram_bytes(kPresetSram);
  chip.set_peak_flops(kPresetPeakFlops);
  chip.set_mem_bandwidth(kPresetMemBandwidth);
  v1::Link link;
  link.set_link_bandwidth(kPresetLinkBandwidth);
  link.set_link_latency_s(kPresetLinkLatency);
  return IdenticalHardware(chips > 0 && chips != preset->chips
                               ? absl::StrCat(preset->name, "/chips=", c)
                               : std::string(preset->name),
                           c, chip, link);
}

}  // namespace mcmpart
