// The real CubinStore over src/cache: a content-addressed directory with
// checksummed entries, leases and LRU eviction.
#include <unistd.h>

#include <iostream>

#include "daemon/cubin_store.h"
#include "src/cache/cache.h"

namespace tpjit {
namespace {

class HeldLease final : public CompileLease {
 public:
  explicit HeldLease(Lease lease) : lease_(std::move(lease)) {
    lease_.StartRenewer(absl::Seconds(10));
  }

 private:
  Lease lease_;  // released on destruction
};

class CacheStore final : public CubinStore {
 public:
  explicit CacheStore(std::unique_ptr<Cache> cache)
      : cache_(std::move(cache)) {}

  std::optional<StoredCubin> Get(const std::string& key) override {
    std::optional<CacheEntry> e = cache_->Get(key);
    if (!e) return std::nullopt;
    return StoredCubin{std::move(e->payload), std::move(e->metadata)};
  }

  void Put(const std::string& key, const StoredCubin& entry) override {
    absl::Status s = cache_->Put(key, entry.cubin, entry.metadata);
    if (!s.ok()) {
      std::cerr << "tpjitd: cache put of " << key.substr(0, 12)
                << " failed (compile goes on): " << s << "\n";
    }
  }

  std::unique_ptr<CompileLease> AcquireOrWait(const std::string& key,
                                              absl::Time deadline) override {
    auto r = cache_->WaitForEntryOrLease(key, deadline);
    if (absl::IsCancelled(r.status())) return nullptr;
    if (!r.ok()) {
      std::cerr << "tpjitd: no lease for " << key.substr(0, 12) << " ("
                << r.status() << "); compiling without one\n";
      return nullptr;
    }
    if (r->entry || !r->lease.held()) return nullptr;
    return std::make_unique<HeldLease>(std::move(r->lease));
  }

  bool Writable() override { return cache_->IsWritable(); }
  void CancelWaits() override { cache_->CancelWaits(); }

  StoreStats Stats() override {
    CacheStats c = cache_->Stats();
    StoreStats s;
    s.hits = c.hits;
    s.misses = c.misses;
    s.bytes = c.bytes;
    s.entries = c.entries;
    s.evictions = c.evictions;
    s.corrupt = c.corrupt_entries;  // foreign entries included
    s.lease_waits = c.lease_waits;
    return s;
  }

  std::string dir() const override { return cache_->dir(); }

 private:
  std::unique_ptr<Cache> cache_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<CubinStore>> OpenCacheStore(
    const std::string& dir, int64_t max_bytes, bool allow_shared) {
  CacheOptions options;
  options.max_bytes = max_bytes;
  options.trusted_uid = static_cast<int64_t>(geteuid());
  options.allow_shared_dir = allow_shared;
  auto cache = Cache::Open(dir, options);
  if (!cache.ok()) return cache.status();
  return std::unique_ptr<CubinStore>(new CacheStore(std::move(*cache)));
}

}  // namespace tpjit
