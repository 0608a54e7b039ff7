// Counters of one open Cache (this process's view), and their snapshot.
// CacheCounters is thread-safe (relaxed atomics); CacheStats is a value.
#ifndef TPJIT_SRC_CACHE_STATS_H_
#define TPJIT_SRC_CACHE_STATS_H_

#include <atomic>
#include <cstdint>
#include <string>

namespace tpjit {

struct CacheStats {
  int64_t hits = 0;
  int64_t misses = 0;
  // Size and count of the entries as of this process's last directory scan
  // (Open, Gc, eviction) plus its own puts and evictions since.
  int64_t bytes = 0;
  int64_t entries = 0;
  int64_t evictions = 0;
  int64_t corrupt_entries = 0;  // found on read, moved aside (or foreign)
  int64_t foreign_entries = 0;  // owned by an untrusted uid: never served
  int64_t lease_waits = 0;      // waits that found another owner's lease
  int64_t lease_breaks = 0;     // stale leases this process broke
  int64_t put_failures = 0;
  int64_t read_failures = 0;  // I/O errors other than "not found" on read

  std::string DebugString() const;
};

struct CacheCounters {
  std::atomic<int64_t> hits{0}, misses{0}, bytes{0}, entries{0}, evictions{0},
      corrupt_entries{0}, foreign_entries{0}, lease_waits{0}, lease_breaks{0},
      put_failures{0}, read_failures{0};

  static void Add(std::atomic<int64_t>& c, int64_t n = 1) {
    c.fetch_add(n, std::memory_order_relaxed);
  }
  CacheStats Snapshot() const;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_STATS_H_
