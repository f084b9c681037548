// Tests of the hardware presets and checks (solver/hardware.h).
#include "solver/hardware.h"

#include <cmath>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "mcmpart/v1/problem.pb.h"
#include "tests/solver/test_util.h"

namespace mcmpart {
namespace {

using ::mcmpart::testing::UniformHardware;

TEST(HardwareTest, Presets) {
  auto hw = PresetHardware("ring8");
  ASSERT_TRUE(hw.ok());
  EXPECT_EQ(hw->chips_size(), 8);
  EXPECT_EQ(hw->links_size(), 7);
  EXPECT_EQ(hw->chips(3).sram_bytes(), 96.0 * 1024 * 1024);
  EXPECT_EQ(hw->chips(3).peak_flops(), 64e12);
  EXPECT_EQ(hw->chips(3).mem_bandwidth(), 2e12);
  EXPECT_EQ(hw->links(6).link_bandwidth(), 50e9);
  EXPECT_EQ(hw->links(6).link_latency_s(), 1e-6);
  auto five = PresetHardware("ring4", 5);
  ASSERT_TRUE(five.ok());
  EXPECT_EQ(five->chips_size(), 5);
  EXPECT_EQ(five->name(), "ring4/chips=5");
  EXPECT_EQ(PresetHardware("ring16")->chips_size(), 16);
}

TEST(HardwareTest, IdenticalHardwareCopiesOneChipAndOneLink) {
  v1::Chip chip;
  chip.set_sram_bytes(1e6);
  chip.set_peak_flops(2e12);
  chip.set_mem_bandwidth(3e11);
  v1::Link link;
  link.set_link_bandwidth(4e9);
  link.set_link_latency_s(5e-7);
  v1::Hardware hw = IdenticalHardware("three", 3, chip, link);
  EXPECT_EQ(hw.name(), "three");
  ASSERT_EQ(hw.chips_size(), 3);
  ASSERT_EQ(hw.links_size(), 2);
  for (const v1::Chip& c : hw.chips()) {
    EXPECT_EQ(c.SerializeAsString(), chip.SerializeAsString());
  }
  for (const v1::Link& l : hw.links()) {
    EXPECT_EQ(l.SerializeAsString(), link.SerializeAsString());
  }
  EXPECT_EQ(IdenticalHardware("one", 1, chip, link).links_size(), 0);
}

TEST(HardwareTest, UnknownPreset) {
  auto hw = PresetHardware("ring5");
  EXPECT_EQ(hw.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      hw.status().message(),
      "unknown hardware preset 'ring5'; presets are ring4, ring8, ring16");
  EXPECT_EQ(PresetHardware("ring4", 300).status().message(),
            "chip count 300 is out of range; must be 1..256");
}

TEST(HardwareTest, BadFigures) {
  v1::Hardware hw = UniformHardware(2, 10, 1, 1, 1, 0);
  hw.mutable_chips(1)->set_peak_flops(std::nan(""));
  EXPECT_EQ(
      Hardware::FromProto(hw).status().message(),
      "hardware: chips[1].peak_flops is nan; must be a finite number > 0");
  hw = UniformHardware(3, 10, 1, 1, 1, 0);
  hw.mutable_links()->RemoveLast();
  EXPECT_EQ(Hardware::FromProto(hw).status().message(),
            "hardware: 1 links for 3 chips; need 2 (link k joins chip k to "
            "chip k+1)");
  hw = UniformHardware(2, 10, 1, 1, 1, 0);
  hw.mutable_links(0)->set_link_latency_s(-1);
  EXPECT_EQ(
      Hardware::FromProto(hw).status().message(),
      "hardware: links[0].link_latency_s is -1; must be a finite number >= 0");
  EXPECT_EQ(Hardware::FromProto(v1::Hardware()).status().message(),
            "hardware: no chips");
}

}  // namespace
}  // namespace mcmpart
