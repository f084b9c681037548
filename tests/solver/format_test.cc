// How big figures print (solver/format.h).
#include "solver/format.h"

#include <limits>

#include "gtest/gtest.h"

namespace mcmpart {
namespace {

TEST(FormatBytesTest, OrdinaryFiguresAreExact) {
  EXPECT_EQ(FormatBytes(100663296), "96.00 MiB (100663296 bytes)");
  EXPECT_EQ(FormatBytes(965), "0.00 MiB (965 bytes)");
  EXPECT_EQ(FormatBytes(999999999999999),
            "953674316.41 MiB (999999999999999 bytes)");
}

TEST(FormatBytesTest, HugeFiguresAreShort) {
  EXPECT_EQ(FormatBytes(1e308), "1e+308 bytes");
  EXPECT_EQ(FormatBytes(1e15), "1e+15 bytes");
  EXPECT_EQ(FormatBytes(1.5e18), "1.5e+18 bytes");
  EXPECT_EQ(FormatBytes(std::numeric_limits<double>::infinity()), "inf bytes");
}

}  // namespace
}  // namespace mcmpart
