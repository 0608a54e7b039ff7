// Cache's whole-directory operations: scan, list, verify, temp cleanup,
// eviction and garbage collection.
#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/cache/cache.h"
#include "src/common/status_macros.h"

namespace tpjit {

absl::StatusOr<CacheScanReport> Cache::Scan(std::vector<CacheEntryInfo>* out) {
  TPJIT_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         cd_.fs->ListDir(cd_.dir));
  std::set<std::string> leased;
  for (const std::string& name : names) {
    if (!IsTempName(name) && absl::EndsWith(name, kLeaseSuffix)) {
      leased.insert(name.substr(0, name.size() - kLeaseSuffix.size()));
    }
  }
  CacheScanReport report;
  for (const std::string& name : names) {
    if (!IsValidCacheKey(name)) continue;
    absl::StatusOr<FileInfo> info = cd_.fs->Stat(cd_.EntryPath(name));
    if (!info.ok() || info->is_directory) continue;  // removed meanwhile
    ++report.entries;
    report.bytes += info->size;
    if (out != nullptr) {
      out->push_back({name, info->size, info->mtime, leased.count(name) > 0});
    }
  }
  return report;
}

absl::StatusOr<std::vector<CacheEntryInfo>> Cache::List() {
  std::vector<CacheEntryInfo> out;
  TPJIT_RETURN_IF_ERROR(Scan(&out).status());
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.key < b.key; });
  return out;
}

absl::StatusOr<CacheScanReport> Cache::Verify(bool move_corrupt) {
  std::vector<CacheEntryInfo> infos;
  TPJIT_ASSIGN_OR_RETURN(CacheScanReport report, Scan(&infos));
  for (const CacheEntryInfo& info : infos) {
    absl::StatusOr<std::string> bytes = ReadVerified(info.key);
    if (absl::IsNotFound(bytes.status())) continue;
    if (bytes.ok()) continue;
    report.corrupt.emplace_back(info.key, bytes.status().message());
    if (move_corrupt) MoveAside(info.key, bytes.status().message());
  }
  return report;
}

absl::StatusOr<int64_t> Cache::CleanupTemps(absl::Duration older_than) {
  TPJIT_ASSIGN_OR_RETURN(std::vector<std::string> names,
                         cd_.fs->ListDir(cd_.dir));
  const absl::Time cutoff = cd_.clock->Now() - older_than;
  int64_t removed = 0;
  for (const std::string& name : names) {
    if (!IsTempName(name)) continue;
    const std::string path = JoinPath(cd_.dir, name);
    absl::StatusOr<FileInfo> info = cd_.fs->Stat(path);
    if (!info.ok() || info->mtime > cutoff) continue;
    if (cd_.fs->Unlink(path).ok()) ++removed;
  }
  return removed;
}

void Cache::MaybeEvict() {
  if (options_.max_bytes <= 0) return;
  // Other processes write to the directory too: rescan rather than trust
  // this process's running total. (A put follows a compile of seconds; a
  // scan is one list and one stat per entry.)
  absl::StatusOr<CacheScanReport> scan = Scan(nullptr);
  if (!scan.ok()) return;
  counters_.bytes.store(scan->bytes, std::memory_order_relaxed);
  counters_.entries.store(scan->entries, std::memory_order_relaxed);
  if (scan->bytes <= options_.max_bytes) return;
  // Evict to 90% of the cap so that not every put evicts.
  absl::StatusOr<CacheScanReport> r = EvictTo(options_.max_bytes / 10 * 9);
  if (!r.ok()) cd_.Log(absl::StrCat("eviction: ", r.status().ToString()));
}

absl::StatusOr<CacheScanReport> Cache::EvictTo(int64_t target_bytes) {
  absl::MutexLock lock(&evict_mu_);
  std::vector<CacheEntryInfo> infos;
  TPJIT_ASSIGN_OR_RETURN(CacheScanReport report, Scan(&infos));
  std::sort(infos.begin(), infos.end(), [](const auto& a, const auto& b) {
    return a.last_access < b.last_access;
  });
  const absl::Time now = cd_.clock->Now();
  int64_t total = report.bytes;
  for (const CacheEntryInfo& info : infos) {
    if (total <= target_bytes) break;
    if (info.leased || IsPinned(info.key) ||
        now - info.last_access < options_.eviction_grace) {
      continue;
    }
    // Skip entries touched, replaced or leased since the scan.
    const std::string path = cd_.EntryPath(info.key);
    absl::StatusOr<FileInfo> again = cd_.fs->Stat(path);
    if (!again.ok() || again->mtime != info.last_access ||
        leases_.Exists(info.key) || IsPinned(info.key)) {
      continue;
    }
    if (!cd_.fs->Unlink(path).ok()) continue;
    total -= info.size;
    ++report.evicted;
    report.evicted_bytes += info.size;
  }
  CacheCounters::Add(counters_.evictions, report.evicted);
  counters_.bytes.store(total, std::memory_order_relaxed);
  counters_.entries.store(report.entries - report.evicted,
                          std::memory_order_relaxed);
  return report;
}

absl::StatusOr<CacheScanReport> Cache::Gc(absl::Duration temp_age,
                                          int64_t target_bytes) {
  int64_t broken = leases_.BreakStaleLeases();
  TPJIT_ASSIGN_OR_RETURN(int64_t temps, CleanupTemps(temp_age));
  CacheScanReport report;
  if (target_bytes >= 0) {
    TPJIT_ASSIGN_OR_RETURN(report, EvictTo(target_bytes));
  } else {
    TPJIT_ASSIGN_OR_RETURN(report, Scan(nullptr));
  }
  report.leases_broken = broken;
  report.temps_removed = temps;
  return report;
}

}  // namespace tpjit
