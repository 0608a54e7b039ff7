// TieredStore: stores composed in order, fastest first (e.g. the local
// directory, then a remote cache), as ccache's primary and secondary
// storage. It is a Store itself, best-effort like every store.
//
// * Get: asks the tiers in order; a hit in a later tier is written back
//   (backfilled) into every earlier tier: into the first synchronously, into
//   the others in the background.
// * Put: into the first tier synchronously, into every later tier in the
//   background, through one bounded FIFO queue and one writer thread per
//   later tier. A full queue drops the put (counted in put_drops): the entry
//   is still in the first tier.
// * AcquireOrWait: takes the leases of the tiers in order. A tier that
//   reports the entry published ends the wait (nullptr; the entry has been
//   backfilled into the first tier, so Get finds it there). A tier that gives
//   up without the entry (time-out, failure) is skipped: the caller holds
//   the leases of the other tiers. Releasing a tiered lease releases the
//   first tier's at once and a later tier's after the puts queued for that
//   tier before it, so a waiter on that tier sees the entry before the lease
//   goes.
//
// Thread-safe. The destructor lets the writers finish their queues for up to
// `drain_timeout`, then drops what is left (counted).
#ifndef TPJIT_SRC_CACHE_TIERED_STORE_H_
#define TPJIT_SRC_CACHE_TIERED_STORE_H_

#include <atomic>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "src/cache/store.h"

namespace tpjit {

struct TieredStoreOptions {
  size_t max_queued = 256;  // per later tier: puts and lease releases
  absl::Duration drain_timeout = absl::Seconds(5);
};

class TieredStore final : public Store {
 public:
  // REQUIRES: `tiers` is not empty and holds no null.
  TieredStore(std::vector<std::unique_ptr<Store>> tiers,
              TieredStoreOptions options = {});
  ~TieredStore() override;

  std::string Describe() const override;
  std::optional<CacheEntry> Get(absl::string_view key) override;
  // Asks the tiers' Contains in order until one says yes; backfills nothing
  // (a Get that follows does).
  bool Contains(absl::string_view key) override;
  absl::Status Put(const CacheEntry& entry) override;
  absl::Status Remove(absl::string_view key) override;
  std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view key,
                                            absl::Time deadline) override;
  bool LeasedElsewhere(absl::string_view key) override;  // any tier's
  void CancelWaits() override;
  // The first tier's health: later tiers are an optimisation.
  absl::Status Health() override;
  // The first tier's counters; put_drops adds the later tiers' queue drops.
  StoreStats Stats() override;
  std::string dir() const override;

  size_t tier_count() const { return tiers_.size(); }
  Store& tier(size_t i) { return *tiers_[i]; }
  // Counters of tier `i`; put_drops includes its queue's drops.
  StoreStats TierStats(size_t i);
  // Waits until every background queue is empty and idle, or `deadline`;
  // true if they all were.
  bool Flush(absl::Time deadline);

 private:
  struct Task {
    std::optional<CacheEntry> put;
    std::unique_ptr<StoreLease> release;
  };
  struct Writer {
    absl::Mutex mu;
    std::deque<Task> queue ABSL_GUARDED_BY(mu);
    bool busy ABSL_GUARDED_BY(mu) = false;
    bool stopping ABSL_GUARDED_BY(mu) = false;
    absl::Time stop_by ABSL_GUARDED_BY(mu);
    std::atomic<int64_t> drops{0};
    std::thread thread;
  };
  class Lease;

  // Queues `task` for tier `i` (> 0); false (task untouched) if full.
  bool Enqueue(size_t i, Task& task);
  void Backfill(size_t hit_tier, const CacheEntry& entry);
  void RunWriter(size_t i);

  std::vector<std::unique_ptr<Store>> tiers_;
  TieredStoreOptions options_;
  std::vector<std::unique_ptr<Writer>> writers_;  // [0] unused
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_TIERED_STORE_H_
