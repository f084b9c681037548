// How messages print what callers sent (solver/quote.h).
#include "solver/quote.h"

#include <string>

#include "gtest/gtest.h"

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

}  // namespace
}  // namespace mcmpart
