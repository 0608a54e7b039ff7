// LocalStore: the Store over a cache directory (cache.h): checksummed
// entries written atomically, file leases renewed while held, LRU eviction.
// Thread-safe.
#ifndef TPJIT_SRC_CACHE_LOCAL_STORE_H_
#define TPJIT_SRC_CACHE_LOCAL_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "src/cache/cache.h"
#include "src/cache/store.h"

namespace tpjit {

// Wraps an open cache.
std::unique_ptr<Store> NewLocalStore(std::unique_ptr<Cache> cache);

// Opens the cache directory `dir` for tpjitd; `max_bytes` 0 = no cap. The
// directory and its entries must belong to this process's effective uid
// (CacheOptions::trusted_uid): FAILED_PRECONDITION naming the fix otherwise,
// unless `allow_shared` (a warning then).
absl::StatusOr<std::unique_ptr<Store>> OpenLocalStore(const std::string& dir,
                                                      int64_t max_bytes,
                                                      bool allow_shared);

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_LOCAL_STORE_H_
