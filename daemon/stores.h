// The daemon's cache stores: the local directory, and with --remote-cache a
// Redis tier behind it (src/cache/tiered_store.h, redis_store.h). Best-effort
// like every store: a remote tier that cannot be reached never keeps tpjitd
// from starting or serving.
#ifndef TPJIT_DAEMON_STORES_H_
#define TPJIT_DAEMON_STORES_H_

#include <memory>

#include "absl/status/statusor.h"
#include "daemon/config.h"
#include "src/cache/store.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

// Opens config.cache_dir (errors as OpenLocalStore's) and, when
// config.remote_cache is set, the Redis tier behind it; its password comes
// from config.remote_cache_password_file, else $TPJIT_REMOTE_CACHE_PASSWORD.
// INVALID_ARGUMENT for an unreadable password file. Redis being down is not
// an error (logged; the tier reports it in its health).
absl::StatusOr<std::unique_ptr<Store>> OpenDaemonStore(
    const DaemonConfig& config);

// The remote tier's store of recipe files (RedisStore::recipe_store()),
// when `store` has a remote tier; nullptr otherwise. Lives as long as
// `store`.
Store* RemoteRecipeStore(Store& store);

// The remote tier's counters and health, when `store` has one (empty
// otherwise). Reads counters only: no I/O.
tpjit::v1::RemoteCacheStats RemoteStats(Store& store);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_STORES_H_
