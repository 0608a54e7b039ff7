// Store: one tier of kernel storage (a local directory, a remote cache), as
// ccache's storage layers. A store keeps verified entries (entry_format.h)
// by key, and hands out compile leases so that one owner compiles a key at a
// time. TieredStore (tiered_store.h) composes stores; the daemon sees one.
//
// Best-effort by contract: a failing store never fails a compile. Get() turns
// every failure into a miss, Put() and Remove() return a Status the caller
// may ignore (it is logged and counted), AcquireOrWait() gives up and lets the
// caller compile without a lease. Implementations log and count failures in
// Stats(); nothing here aborts.
//
// Thread-safety: implementations are thread-safe. A StoreLease refers to its
// store: destroy it before the store.
#ifndef TPJIT_SRC_CACHE_STORE_H_
#define TPJIT_SRC_CACHE_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "src/cache/entry_format.h"

namespace tpjit {

// Counters of one store (this process's view). Fields a store does not keep
// stay 0.
struct StoreStats {
  int64_t hits = 0, misses = 0, bytes = 0, entries = 0, evictions = 0;
  int64_t corrupt = 0;      // corrupt or foreign entries found (ignored)
  int64_t lease_waits = 0;  // waits that found another owner's lease
  int64_t errors = 0;       // failed calls (I/O, network, time-outs)
  int64_t put_drops = 0;    // puts not made (queue full, entry too large)
  // Remote stores: bytes moved, a full server's refusals, leases.
  int64_t bytes_read = 0, bytes_written = 0, full = 0;
  int64_t leases_won = 0;
  int64_t lease_timeouts = 0;  // waits that ended at the deadline
  // Entries this process put that a later Get found gone (evicted or
  // expired).
  int64_t lost = 0;
  // Call latency histogram: counts per bucket, bounds in latency_bounds_ms
  // (the last count is above the last bound). Empty if not kept.
  std::vector<double> latency_bounds_ms;
  std::vector<int64_t> latency_counts;
};

// The right to compile one key in one store; released on destruction.
class StoreLease {
 public:
  virtual ~StoreLease() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Says what the store is, for logs ("local /var/cache/tpjit", ...).
  virtual std::string Describe() const = 0;
  // The verified entry of `key`, or nullopt on a miss or any failure.
  virtual std::optional<CacheEntry> Get(absl::string_view key) = 0;
  // True if the store holds an entry of `key` now; false on a miss or any
  // failure (counted and logged as Get counts and logs them). Cheaper than
  // Get: an override need not read or verify the entry, so a corrupt or
  // foreign entry may count as present, and a later Get of it may still
  // miss. Callers must treat true as "Get is worth trying", never as a
  // promise of a hit. Counts no hit or miss.
  virtual bool Contains(absl::string_view key) { return Get(key).has_value(); }
  // Publishes `entry` (entry.key is its key), replacing any entry of it.
  virtual absl::Status Put(const CacheEntry& entry) = 0;
  // Removes `key`'s entry; OK if absent.
  virtual absl::Status Remove(absl::string_view key) = 0;
  // Waits until either the caller holds the compile lease of `key`
  // (returned) or another owner has published the entry (nullptr; call
  // Get). At `deadline` (wall clock), on a failure, or after CancelWaits(),
  // it returns nullptr with no entry: the caller compiles anyway (a
  // duplicate compile beats a hang).
  virtual std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view key,
                                                    absl::Time deadline) = 0;
  // A hint, no promise: true if another owner holds `key`'s lease now (it is
  // being compiled elsewhere). False on any failure or when it cannot tell.
  virtual bool LeasedElsewhere(absl::string_view key) { return false; }
  // Makes every AcquireOrWait, now and later, return nullptr at once (within
  // one back-off step): shutdown.
  virtual void CancelWaits() {}
  // OK if the store accepts puts now; the error says why not.
  virtual absl::Status Health() = 0;
  virtual StoreStats Stats() = 0;
  // The local cache directory behind this store; empty if none.
  virtual std::string dir() const { return ""; }
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_STORE_H_
