// Cache: a content-addressed store of compiled kernels (cubins) in one
// directory, safe to share between threads, processes and machines (local
// disk or a shared file system such as NFS).
//
// * Entries: one file per key (a SHA-256 hex digest, see DESIGN.md "Kernel
//   key"), carrying its own checksum and metadata (entry_format.h). Writers
//   write a temp file in the same directory, fsync it, rename it into place
//   and fsync the directory, so readers see the old entry, no entry, or the
//   whole new one, never a torn or mixed one. Reads verify the checksum; a
//   corrupt entry is a miss, is moved to DIR/corrupt/, counted and logged.
// * Leases (lease.h): who compiles a key right now. WaitForEntryOrLease()
//   returns the entry once someone has published it, or a Lease that makes
//   the caller the one compiler of the key.
// * Size cap: with max_bytes > 0, each put rescans the directory (one list,
//   one stat per entry) and, if over the cap, evicts least recently used
//   entries down to 90% of it. The access time is the entry file's mtime,
//   set on every put and hit. Never evicted: entries read or pinned in this
//   process, entries with a lease file, and entries accessed within
//   `eviction_grace` (which covers readers in other processes).
//
// Failure behaviour: the cache is best-effort. Get() turns every failure into
// a miss; Put() returns a Status the caller may ignore. Both log (through
// CacheOptions::log) and count failures (Stats()). Nothing here aborts.
//
// Thread-safety: a Cache is thread-safe. Time and sleeps go through
// CacheOptions::clock, file access through CacheOptions::fs. Leases and Pins
// refer to their Cache: destroy them before it.
#ifndef TPJIT_SRC_CACHE_CACHE_H_
#define TPJIT_SRC_CACHE_CACHE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/cache/cache_dir.h"
#include "src/cache/entry_format.h"
#include "src/cache/lease.h"
#include "src/cache/stats.h"
#include "src/common/clock.h"
#include "src/common/file_system.h"
#include "src/common/process_table.h"

namespace tpjit {

struct CacheOptions {
  int64_t max_bytes = 0;     // 0: no size cap
  Clock* clock = nullptr;    // nullptr: Clock::Real()
  FileSystem* fs = nullptr;  // nullptr: FileSystem::Default()
  CacheLogFn log = nullptr;  // nullptr: StderrCacheLog()
  // A lease not renewed for this long is stale and may be broken. Keep it
  // well above the clock skew between hosts sharing the directory.
  absl::Duration lease_ttl = absl::Seconds(30);
  // Entries accessed more recently than this are not evicted.
  absl::Duration eviction_grace = absl::Seconds(10);
  // After another owner's lease went away, how long a waiter keeps looking
  // for the entry that owner published before it compiles the key itself
  // (a shared file system may show a new file late).
  absl::Duration visibility_grace = absl::Seconds(2);
  absl::Duration min_backoff = absl::Milliseconds(5);
  absl::Duration max_backoff = absl::Milliseconds(500);
  std::string host;  // empty: this host's name (lease owner, temp names)
  int64_t pid = 0;   // 0: this process's id
  // Looks up lease owners on this host (lease.h); nullptr: the real /proc.
  ProcessTable* processes = nullptr;
  // Who may write this cache. With trusted_uid >= 0 (tpjitd passes its
  // effective uid): Open() refuses a directory that is owned by another uid
  // or writable by group or others (FAILED_PRECONDITION naming the chmod /
  // chown fix), or with allow_shared_dir only logs that warning; and an
  // entry file owned by another uid is foreign: a miss, counted in
  // foreign_entries and corrupt_entries, left in place, never served. Root
  // (uid 0) is trusted as an owner too. -1: no checks (tools, tests).
  int64_t trusted_uid = -1;
  bool allow_shared_dir = false;
};

// OK if `dir` (which exists) is owned by `uid` (or root) and writable by
// nobody else; FAILED_PRECONDITION saying what is wrong and the command that
// fixes it otherwise.
absl::Status CheckCacheDirTrust(FileSystem& fs, const std::string& dir,
                                int64_t uid);

// One entry as listed by List().
struct CacheEntryInfo {
  std::string key;
  int64_t size = 0;
  absl::Time last_access;  // the entry file's mtime
  bool leased = false;
};

// What a scan of the directory found (Verify, Gc).
struct CacheScanReport {
  int64_t entries = 0;
  int64_t bytes = 0;
  std::vector<std::pair<std::string, std::string>> corrupt;  // key, reason
  int64_t temps_removed = 0;
  int64_t leases_broken = 0;
  int64_t evicted = 0;
  int64_t evicted_bytes = 0;
};

class Cache {
 public:
  // Opens (creating if needed) the cache in `dir` and scans it once for
  // Stats(). Fails only if `dir` cannot be created or listed.
  static absl::StatusOr<std::unique_ptr<Cache>> Open(std::string dir,
                                                     CacheOptions options);
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  const std::string& dir() const { return cd_.dir; }

