// The sqlite backend: an embedded database file, so that jobs and the cache
// survive a restart of a single replica. WAL mode (readers never wait for
// the writer; a commit is one append), synchronous=NORMAL (a power cut may
// lose the last commits, never corrupt the file). The file carries
// application_id 0x4d434d50 ("MCMP") and user_version = kSchemaVersion; a
// file without them is not ours and is never modified. Tables and indexes:
// docs/store.md.
//
// One process per file: change notifications are in-process; another process
// sharing the file is seen within StoreOptions::poll_interval.
#ifndef MCMPART_SERVER_STORE_SQLITE_STORE_H_
#define MCMPART_SERVER_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/store/store.h"

namespace mcmpart::store {

// application_id of an mcmpart state file.
inline constexpr int32_t kSqliteApplicationId = 0x4d434d50;

// Opens `path`, creating the file and its schema when it does not exist (or
// is empty). Errors (FAILED_PRECONDITION, the message names the path and
// what to do): the file cannot be opened or created; it is not an SQLite
// database or is corrupt; it is another application's database; its schema
// version is not kSchemaVersion; WAL mode cannot be turned on.
absl::StatusOr<std::unique_ptr<StateStore>> OpenSqliteStore(
    const std::string& path, const StoreOptions& options);

}  // namespace mcmpart::store

#endif  // MCMPART_SERVER_STORE_SQLITE_STORE_H_
