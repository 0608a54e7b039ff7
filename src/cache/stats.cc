#include "src/cache/stats.h"

#include "absl/strings/str_format.h"

namespace tpjit {

std::string CacheStats::DebugString() const {
  return absl::StrFormat(
      "hits=%d misses=%d bytes=%d entries=%d evictions=%d corrupt=%d "
      "foreign=%d lease_waits=%d lease_breaks=%d put_failures=%d "
      "read_failures=%d",
      hits, misses, bytes, entries, evictions, corrupt_entries, foreign_entries,
      lease_waits, lease_breaks, put_failures, read_failures);
}

CacheStats CacheCounters::Snapshot() const {
  auto get = [](const std::atomic<int64_t>& c) {
    return c.load(std::memory_order_relaxed);
  };
  CacheStats s;
  s.hits = get(hits);
  s.misses = get(misses);
  s.bytes = get(bytes);
  s.entries = get(entries);
  s.evictions = get(evictions);
  s.corrupt_entries = get(corrupt_entries);
  s.foreign_entries = get(foreign_entries);
  s.lease_waits = get(lease_waits);
  s.lease_breaks = get(lease_breaks);
  s.put_failures = get(put_failures);
  s.read_failures = get(read_failures);
  return s;
}

}  // namespace tpjit
