#include "src/cache/tiered_store.h"

#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/cache/memory_store.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::MemoryStore;
using testing::TestKey;

CacheEntry Entry(int i) {
  return CacheEntry{
      TestKey(i), {{"label", absl::StrCat("k", i)}}, absl::StrCat("cubin ", i)};
}

// Forwards to a store owned by the test (two tiered stores share it: two
// nodes and one remote cache).
class SharedStore final : public Store {
 public:
  explicit SharedStore(Store* s) : s_(s) {}
  std::string Describe() const override { return s_->Describe(); }
  std::optional<CacheEntry> Get(absl::string_view k) override {
    return s_->Get(k);
  }
  bool Contains(absl::string_view k) override { return s_->Contains(k); }
  absl::Status Put(const CacheEntry& e) override { return s_->Put(e); }
  absl::Status Remove(absl::string_view k) override { return s_->Remove(k); }
  std::unique_ptr<StoreLease> AcquireOrWait(absl::string_view k,
                                            absl::Time d) override {
    return s_->AcquireOrWait(k, d);
  }
  bool LeasedElsewhere(absl::string_view k) override {
    return s_->LeasedElsewhere(k);
  }
  void CancelWaits() override { s_->CancelWaits(); }
  absl::Status Health() override { return s_->Health(); }
  StoreStats Stats() override { return s_->Stats(); }

 private:
  Store* s_;
};

struct Tiers {
  MemoryStore* local;
  MemoryStore* remote;
  std::unique_ptr<TieredStore> store;
};

Tiers TwoTiers(TieredStoreOptions options = {}) {
  auto local = std::make_unique<MemoryStore>("local");
  auto remote = std::make_unique<MemoryStore>("remote");
  Tiers t{local.get(), remote.get(), nullptr};
  std::vector<std::unique_ptr<Store>> v;
  v.push_back(std::move(local));
  v.push_back(std::move(remote));
  t.store = std::make_unique<TieredStore>(std::move(v), options);
  return t;
}

const absl::Duration kWait = absl::Seconds(20);

TEST(TieredStoreTest, GetAsksTiersInOrderAndBackfillsEarlierOnes) {
  std::vector<std::unique_ptr<Store>> v;
  auto a = std::make_unique<MemoryStore>("a");
  auto b = std::make_unique<MemoryStore>("b");
  auto c = std::make_unique<MemoryStore>("c");
  MemoryStore *pa = a.get(), *pb = b.get(), *pc = c.get();
  v.push_back(std::move(a));
  v.push_back(std::move(b));
  v.push_back(std::move(c));
  TieredStore store(std::move(v));
  EXPECT_EQ(store.Describe(), "a, then b, then c");
  ASSERT_OK(pc->Put(Entry(1)));

  std::optional<CacheEntry> got = store.Get(TestKey(1));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->payload, "cubin 1");
  EXPECT_TRUE(pa->Has(TestKey(1)));  // the first tier at once
  ASSERT_TRUE(store.Flush(absl::Now() + kWait));
  EXPECT_TRUE(pb->Has(TestKey(1)));  // the middle one in the background

  const int c_gets = pc->gets.load();
  ASSERT_TRUE(store.Get(TestKey(1)).has_value());
  EXPECT_EQ(pc->gets.load(), c_gets);  // served by the first tier
  EXPECT_FALSE(store.Get(TestKey(2)).has_value());
}

// Contains asks the tiers' Contains in order, stops at the first yes, and
// neither reads (Get) nor backfills.
TEST(TieredStoreTest, ContainsAsksTiersInOrderWithoutGetOrBackfill) {
  Tiers t = TwoTiers();
  ASSERT_OK(t.local->Put(Entry(1)));
  ASSERT_OK(t.remote->Put(Entry(2)));
  EXPECT_TRUE(t.store->Contains(TestKey(1)));
  EXPECT_EQ(t.remote->contains.load(), 0);  // the first tier answered
  EXPECT_TRUE(t.store->Contains(TestKey(2)));
  EXPECT_FALSE(t.store->Contains(TestKey(3)));
  EXPECT_EQ(t.local->contains.load(), 3);
  EXPECT_EQ(t.remote->contains.load(), 2);
  EXPECT_EQ(t.local->gets.load() + t.remote->gets.load(), 0);
  EXPECT_FALSE(t.local->Has(TestKey(2)));  // not backfilled
  ASSERT_TRUE(t.store->Flush(absl::Now() + kWait));
  EXPECT_EQ(t.local->puts.load(), 1);
}

TEST(TieredStoreTest, ContainsBypassesAFailingTier) {
  Tiers t = TwoTiers();
  ASSERT_OK(t.local->Put(Entry(1)));
  ASSERT_OK(t.remote->Put(Entry(2)));
  t.remote->FailAll(true);
  EXPECT_TRUE(t.store->Contains(TestKey(1)));
  EXPECT_FALSE(t.store->Contains(TestKey(2)));  // the remote is down
  EXPECT_GT(t.remote->Stats().errors, 0);
  t.remote->FailAll(false);
  t.local->FailAll(true);
  EXPECT_TRUE(t.store->Contains(TestKey(2)));  // the local one is down
}

TEST(TieredStoreTest, PutWritesTheFirstTierAtOnceAndLaterOnesInBackground) {
  Tiers t = TwoTiers();
  t.remote->SetGate(false);  // a slow remote
  ASSERT_OK(t.store->Put(Entry(1)));
  EXPECT_TRUE(t.local->Has(TestKey(1)));
  EXPECT_FALSE(t.remote->Has(TestKey(1)));
  EXPECT_TRUE(t.store->Get(TestKey(1)).has_value());
  t.remote->SetGate(true);
  ASSERT_TRUE(t.store->Flush(absl::Now() + kWait));
  EXPECT_TRUE(t.remote->Has(TestKey(1)));
}

