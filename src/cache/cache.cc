#include "src/cache/cache.h"

#include <algorithm>
#include <random>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "src/common/status_macros.h"

namespace tpjit {

Cache::Cache(std::string dir, CacheOptions options)
    : options_(std::move(options)), leases_(&cd_, options_.lease_ttl) {
  if (options_.clock == nullptr) options_.clock = Clock::Real();
  if (options_.fs == nullptr) options_.fs = FileSystem::Default();
  if (!options_.log) options_.log = StderrCacheLog();
  if (options_.host.empty()) options_.host = LocalHostName();
  if (options_.pid == 0) options_.pid = LocalProcessId();
  if (options_.processes == nullptr) options_.processes = ProcessTable::Real();
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  cd_.dir = std::move(dir);
  cd_.fs = options_.fs;
  cd_.clock = options_.clock;
  cd_.host = options_.host;
  cd_.pid = options_.pid;
  cd_.processes = options_.processes;
  cd_.proc_start = options_.processes->StartTime(options_.pid).value_or(0);
  cd_.pid_space = options_.processes->PidSpace();
  cd_.log = options_.log;
  cd_.counters = &counters_;
}

absl::StatusOr<std::unique_ptr<Cache>> Cache::Open(std::string dir,
                                                   CacheOptions options) {
  if (dir.empty()) return absl::InvalidArgumentError("cache dir is empty");
  std::unique_ptr<Cache> cache(new Cache(std::move(dir), std::move(options)));
  TPJIT_RETURN_IF_ERROR(cache->cd_.fs->CreateDirs(cache->cd_.dir));
  TPJIT_RETURN_IF_ERROR(cache->CheckDirTrust());
  TPJIT_ASSIGN_OR_RETURN(CacheScanReport scan, cache->Scan(nullptr));
  cache->counters_.bytes = scan.bytes;
  cache->counters_.entries = scan.entries;
  return cache;
}

// ---------------------------------------------------------------- Trust

namespace {

bool TrustedOwner(int64_t owner, int64_t uid) {
  return owner == uid || owner == 0;
}

}  // namespace

absl::Status CheckCacheDirTrust(FileSystem& fs, const std::string& dir,
                                int64_t uid) {
  TPJIT_ASSIGN_OR_RETURN(FileInfo info, fs.Stat(dir));
  if (!TrustedOwner(info.uid, uid)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cache dir ", dir, " is owned by uid ", info.uid, ", not by uid ", uid,
        " that tpjitd runs as: its owner could plant cubins that tpjitd "
        "would serve. Fix: chown ",
        uid, " ", dir, " (or give tpjitd a --cache-dir of its own)"));
  }
  if ((info.mode & 022) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "cache dir %s is writable by %s (mode %04o): any of them could plant "
        "cubins that tpjitd would serve. Fix: chmod go-w %s",
        dir, (info.mode & 002) ? "other users" : "its group", info.mode, dir));
  }
  return absl::OkStatus();
}

absl::Status Cache::CheckDirTrust() {
  if (options_.trusted_uid < 0) return absl::OkStatus();
  absl::Status s = CheckCacheDirTrust(*cd_.fs, cd_.dir, options_.trusted_uid);
  if (s.ok() || !options_.allow_shared_dir) return s;
  cd_.Log(absl::StrCat("WARNING (accepted as a shared cache): ", s.message(),
                       ". Entries of other owners are still refused."));
  return absl::OkStatus();
}

bool Cache::Foreign(int64_t owner) const {
  return options_.trusted_uid >= 0 &&
         !TrustedOwner(owner, options_.trusted_uid);
}

absl::StatusOr<std::string> Cache::ReadEntryFile(absl::string_view key) {
  FileInfo info;
  TPJIT_ASSIGN_OR_RETURN(std::string bytes,
                         cd_.fs->ReadFileAndStat(cd_.EntryPath(key), &info));
  if (Foreign(info.uid)) {
    return absl::PermissionDeniedError(
        absl::StrCat("entry ", key, " is owned by uid ", info.uid,
                     ", not by uid ", options_.trusted_uid, ": not served"));
  }
  return bytes;
}

// ------------------------------------------------------------- Get / Put

