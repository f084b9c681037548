// The connection to mcmpart-server: the address (--server, MCMPART_SERVER
// or the default), TLS and mTLS, call deadlines, and failed calls reported
// in words a user can act on, with the exit code.
#ifndef MCMPART_CLIENT_CONNECTION_H_
#define MCMPART_CLIENT_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli.h"
#include "mcmpart/v1/partitioner.grpc.pb.h"

namespace mcmpart::cli {

// The address used when neither --server nor MCMPART_SERVER is given.
inline constexpr char kDefaultServer[] = "localhost:50051";

// --server, --tls*, --timeout and their --help paragraph.
std::vector<FlagSpec> RemoteFlags();
extern const char kRemoteHelp[];

// Where the address came from, so that an unreachable server's message says
// which setting to fix.
struct Address {
  std::string address;
  std::string source;  // "--server", "MCMPART_SERVER" or "the default"
};

struct Connection {
  Address address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Partitioner::Stub> stub;
};

// A channel and stub for the flags' server. Nothing is sent yet. Errors:
// INVALID_ARGUMENT for a malformed --timeout or half an mTLS pair; the
// file's error for an unreadable PEM file.
absl::StatusOr<Connection> Connect(const Args& args);

void SetDeadline(grpc::ClientContext& ctx, absl::Duration timeout);
// --timeout, else the budget plus 30 s.
absl::Duration CallTimeout(const Args& args, absl::Duration budget);
// True when the call's own deadline (--timeout) has passed: a
// DEADLINE_EXCEEDED is then the client's limit, not the search budget's.
bool Expired(const grpc::ClientContext& ctx);

// Prints "mcmpart COMMAND: ..." for a failed call (an unreachable server
// says which setting to fix) and returns its exit code.
int FailRpc(absl::string_view command, const Connection& c,
            const grpc::Status& s, bool call_expired = false);

}  // namespace mcmpart::cli

#endif  // MCMPART_CLIENT_CONNECTION_H_
