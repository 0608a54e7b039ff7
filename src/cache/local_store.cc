#include "src/cache/local_store.h"

#include <unistd.h>

#include <iostream>

namespace tpjit {
namespace {

class LocalLease final : public StoreLease {
 public:
  explicit LocalLease(Lease lease) : lease_(std::move(lease)) {
    lease_.StartRenewer(absl::Seconds(10));
  }

 private:
  Lease lease_;  // released on destruction
};

class LocalStore final : public Store {
 public:
  explicit LocalStore(std::unique_ptr<Cache> cache)
      : cache_(std::move(cache)) {}

  std::string Describe() const override { return "local " + cache_->dir(); }

  std::optional<CacheEntry> Get(absl::string_view key) override {
    return cache_->Get(key);
  }

  // One stat of the entry file (Cache::Contains), not a read.
  bool Contains(absl::string_view key) override {
    return cache_->Contains(key);
  }

  absl::Status Put(const CacheEntry& entry) override {
    absl::Status s = cache_->Put(entry.key, entry.payload, entry.metadata);
    if (!s.ok()) {
      std::cerr << "tpjitd: cache put of " << entry.key.substr(0, 12)
                << " failed (compile goes on): " << s << "\n";
    }
    return s;
  }

  absl::Status Remove(absl::string_view key) override {
    return cache_->Remove(key);
  }

  std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view key,
                                            absl::Time deadline) override {
    auto r = cache_->WaitForEntryOrLease(key, deadline);
    if (absl::IsCancelled(r.status())) return nullptr;
    if (!r.ok()) {
      std::cerr << "tpjitd: no lease for " << key.substr(0, 12) << " ("
                << r.status() << "); compiling without one\n";
      return nullptr;
    }
    if (r->entry || !r->lease.held()) return nullptr;
    return std::make_unique<LocalLease>(std::move(r->lease));
  }

  void CancelWaits() override { cache_->CancelWaits(); }

  absl::Status Health() override {
    return cache_->IsWritable()
               ? absl::OkStatus()
               : absl::UnavailableError("cache directory not writable");
  }

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
    s.errors = c.put_failures + c.read_failures;
    return s;
  }

  std::string dir() const override { return cache_->dir(); }

 private:
  std::unique_ptr<Cache> cache_;
};

}  // namespace

std::unique_ptr<Store> NewLocalStore(std::unique_ptr<Cache> cache) {
  return std::make_unique<LocalStore>(std::move(cache));
}

absl::StatusOr<std::unique_ptr<Store>> OpenLocalStore(const std::string& dir,
                                                      int64_t max_bytes,
                                                      bool allow_shared) {
  CacheOptions options;
  options.max_bytes = max_bytes;
  options.trusted_uid = static_cast<int64_t>(geteuid());
  options.allow_shared_dir = allow_shared;
  auto cache = Cache::Open(dir, options);
  if (!cache.ok()) return cache.status();
  return NewLocalStore(std::move(*cache));
}

}  // namespace tpjit
