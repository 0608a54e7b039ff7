// CubinStore: what the daemon needs from the cubin cache, as a small seam so
// daemon tests can inject a failing cache. The real one (cache_store.cc)
// adapts src/cache. Best-effort by contract: a failing cache is logged and
// counted, never fails a compile. Implementations are thread-safe.
#ifndef TPJIT_DAEMON_CUBIN_STORE_H_
#define TPJIT_DAEMON_CUBIN_STORE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tpjit {

struct StoredCubin {
  std::string cubin;
  std::map<std::string, std::string> metadata;
};

struct StoreStats {
  int64_t hits = 0, misses = 0, bytes = 0, entries = 0, evictions = 0,
          corrupt = 0, lease_waits = 0;
};

// Held while this process compiles a key; released on destruction.
class CompileLease {
 public:
  virtual ~CompileLease() = default;
};

class CubinStore {
 public:
  virtual ~CubinStore() = default;
  virtual std::optional<StoredCubin> Get(const std::string& key) = 0;
  virtual void Put(const std::string& key, const StoredCubin& entry) = 0;
  // Waits until either this process holds the compile lease for `key`
  // (returned) or another process has published the entry (nullptr; call
  // Get). At `deadline` it gives up waiting and returns nullptr with no
  // entry: the caller compiles anyway (a duplicate compile beats a hang).
  virtual std::unique_ptr<CompileLease> AcquireOrWait(const std::string& key,
                                                      absl::Time deadline) = 0;
  virtual bool Writable() = 0;
  // Makes every AcquireOrWait, now and later, return nullptr at once (within
  // one back-off step): the daemon is shutting down.
  virtual void CancelWaits() {}
  virtual StoreStats Stats() = 0;
  virtual std::string dir() const = 0;
};

// The cache directory store; `max_bytes` 0 = no cap. The directory and its
// entries must belong to this process's effective uid (src/cache/cache.h
// CacheOptions::trusted_uid): FAILED_PRECONDITION naming the fix otherwise,
// unless `allow_shared` (a warning then).
absl::StatusOr<std::unique_ptr<CubinStore>> OpenCacheStore(
    const std::string& dir, int64_t max_bytes, bool allow_shared);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_CUBIN_STORE_H_