std::optional<CacheEntry> Cache::Lookup(absl::string_view key,
                                        bool count_miss) {
  if (absl::Status s = ValidateCacheKey(key); !s.ok()) {
    CacheCounters::Add(counters_.misses);
    cd_.Log(s.message());
    return std::nullopt;
  }
  Pin pin = PinEntry(key);
  const std::string path = cd_.EntryPath(key);
  absl::StatusOr<std::string> bytes = ReadEntryFile(key);
  if (absl::IsPermissionDenied(bytes.status()) && count_miss) {
    CacheCounters::Add(counters_.foreign_entries);
    CacheCounters::Add(counters_.corrupt_entries);
    cd_.Log(bytes.status().message());
  }
  if (!bytes.ok()) {
    if (count_miss) CacheCounters::Add(counters_.misses);
    if (!absl::IsNotFound(bytes.status()) &&
        !absl::IsPermissionDenied(bytes.status())) {
      CacheCounters::Add(counters_.read_failures);
      cd_.Log(absl::StrCat("read ", key, ": ", bytes.status().ToString()));
    }
    return std::nullopt;
  }
  absl::StatusOr<CacheEntry> entry = DecodeCacheEntry(*bytes, key);
  if (!entry.ok()) {
    if (count_miss) CacheCounters::Add(counters_.misses);
    MoveAside(key, entry.status().message());
    return std::nullopt;
  }
  cd_.fs->SetMTime(path, cd_.clock->Now()).IgnoreError();
  CacheCounters::Add(counters_.hits);
  return *std::move(entry);
}

bool Cache::Contains(absl::string_view key) {
  if (absl::Status s = ValidateCacheKey(key); !s.ok()) {
    cd_.Log(s.message());
    return false;
  }
  absl::StatusOr<FileInfo> info = cd_.fs->Stat(cd_.EntryPath(key));
  if (!info.ok()) {
    if (!absl::IsNotFound(info.status())) {
      CacheCounters::Add(counters_.read_failures);
      cd_.Log(absl::StrCat("stat ", key, ": ", info.status().ToString()));
    }
    return false;
  }
  if (Foreign(info->uid)) {
    return false;  // Get would refuse it (and count it then)
  }
  return !info->is_directory &&
         info->size >= static_cast<int64_t>(kCacheEntryHeaderSize);
}

absl::StatusOr<std::string> Cache::ReadVerified(absl::string_view key) {
  TPJIT_RETURN_IF_ERROR(ValidateCacheKey(key));
  Pin pin = PinEntry(key);
  TPJIT_ASSIGN_OR_RETURN(std::string bytes, ReadEntryFile(key));
  absl::StatusOr<CacheEntry> entry = DecodeCacheEntry(bytes, key);
  if (!entry.ok()) {
    return absl::DataLossError(
        absl::StrCat("entry ", key, ": ", entry.status().message()));
  }
  return bytes;
}

absl::Status Cache::Put(absl::string_view key, absl::string_view payload,
                        const CacheMetadata& metadata) {
  if (absl::Status s = ValidateCacheKey(key); !s.ok()) {
    CacheCounters::Add(counters_.put_failures);
    return s;
  }
  return WriteEntry(key, EncodeCacheEntry(key, metadata, payload));
}

absl::Status Cache::PutEncoded(absl::string_view key,
                               absl::string_view entry_bytes) {
  TPJIT_RETURN_IF_ERROR(ValidateCacheKey(key));
  absl::StatusOr<CacheEntry> entry = DecodeCacheEntry(entry_bytes, key);
  if (!entry.ok()) return entry.status();
  return WriteEntry(key, entry_bytes);
}

absl::Status Cache::WriteEntry(absl::string_view key, absl::string_view bytes) {
  const std::string path = cd_.EntryPath(key);
  absl::StatusOr<FileInfo> old = cd_.fs->Stat(path);
  absl::Status s = WriteFileAtomically(cd_, path, key, bytes);
  if (!s.ok()) {
    CacheCounters::Add(counters_.put_failures);
    cd_.Log(absl::StrCat("put ", key, " failed: ", s.ToString()));
    return s;
  }
  cd_.fs->SetMTime(path, cd_.clock->Now()).IgnoreError();
  int64_t size = static_cast<int64_t>(bytes.size());
  CacheCounters::Add(counters_.bytes, old.ok() ? size - old->size : size);
  if (!old.ok()) CacheCounters::Add(counters_.entries);
  MaybeEvict();
  return absl::OkStatus();
}

absl::Status Cache::Remove(absl::string_view key) {
  TPJIT_RETURN_IF_ERROR(ValidateCacheKey(key));
  absl::Status s = cd_.fs->Unlink(cd_.EntryPath(key));
  if (absl::IsNotFound(s)) return absl::OkStatus();
  return s;
}

void Cache::MoveAside(absl::string_view key, absl::string_view reason) {
  CacheCounters::Add(counters_.corrupt_entries);
  const std::string corrupt_dir = JoinPath(cd_.dir, kCorruptDir);
  const std::string dest = JoinPath(
      corrupt_dir, absl::StrCat(key, ".", absl::ToUnixNanos(cd_.clock->Now()),
                                ".", RandomHex64()));
  absl::Status s = cd_.fs->CreateDirs(corrupt_dir);
  if (s.ok()) s = cd_.fs->Rename(cd_.EntryPath(key), dest);
  cd_.Log(absl::StrCat("corrupt entry ", key, " (", reason,
                       "): ", s.ok() ? "moved to " + dest : s.ToString()));
  if (!s.ok()) return;
  // A writer may have replaced the bad entry between our read and the
  // rename; if what we moved verifies, put it back (unless a newer one is
  // already there).
  if (auto moved = cd_.fs->ReadFile(dest);
      moved.ok() && DecodeCacheEntry(*moved, key).ok() &&
      cd_.fs->Link(dest, cd_.EntryPath(key)).ok()) {
    cd_.fs->Unlink(dest).IgnoreError();
  }
}

