// Leases: who is compiling a cache key right now.
//
// A lease is a file DIR/<key>.lease holding its owner (host, pid, the
// process's start time and pid space, see process_table.h; the lease's own
// start time, a random token) and an expiry on the shared wall clock
// (Clock::Now()). It
// is made complete in a temp file and then hard-linked into place; link(2)
// fails if the name exists, which makes acquisition create-exclusive on local
// and network file systems alike, and a reader never sees a half-written
// lease. The owner renews it (rewrites the expiry) while it works; anybody may
// break it once it has expired, and a process of the owner's host and pid
// space breaks it at once when the owner is gone: no process has its pid, or
// the one that has started at another time (pid reused), e.g. after a kill -9.
// Whenever that cannot be known (another host or container, a lease of format
// 1, /proc unreadable) only the expiry counts. So while a live lease exists,
// no second process acquires the key: two processes never compile one key at
// once unless an owner fails to renew within its TTL (see the race below).
//
// The remaining races, as in ccache's lockfile.cpp:
//  * Breaking and releasing rename the lease file to a private temp name and
//    then check its token. If, between our read and our rename, the stale
//    lease was broken and re-acquired by a third process, we moved *its*
//    fresh lease away; we then link it back, which fails only if yet another
//    process acquired the name in that window of microseconds. That holder
//    learns it lost the lease at its next Renew() (ABORTED).
//  * Renew() checks the token and then renames a new file over the lease. If
//    the lease expired before Renew() and was broken and re-acquired between
//    the check and the rename, the renew overwrites the new owner's lease.
//    Renewing well inside the TTL (the renewer thread renews at TTL/3) keeps
//    the lease live, so it is never broken in the first place.
//  * Hosts whose wall clocks differ by more than the TTL may break live
//    leases of each other: choose the TTL well above the clock skew.
//
// Thread-safety: LeaseManager is thread-safe. A Lease may be used from one
// thread at a time; its optional renewer thread synchronizes with it.
#ifndef TPJIT_SRC_CACHE_LEASE_H_
#define TPJIT_SRC_CACHE_LEASE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "src/cache/cache_dir.h"

namespace tpjit {

struct LeaseOwner {
  std::string host;
  int64_t pid = 0;
  absl::Time start;  // when the lease was taken
  absl::Time expiry;
  std::string token;
  uint64_t proc_start = 0;  // the owner process's start time; 0: unknown
  std::string pid_space;    // the owner's ProcessTable::PidSpace(); "": unknown
};

// Format 2: "tpjit-lease 2\nhost=...\npid=...\nproc_start=...\n
// pid_space=...\nstart_ns=...\nexpiry_ns=...\ntoken=...\n".
// Format 1 (no proc_start, pid_space) is still read: its owner is never
// known to be gone, only expired.
std::string EncodeLeaseOwner(const LeaseOwner& owner);
absl::StatusOr<LeaseOwner> DecodeLeaseOwner(absl::string_view text);

class LeaseManager;

// The right to compile one key. RAII: destroying a held Lease releases it.
// Movable, not copyable; Release() twice (or on a moved-from or empty Lease)
// does nothing.
class Lease {
 public:
  Lease();  // empty: held() is false
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&& other) noexcept;
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  ~Lease();

  bool held() const;
  const std::string& key() const;
  const std::string& token() const;
  absl::Time expiry() const;
  // True once a Renew() (by the caller or the renewer) found the lease file
  // missing or owned by someone else.
  bool lost() const;

  // Moves the expiry to Now() + TTL. ABORTED if the lease was lost (broken
  // as stale, or removed); FAILED_PRECONDITION if not held.
  absl::Status Renew();
  // Removes the lease file if it is still ours. Idempotent.
  void Release();

  // Starts a thread that calls Renew() every `every` (real time; it waits on
  // a condition variable so Release() stops it at once) until Release() or a
  // lost lease. `on_renewed(expiry)` runs on that thread after each renewal
  // (without the Lease's lock; it must not call Release()).
  // Does nothing if the lease is not held or a renewer already runs.
  void StartRenewer(absl::Duration every,
                    std::function<void(absl::Time)> on_renewed = nullptr);

 private:
  friend class LeaseManager;
  struct State;
  explicit Lease(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// Acquires, inspects and breaks the leases of one cache directory.
class LeaseManager {
 public:
  // REQUIRES: `cd` (and what it points to) outlives this and every Lease it
  // hands out.
  LeaseManager(const CacheDir* cd, absl::Duration ttl) : cd_(cd), ttl_(ttl) {}

  // The lease of `key` if it is free or stale (a stale lease is broken and
  // counted). UNAVAILABLE naming the owner if another owner's live lease
  // exists (or a lease file exists that cannot be read yet); other codes for
  // I/O errors.
  absl::StatusOr<Lease> TryAcquire(absl::string_view key);

  // The current owner of `key`'s lease; NOT_FOUND if none.
  absl::StatusOr<LeaseOwner> ReadOwner(absl::string_view key) const;
  // True if a lease file exists for `key` (live or stale).
  bool Exists(absl::string_view key) const;
  // Breaks every stale lease in the directory; returns how many.
  int BreakStaleLeases();
  // Stale: expired, or its owner is gone (see the top of this file).
  bool IsStale(const LeaseOwner& owner) const;
  // True when `owner` is a process of this host and pid space that no
  // longer runs (or whose pid now names another process). False whenever
  // that cannot be known.
  bool OwnerIsGone(const LeaseOwner& owner) const;

  absl::Duration ttl() const { return ttl_; }
  const CacheDir& dir() const { return *cd_; }

 private:
  friend class Lease;
  absl::Status Renew(LeaseOwner& owner, absl::string_view key);
  // Removes the lease file of `key` if its token is `token`, atomically with
  // respect to other lease operations (see the races above).
  absl::Status RemoveIfToken(absl::string_view key, absl::string_view token);
  // Breaks `owner`'s lease on `key` if it is stale.
  bool BreakIfStale(absl::string_view key, const LeaseOwner& owner);

  const CacheDir* cd_;
  absl::Duration ttl_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_LEASE_H_
