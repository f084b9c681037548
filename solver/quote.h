// Quoting request-supplied text in error messages.
//
// Every status message that names something a caller sent (a job id, a
// strategy, policy or preset name, a node name) quotes it with QuoteInput,
// so that a hostile or mistaken megabyte-long name cannot make the message
// itself megabytes long (gRPC carries messages in metadata, which clients
// limit to a few KiB by default).
#ifndef MCMPART_SOLVER_QUOTE_H_
#define MCMPART_SOLVER_QUOTE_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace mcmpart {

// Longest text, in bytes, that QuoteInput gives whole.
inline constexpr size_t kMaxQuotedBytes = 64;

// `text` in single quotes: 'resnet18'. Longer than kMaxQuotedBytes, only
// its first 64 bytes (fewer when that would split a UTF-8 character) then
// "..." inside the quotes and the whole length after them:
// 'xxxx...xxx...' (1048576 bytes). The result is at most 100 bytes long.
std::string QuoteInput(absl::string_view text);

}  // namespace mcmpart

#endif  // MCMPART_SOLVER_QUOTE_H_
