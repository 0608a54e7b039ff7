// Test stores: MemoryStore keeps entries in a map and fails on command (every
// call, or Get and Contains / Put only), can be made slow (a gate Put waits
// on), and counts calls. Leases are single-owner per key: AcquireOrWait
// returns nullptr once the entry exists, waits while another lease is held.
// Thread-safe.
#ifndef TPJIT_TESTS_CACHE_MEMORY_STORE_H_
#define TPJIT_TESTS_CACHE_MEMORY_STORE_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "src/cache/store.h"

namespace tpjit::testing {

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(std::string name = "memory") : name_(std::move(name)) {}

  std::string Describe() const override { return name_; }

  std::optional<CacheEntry> Get(absl::string_view key) override {
    gets.fetch_add(1);
    absl::MutexLock lock(&mu_);
    if (fail_all_ || fail_get_) {
      ++errors_;
      return std::nullopt;
    }
    auto it = entries_.find(std::string(key));
    if (it == entries_.end()) {
      ++misses_;
      return std::nullopt;
    }
    ++hits_;
    return it->second;
  }

  // Fails like Get (FailAll, FailGet); counts calls in `contains`.
  bool Contains(absl::string_view key) override {
    contains.fetch_add(1);
    absl::MutexLock lock(&mu_);
    if (fail_all_ || fail_get_) {
      ++errors_;
      return false;
    }
    return entries_.count(std::string(key)) > 0;
  }

  absl::Status Put(const CacheEntry& entry) override {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(
        +[](bool* open) { return *open; }, &gate_open_));
    puts.fetch_add(1);
    if (fail_all_ || fail_put_) {
      ++errors_;
      return absl::UnavailableError(name_ + " is down");
    }
    entries_[entry.key] = entry;
    return absl::OkStatus();
  }

  absl::Status Remove(absl::string_view key) override {
    absl::MutexLock lock(&mu_);
    if (fail_all_) return absl::UnavailableError(name_ + " is down");
    entries_.erase(std::string(key));
    return absl::OkStatus();
  }

  std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view key,
                                            absl::Time deadline) override {
    const std::string k(key);
    absl::MutexLock lock(&mu_);
    if (fail_all_) return nullptr;
    auto free_or_published = [this, &k]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return entries_.count(k) > 0 || leased_.count(k) == 0 || cancelled_;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&free_or_published), deadline) ||
        cancelled_ || entries_.count(k) > 0) {
      return nullptr;
    }
    leased_.insert(k);
    return std::make_unique<MemoryLease>(this, k);
  }

  bool LeasedElsewhere(absl::string_view key) override {
    return Leased(std::string(key));
  }

  void CancelWaits() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
  }

  absl::Status Health() override {
    absl::MutexLock lock(&mu_);
    return fail_all_ ? absl::UnavailableError(name_ + " is down")
                     : absl::OkStatus();
  }

  StoreStats Stats() override {
    absl::MutexLock lock(&mu_);
    StoreStats s;
    s.hits = hits_;
    s.misses = misses_;
    s.errors = errors_;
    s.entries = static_cast<int64_t>(entries_.size());
    return s;
  }

  // Fault switches.
  void FailAll(bool on) {
    absl::MutexLock lock(&mu_);
    fail_all_ = on;
  }
  void FailGet(bool on) {
    absl::MutexLock lock(&mu_);
    fail_get_ = on;
  }
  void FailPut(bool on) {
    absl::MutexLock lock(&mu_);
    fail_put_ = on;
  }
  // While closed, Put blocks (a slow remote).
  void SetGate(bool open) {
    absl::MutexLock lock(&mu_);
    gate_open_ = open;
  }

  bool Has(const std::string& key) {
    absl::MutexLock lock(&mu_);
    return entries_.count(key) > 0;
  }
  bool Leased(const std::string& key) {
    absl::MutexLock lock(&mu_);
    return leased_.count(key) > 0;
  }

  std::atomic<int> gets{0}, puts{0}, contains{0};

 private:
  class MemoryLease final : public StoreLease {
   public:
    MemoryLease(MemoryStore* s, std::string k) : s_(s), k_(std::move(k)) {}
    ~MemoryLease() override {
      absl::MutexLock lock(&s_->mu_);
      s_->leased_.erase(k_);
    }

   private:
    MemoryStore* s_;
    std::string k_;
  };

  const std::string name_;
  absl::Mutex mu_;
  std::map<std::string, CacheEntry> entries_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> leased_ ABSL_GUARDED_BY(mu_);
  bool fail_all_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_get_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_put_ ABSL_GUARDED_BY(mu_) = false;
  bool gate_open_ ABSL_GUARDED_BY(mu_) = true;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  int64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CACHE_MEMORY_STORE_H_