TEST(TieredStoreTest, AFullQueueDropsLaterTierPutsAndCountsThem) {
  TieredStoreOptions o;
  o.max_queued = 2;
  Tiers t = TwoTiers(o);
  t.remote->SetGate(false);
  for (int i = 0; i < 10; ++i) ASSERT_OK(t.store->Put(Entry(i)));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(t.local->Has(TestKey(i)));
  // The writer holds at most one put, the queue two: 7 or 8 dropped.
  const int64_t drops = t.store->TierStats(1).put_drops;
  EXPECT_GE(drops, 7);
  EXPECT_LE(drops, 8);
  EXPECT_EQ(t.store->Stats().put_drops, drops);
  t.remote->SetGate(true);
  ASSERT_TRUE(t.store->Flush(absl::Now() + kWait));
  EXPECT_EQ(t.remote->Stats().entries, 10 - drops);
}

// The contract every caller relies on: a failing tier is a miss or a
// skipped put, never an error that fails a compile.
TEST(TieredStoreTest, AFailingLaterTierIsBypassed) {
  Tiers t = TwoTiers();
  t.remote->FailAll(true);
  ASSERT_OK(t.store->Put(Entry(1)));
  EXPECT_TRUE(t.store->Get(TestKey(1)).has_value());
  EXPECT_FALSE(t.store->Get(TestKey(2)).has_value());
  ASSERT_OK(t.store->Health());
  // The remote gives up its lease: the caller still holds the local one.
  std::unique_ptr<StoreLease> lease =
      t.store->AcquireOrWait(TestKey(3), absl::Now() + kWait);
  ASSERT_NE(lease, nullptr);
  EXPECT_TRUE(t.local->Leased(TestKey(3)));
  lease.reset();
  EXPECT_FALSE(t.local->Leased(TestKey(3)));
  ASSERT_TRUE(t.store->Flush(absl::Now() + kWait));
  EXPECT_GT(t.store->TierStats(1).errors, 0);
}

TEST(TieredStoreTest, AFailingFirstTierStillFeedsTheLaterOnes) {
  Tiers t = TwoTiers();
  t.local->FailAll(true);
  EXPECT_FALSE(t.store->Put(Entry(1)).ok());  // reported, for the log
  ASSERT_TRUE(t.store->Flush(absl::Now() + kWait));
  EXPECT_TRUE(t.remote->Has(TestKey(1)));
  EXPECT_TRUE(t.store->Get(TestKey(1)).has_value());  // from the remote
  EXPECT_FALSE(t.store->Health().ok());
}

TEST(TieredStoreTest, EntryPublishedInTheFirstTierEndsTheWait) {
  Tiers t = TwoTiers();
  ASSERT_OK(t.local->Put(Entry(1)));
  EXPECT_EQ(t.store->AcquireOrWait(TestKey(1), absl::Now() + kWait), nullptr);
  EXPECT_FALSE(t.remote->Leased(TestKey(1)));
}

// Two nodes share the remote tier. The second node's wait on the remote
// lease ends only once the first node's background put has landed, and
// the entry is then backfilled into the second node's first tier.
TEST(TieredStoreTest, RemoteLeaseIsReleasedAfterTheQueuedPut) {
  MemoryStore remote("remote");
  auto node = [&remote](MemoryStore** local) {
    auto l = std::make_unique<MemoryStore>("local");
    *local = l.get();
    std::vector<std::unique_ptr<Store>> v;
    v.push_back(std::move(l));
    v.push_back(std::make_unique<SharedStore>(&remote));
    return std::make_unique<TieredStore>(std::move(v));
  };
  MemoryStore *local1, *local2;
  auto node1 = node(&local1);
  auto node2 = node(&local2);
  std::unique_ptr<StoreLease> lease =
      node1->AcquireOrWait(TestKey(1), absl::Now() + kWait);
  ASSERT_NE(lease, nullptr);
  ASSERT_TRUE(remote.Leased(TestKey(1)));
  EXPECT_TRUE(node2->LeasedElsewhere(TestKey(1)));  // a hint to do other work
  EXPECT_FALSE(node2->LeasedElsewhere(TestKey(2)));

  std::atomic<bool> done{false};
  std::unique_ptr<StoreLease> second;
  std::thread waiter([&] {
    second = node2->AcquireOrWait(TestKey(1), absl::Now() + kWait);
    done.store(true);
  });
  remote.SetGate(false);
  ASSERT_OK(node1->Put(Entry(1)));
  lease.reset();
  EXPECT_FALSE(local1->Leased(TestKey(1)));  // the local one at once
  EXPECT_TRUE(remote.Leased(TestKey(1)));    // the remote one after the put
  EXPECT_FALSE(done.load());
  remote.SetGate(true);
  waiter.join();
  EXPECT_EQ(second, nullptr);  // published: no compile on node 2
  EXPECT_TRUE(local2->Has(TestKey(1)));
  EXPECT_FALSE(local2->Leased(TestKey(1)));
}

TEST(TieredStoreTest, CancelWaitsReachesEveryTier) {
  Tiers t = TwoTiers();
  auto held = t.remote->AcquireOrWait(TestKey(1), absl::Now() + kWait);
  ASSERT_NE(held, nullptr);
  t.store->CancelWaits();
  const absl::Time start = absl::Now();
  EXPECT_EQ(t.store->AcquireOrWait(TestKey(1), start + kWait), nullptr);
  EXPECT_EQ(t.remote->AcquireOrWait(TestKey(2), start + kWait), nullptr);
  EXPECT_LT(absl::Now() - start, kWait);
}

}  // namespace
}  // namespace tpjit
