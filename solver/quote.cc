#include "solver/quote.h"

#include "absl/strings/str_cat.h"

namespace mcmpart {

std::string QuoteInput(absl::string_view text) {
  if (text.size() <= kMaxQuotedBytes) return absl::StrCat("'", text, "'");
  size_t cut = kMaxQuotedBytes;
  // Back up over UTF-8 continuation bytes (10xxxxxx) so that the prefix
  // ends on a whole character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return absl::StrCat("'", text.substr(0, cut), "...' (", text.size(),
                      " bytes)");
}

}  // namespace mcmpart
