// The Redis backend: one Redis server (or a managed one) shared by every
// replica. Each multi-key change is one Lua script, so it is atomic and
// publishes its change notification in the same step; a replica keeps one
// subscriber connection that dispatches notifications to its local waiters.
// Keys, scripts and timings: docs/store.md.
//
// While Redis is down every call fails with UNAVAILABLE within
// StoreOptions::redis_command_timeout (at once while the connection is
// refused), waiters fall back to polling, and connections are re-made by
// the next call after StoreOptions::redis_retry_interval. Redis itself keeps
// what it keeps: with persistence off, a restarted Redis has forgotten the
// jobs, and calls answer NOT_FOUND for them.
#ifndef MCMPART_SERVER_STORE_REDIS_STORE_H_
#define MCMPART_SERVER_STORE_REDIS_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/store/store.h"

namespace mcmpart::store {

struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
};

// Connects (the first connection checks the schema version key, writing it
// into an empty database) and starts the subscriber thread. Sets SIGPIPE
// to ignored when it has its default action (a write to a connection Redis
// closed would otherwise end the process; gRPC servers ignore it anyway).
// Errors:
// UNAVAILABLE when Redis cannot be reached (the message names host:port and
// the reason); INVALID_ARGUMENT when Redis refuses the database number;
// FAILED_PRECONDITION when the database holds another schema version.
absl::StatusOr<std::unique_ptr<StateStore>> OpenRedisStore(
    const RedisAddress& address, const StoreOptions& options);

}  // namespace mcmpart::store

#endif  // MCMPART_SERVER_STORE_REDIS_STORE_H_