  // The verified entry of `key`, or nullopt on a miss (absent, corrupt,
  // foreign, unreadable, invalid key). A hit refreshes the entry's access
  // time.
  std::optional<CacheEntry> Get(absl::string_view key) {
    return Lookup(key, /*count_miss=*/true);
  }
  // True if `key` has an entry file that may verify: one stat, no read, no
  // checksum. A file too short for an entry header or owned by an untrusted
  // uid is not contained; a longer one with a bad checksum, or a symlink to
  // an entry, is (Get then misses, and moves a corrupt file aside). False on a
  // miss or failure (a failed stat is counted in read_failures and logged, as
  // Get does). Counts no hit or miss and leaves the access time alone.
  bool Contains(absl::string_view key);
  // Publishes an entry atomically (replacing any entry of `key`), then
  // evicts if over the size cap. On failure nothing is left behind.
  absl::Status Put(absl::string_view key, absl::string_view payload,
                   const CacheMetadata& metadata);
  // Publishes an already encoded entry (e.g. from an archive) after
  // verifying it; DATA_LOSS if it does not verify as `key`'s entry.
  absl::Status PutEncoded(absl::string_view key, absl::string_view entry_bytes);
  // The raw bytes of `key`'s entry after verifying them; NOT_FOUND,
  // PERMISSION_DENIED (foreign) or DATA_LOSS (not moved aside, not counted)
  // otherwise.
  absl::StatusOr<std::string> ReadVerified(absl::string_view key);
  // Removes `key`'s entry; OK if absent.
  absl::Status Remove(absl::string_view key);

  // Leases (see lease.h). TryAcquireLease: UNAVAILABLE while another owner
  // holds a live lease. AcquireLease: retries with backoff until `deadline`
  // (wall clock: clock->Now(), i.e. absl::Now() with the real clock), then
  // DEADLINE_EXCEEDED.
  absl::StatusOr<Lease> TryAcquireLease(absl::string_view key);
  absl::StatusOr<Lease> AcquireLease(absl::string_view key,
                                     absl::Time deadline);

  // Exactly one of `entry` and `lease` is set: the published entry, or the
  // lease that makes the caller compile (and Put) the key.
  struct EntryOrLease {
    std::optional<CacheEntry> entry;
    Lease lease;
  };
  // Returns the entry as soon as it is visible, or the key's lease once it
  // is free (or stale), re-checking with exponential backoff and jitter.
  // `deadline` is on the wall clock (clock->Now(), i.e. absl::Now() with the
  // real clock); DEADLINE_EXCEEDED after it.
  absl::StatusOr<EntryOrLease> WaitForEntryOrLease(absl::string_view key,
                                                   absl::Time deadline);
  // Makes AcquireLease and WaitForEntryOrLease, waiting now or later, return
  // CANCELLED at their next check (within one back-off step): shutdown.
  void CancelWaits() { cancelled_.store(true); }

  // Keeps `key` from eviction by this process while alive. Movable.
  class Pin {
   public:
    Pin(Pin&& other) noexcept;
    Pin& operator=(Pin&&) = delete;
    ~Pin();

   private:
    friend class Cache;
    Pin(Cache* cache, std::string key);
    Cache* cache_;
    std::string key_;
  };
  Pin PinEntry(absl::string_view key);

  // Maintenance (the `tpjit cache` command, the daemon's janitor).
  absl::StatusOr<std::vector<CacheEntryInfo>> List();
  // Reads and verifies every entry; with `move_corrupt`, moves the bad ones
  // to DIR/corrupt/.
  absl::StatusOr<CacheScanReport> Verify(bool move_corrupt);
  // Removes temp files older than `older_than` (left by crashed writers);
  // returns how many.
  absl::StatusOr<int64_t> CleanupTemps(absl::Duration older_than);
  // Breaks stale leases, removes temps older than `temp_age`, and evicts LRU
  // entries until at most `target_bytes` remain (no eviction if < 0).
  absl::StatusOr<CacheScanReport> Gc(absl::Duration temp_age,
                                     int64_t target_bytes);

  CacheStats Stats() const { return counters_.Snapshot(); }
  // Probes that the directory accepts a new file (health checks): writes,
  // fsyncs and removes a temp file. The error says why not.
  absl::Status ProbeWritable();
  bool IsWritable() { return ProbeWritable().ok(); }

 private:
  Cache(std::string dir, CacheOptions options);
  std::optional<CacheEntry> Lookup(absl::string_view key, bool count_miss);
  // The bytes of `key`'s entry file; PERMISSION_DENIED if it is foreign.
  absl::StatusOr<std::string> ReadEntryFile(absl::string_view key);
  // True if an entry file owned by `owner` is not served (trusted_uid set,
  // and `owner` is neither it nor root).
  bool Foreign(int64_t owner) const;
  // Applies trusted_uid / allow_shared_dir to the directory (see above).
  absl::Status CheckDirTrust();
  absl::StatusOr<CacheScanReport> Scan(std::vector<CacheEntryInfo>* out);
  absl::Status WriteEntry(absl::string_view key, absl::string_view bytes);
  void MoveAside(absl::string_view key, absl::string_view reason);
  void MaybeEvict();
  absl::StatusOr<CacheScanReport> EvictTo(int64_t target_bytes);
  bool IsPinned(const std::string& key) const;
  void Unpin(const std::string& key);
  absl::Duration Backoff(int attempt);

  CacheOptions options_;
  mutable CacheCounters counters_;
  CacheDir cd_;
  LeaseManager leases_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> pinned_ ABSL_GUARDED_BY(mu_);
  absl::Mutex evict_mu_;  // one eviction at a time in this process
  std::atomic<bool> cancelled_{false};
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_CACHE_H_