// --------------------------------------------------------------- Leases

absl::StatusOr<Lease> Cache::TryAcquireLease(absl::string_view key) {
  return leases_.TryAcquire(key);
}

absl::Duration Cache::Backoff(int attempt) {
  absl::Duration d = options_.min_backoff * (1 << std::min(attempt, 16));
  d = std::min(d, options_.max_backoff);
  thread_local std::mt19937_64 rng(std::random_device{}());
  // Jitter in [d/2, d) so waiters on one key spread out.
  double f = 0.5 + 0.5 * std::uniform_real_distribution<double>(0, 1)(rng);
  return d * f;
}

absl::StatusOr<Lease> Cache::AcquireLease(absl::string_view key,
                                          absl::Time deadline) {
  bool waited = false;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<Lease> lease = leases_.TryAcquire(key);
    if (!absl::IsUnavailable(lease.status())) return lease;
    if (!waited) CacheCounters::Add(counters_.lease_waits);
    waited = true;
    if (cancelled_.load()) return absl::CancelledError("cache is closing");
    absl::Time now = cd_.clock->Now();
    if (now >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("waiting for lease: ", lease.status().message()));
    }
    cd_.clock->SleepFor(std::min(Backoff(attempt), deadline - now));
  }
}

absl::StatusOr<Cache::EntryOrLease> Cache::WaitForEntryOrLease(
    absl::string_view key, absl::Time deadline) {
  TPJIT_RETURN_IF_ERROR(ValidateCacheKey(key));
  bool saw_owner = false;
  std::optional<absl::Time> owner_gone_at;
  std::string last_error = "no lease seen";
  for (int attempt = 0;; ++attempt) {
    EntryOrLease out;
    // Polling: only the first look counts as a miss.
    if ((out.entry = Lookup(key, attempt == 0))) return out;
    absl::Time now = cd_.clock->Now();
    absl::StatusOr<LeaseOwner> owner = leases_.ReadOwner(key);
    bool live = owner.ok() && !leases_.IsStale(*owner);
    if (live) {
      if (!saw_owner) CacheCounters::Add(counters_.lease_waits);
      saw_owner = true;
      owner_gone_at.reset();
      last_error =
          absl::StrCat("leased by host ", owner->host, " pid ", owner->pid);
    } else if (saw_owner && absl::IsNotFound(owner.status()) &&
               (!owner_gone_at ||
                now < *owner_gone_at + options_.visibility_grace)) {
      // The owner finished: its entry may become visible late here.
      if (!owner_gone_at) owner_gone_at = now;
      last_error = "owner released its lease; entry not visible yet";
    } else {
      absl::StatusOr<Lease> lease = leases_.TryAcquire(key);
      if (lease.ok()) {
        // The entry may have been published just before the lease went.
        if ((out.entry = Lookup(key, false))) return out;
        out.lease = *std::move(lease);
        return out;
      }
      if (!absl::IsUnavailable(lease.status())) return lease.status();
      if (!saw_owner) CacheCounters::Add(counters_.lease_waits);
      saw_owner = true;
      owner_gone_at.reset();
      last_error = std::string(lease.status().message());
    }
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "waiting for cache entry or lease of ", key, ": ", last_error));
    }
    if (cancelled_.load()) return absl::CancelledError("cache is closing");
    cd_.clock->SleepFor(std::min(Backoff(attempt), deadline - now));
  }
}

// ------------------------------------------------------------------ Pins

Cache::Pin::Pin(Cache* cache, std::string key)
    : cache_(cache), key_(std::move(key)) {}
Cache::Pin::Pin(Pin&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)),
      key_(std::move(other.key_)) {}
Cache::Pin::~Pin() {
  if (cache_ != nullptr) cache_->Unpin(key_);
}

Cache::Pin Cache::PinEntry(absl::string_view key) {
  absl::MutexLock lock(&mu_);
  ++pinned_[std::string(key)];
  return Pin(this, std::string(key));
}

void Cache::Unpin(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = pinned_.find(key);
  if (it != pinned_.end() && --it->second == 0) pinned_.erase(it);
}

bool Cache::IsPinned(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  return pinned_.count(key) > 0;
}

absl::Status Cache::ProbeWritable() {
  ScopedTempFile probe(cd_.fs, cd_.TempPath(".probe"));
  return WriteWholeFile(*cd_.fs, probe.path(), "tpjit", /*exclusive=*/true);
}

}  // namespace tpjit
