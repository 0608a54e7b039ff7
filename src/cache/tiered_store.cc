#include "src/cache/tiered_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace tpjit {

// Holds one lease per tier that granted one; see the header for the order
// of release.
class TieredStore::Lease final : public StoreLease {
 public:
  Lease(TieredStore* store, std::vector<std::unique_ptr<StoreLease>> held)
      : store_(store), held_(std::move(held)) {}
  ~Lease() override {
    if (!held_.empty()) held_[0].reset();
    for (size_t i = 1; i < held_.size(); ++i) {
      if (!held_[i]) continue;
      Task task;
      task.release = std::move(held_[i]);
      if (!store_->Enqueue(i, task)) task.release.reset();  // full: now
    }
  }

 private:
  TieredStore* store_;
  std::vector<std::unique_ptr<StoreLease>> held_;  // [i]: tier i's or null
};

TieredStore::TieredStore(std::vector<std::unique_ptr<Store>> tiers,
                         TieredStoreOptions options)
    : tiers_(std::move(tiers)), options_(options) {
  writers_.resize(tiers_.size());
  for (size_t i = 1; i < tiers_.size(); ++i) {
    writers_[i] = std::make_unique<Writer>();
    writers_[i]->thread = std::thread([this, i] { RunWriter(i); });
  }
}

TieredStore::~TieredStore() {
  for (size_t i = 1; i < writers_.size(); ++i) {
    absl::MutexLock lock(&writers_[i]->mu);
    writers_[i]->stopping = true;
    writers_[i]->stop_by = absl::Now() + options_.drain_timeout;
  }
  for (size_t i = 1; i < writers_.size(); ++i) writers_[i]->thread.join();
}

std::string TieredStore::Describe() const {
  std::string out;
  for (const auto& t : tiers_) {
    absl::StrAppend(&out, out.empty() ? "" : ", then ", t->Describe());
  }
  return out;
}

std::optional<CacheEntry> TieredStore::Get(absl::string_view key) {
  for (size_t i = 0; i < tiers_.size(); ++i) {
    std::optional<CacheEntry> e = tiers_[i]->Get(key);
    if (!e) continue;
    Backfill(i, *e);
    return e;
  }
  return std::nullopt;
}

bool TieredStore::Contains(absl::string_view key) {
  for (auto& t : tiers_) {
    if (t->Contains(key)) return true;
  }
  return false;
}

void TieredStore::Backfill(size_t hit_tier, const CacheEntry& entry) {
  if (hit_tier == 0) return;
  tiers_[0]->Put(entry).IgnoreError();  // logged and counted by the tier
  for (size_t j = 1; j < hit_tier; ++j) {
    Task task;
    task.put = entry;
    Enqueue(j, task);
  }
}

absl::Status TieredStore::Put(const CacheEntry& entry) {
  absl::Status first = tiers_[0]->Put(entry);
  for (size_t i = 1; i < tiers_.size(); ++i) {
    Task task;
    task.put = entry;
    Enqueue(i, task);
  }
  return first;
}

absl::Status TieredStore::Remove(absl::string_view key) {
  absl::Status first;
  for (auto& t : tiers_) first.Update(t->Remove(key));
  return first;
}

std::unique_ptr<StoreLease> TieredStore::AcquireOrWait(absl::string_view key,
                                                       absl::Time deadline) {
  std::vector<std::unique_ptr<StoreLease>> held(tiers_.size());
  bool any = false;
  for (size_t i = 0; i < tiers_.size(); ++i) {
    held[i] = tiers_[i]->AcquireOrWait(key, deadline);
    if (held[i]) {
      any = true;
      continue;
    }
    // Published in this tier (or one after it): backfilled by Get.
    if (i > 0 && Get(key)) return nullptr;
    if (i == 0) return nullptr;  // the first tier's answer is final
  }
  if (!any) return nullptr;
  return std::make_unique<Lease>(this, std::move(held));
}

bool TieredStore::LeasedElsewhere(absl::string_view key) {
  for (auto& t : tiers_) {
    if (t->LeasedElsewhere(key)) return true;
  }
  return false;
}

void TieredStore::CancelWaits() {
  for (auto& t : tiers_) t->CancelWaits();
}

absl::Status TieredStore::Health() { return tiers_[0]->Health(); }

StoreStats TieredStore::Stats() {
  StoreStats s = tiers_[0]->Stats();
  for (size_t i = 1; i < writers_.size(); ++i) {
    s.put_drops += writers_[i]->drops.load();
  }
  return s;
}

StoreStats TieredStore::TierStats(size_t i) {
  StoreStats s = tiers_[i]->Stats();
  if (i > 0) s.put_drops += writers_[i]->drops.load();
  return s;
}

std::string TieredStore::dir() const {
  for (const auto& t : tiers_) {
    if (std::string d = t->dir(); !d.empty()) return d;
  }
  return "";
}

bool TieredStore::Enqueue(size_t i, Task& task) {
  Writer& w = *writers_[i];
  absl::MutexLock lock(&w.mu);
  if (w.stopping || w.queue.size() >= options_.max_queued) {
    if (task.put) w.drops.fetch_add(1);
    return false;
  }
  w.queue.push_back(std::move(task));
  return true;
}

bool TieredStore::Flush(absl::Time deadline) {
  for (size_t i = 1; i < writers_.size(); ++i) {
    Writer& w = *writers_[i];
    absl::MutexLock lock(&w.mu);
    auto idle = [&w]() ABSL_SHARED_LOCKS_REQUIRED(w.mu) {
      return w.queue.empty() && !w.busy;
    };
    if (!w.mu.AwaitWithDeadline(absl::Condition(&idle), deadline)) {
      return false;
    }
  }
  return true;
}

void TieredStore::RunWriter(size_t i) {
  Writer& w = *writers_[i];
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&w.mu);
      auto ready = [&w]() ABSL_SHARED_LOCKS_REQUIRED(w.mu) {
        return !w.queue.empty() || w.stopping;
      };
      w.mu.Await(absl::Condition(&ready));
      if (w.queue.empty()) return;  // stopping, drained
      if (w.stopping && absl::Now() > w.stop_by) {
        for (const Task& t : w.queue) w.drops.fetch_add(t.put ? 1 : 0);
        w.queue.clear();  // leases are released as the tasks go
        return;
      }
      task = std::move(w.queue.front());
      w.queue.pop_front();
      w.busy = true;
    }
    if (task.put) tiers_[i]->Put(*task.put).IgnoreError();  // counted there
    task.release.reset();
    absl::MutexLock lock(&w.mu);
    w.busy = false;
  }
}

}  // namespace tpjit
