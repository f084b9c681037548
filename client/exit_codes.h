// The exit codes of `mcmpart`, in one table: what each means, and which
// status code (from this machine's own work, or from the server) maps to
// it. `mcmpart --help` and every command's help print from here.
#ifndef MCMPART_CLIENT_EXIT_CODES_H_
#define MCMPART_CLIENT_EXIT_CODES_H_

#include "absl/status/status.h"

namespace mcmpart::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid =
    1;  // evaluate: the placement breaks a constraint
inline constexpr int kExitBadInput = 2;  // usage, unreadable or malformed input
inline constexpr int kExitInfeasible = 3;  // no valid placement exists
inline constexpr int kExitNoSolution =
    4;  // a limit ended the search before any valid placement
inline constexpr int kExitUnavailable =
    5;  // server unreachable or shutting down
inline constexpr int kExitRefused =
    6;  // refused by a busy server, or too large
inline constexpr int kExitServerError = 7;    // any other server-side failure
inline constexpr int kExitInterrupted = 130;  // Ctrl-C

// Where an error status came from: the command's own work here, or a
// server's answer (which adds codes 5, 6, 7 and 130).
enum class ErrorSource { kLocal, kServer };

// The exit code for `code` (kExitOk for OK).
int ExitCodeFor(absl::StatusCode code, ErrorSource source);

// Help paragraphs: the local commands' codes, the remote commands' codes,
// and what evaluate and repair add with --server.
extern const char kExitHelp[];
extern const char kRemoteExitHelp[];
extern const char kServerExitHelp[];

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_EXIT_CODES_H_
