#include "client/exit_codes.h"

namespace mcmpart::cli {
namespace {

struct Row {
  absl::StatusCode code;
  int local;
  int server;
};

// Codes not listed: kExitBadInput here, kExitServerError from a server.
constexpr Row kTable[] = {
    {absl::StatusCode::kOk, kExitOk, kExitOk},
    {absl::StatusCode::kInvalidArgument, kExitBadInput, kExitBadInput},
    {absl::StatusCode::kNotFound, kExitBadInput, kExitBadInput},
    {absl::StatusCode::kOutOfRange, kExitBadInput, kExitBadInput},
    {absl::StatusCode::kFailedPrecondition, kExitInfeasible, kExitInfeasible},
    {absl::StatusCode::kDeadlineExceeded, kExitNoSolution, kExitNoSolution},
    {absl::StatusCode::kUnavailable, kExitBadInput, kExitUnavailable},
    {absl::StatusCode::kResourceExhausted, kExitBadInput, kExitRefused},
    {absl::StatusCode::kCancelled, kExitBadInput, kExitInterrupted},
};

}  // namespace

int ExitCodeFor(absl::StatusCode code, ErrorSource source) {
  for (const Row& row : kTable) {
    if (row.code == code) {
      return source == ErrorSource::kLocal ? row.local : row.server;
    }
  }
  return source == ErrorSource::kLocal ? kExitBadInput : kExitServerError;
}

const char kExitHelp[] =
    "Exit codes: 0 success (valid placement), 1 invalid placement (evaluate),\n"
    "2 bad input, 3 no valid placement exists, 4 a limit ended the search\n"
    "before any valid placement was found.\n";

const char kRemoteExitHelp[] =
    "Exit codes: 0 success, 2 bad input, 3 no valid placement exists, 4 no\n"
    "valid placement found in time, 5 server unreachable, 6 refused by a busy\n"
    "server or too large, 7 other server error, 130 interrupted (Ctrl-C; the\n"
    "best placement so far is still written).\n";

// What evaluate and repair add to the local exit codes with --server.
const char kServerExitHelp[] =
    "With --server: 5 server unreachable, 6 refused by a busy server or too\n"
    "large, 7 other server error.\n";

}  // namespace mcmpart::cli
