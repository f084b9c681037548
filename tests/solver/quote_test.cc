// How messages print what callers sent and how big figures print.
#include "solver/quote.h"

#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "solver/format.h"

namespace mcmpart {
namespace {

TEST(QuoteInputTest, ShortTextIsQuotedWhole) {
  EXPECT_EQ(QuoteInput(""), "''");
  EXPECT_EQ(QuoteInput("resnet18"), "'resnet18'");
  EXPECT_EQ(QuoteInput(std::string(64, 'x')), "'" + std::string(64, 'x') + "'");
}

TEST(QuoteInputTest, LongTextKeepsAPrefixAndTheLength) {
  EXPECT_EQ(QuoteInput(std::string(65, 'x')),
            "'" + std::string(64, 'x') + "...' (65 bytes)");
  const std::string quoted = QuoteInput(std::string(1 << 20, 'x'));
  EXPECT_EQ(quoted, "'" + std::string(64, 'x') + "...' (1048576 bytes)");
  EXPECT_LE(quoted.size(), 100u);
}

TEST(QuoteInputTest, PrefixEndsOnAWholeUtf8Character) {
  // 63 ASCII bytes, then "é" (2 bytes) straddling byte 64.
  const std::string text = std::string(63, 'a') + "\xc3\xa9" + "tail";
  EXPECT_EQ(QuoteInput(text), "'" + std::string(63, 'a') + "...' (69 bytes)");
}

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
