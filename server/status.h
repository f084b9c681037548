// absl::Status <-> grpc::Status, keeping codes and messages.
//
// The core reports every error as an absl::Status whose code already is the
// gRPC code the caller should see (INVALID_ARGUMENT for a malformed graph,
// FAILED_PRECONDITION for an infeasible instance, ...), and the two enums
// share their numbering. Handlers therefore convert once, here, and never
// collapse errors into INTERNAL.
#ifndef MCMPART_SERVER_STATUS_H_
#define MCMPART_SERVER_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace mcmpart::server {

// Same code, same message. An OK status maps to grpc::Status::OK. A code
// outside the shared range (impossible from absl) becomes UNKNOWN.
grpc::Status ToGrpcStatus(const absl::Status& status);

// The inverse, for clients and tests.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace mcmpart::server

#endif  // MCMPART_SERVER_STATUS_H_
