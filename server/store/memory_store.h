// The memory backend: everything in this process (tests, and a server
// without a shared store). Jobs are lost with the process; only this
// process's store object sees them.
#ifndef MCMPART_SERVER_STORE_MEMORY_STORE_H_
#define MCMPART_SERVER_STORE_MEMORY_STORE_H_

#include <memory>

#include "server/store/store.h"

namespace mcmpart::store {

// Never fails. Only cache_entries and poll_interval of `options` apply.
std::unique_ptr<StateStore> NewMemoryStore(const StoreOptions& options);

}  // namespace mcmpart::store

#endif  // MCMPART_SERVER_STORE_MEMORY_STORE_H_
