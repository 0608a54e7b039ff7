// Size cap and least-recently-used eviction: what goes first, and what never
// goes (leased, being read / pinned, recently accessed entries).
#include "gtest/gtest.h"
#include "src/cache/cache.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::HookClock;
using testing::TempDir;
using testing::TestKey;

constexpr int kPayload = 1000;  // each entry is ~1.1 KB on disk

class EvictionTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> OpenCache(int64_t max_bytes,
                                   absl::Duration grace = absl::ZeroDuration(),
                                   FileSystem* fs = nullptr) {
    CacheOptions o;
    o.max_bytes = max_bytes;
    o.eviction_grace = grace;
    o.clock = &clock_;
    o.fs = fs;
    o.log = [](absl::string_view) {};
    return *Cache::Open(tmp_.path(), o);
  }
  // Puts keys [0, n), one second apart.
  void Fill(Cache& cache, int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_OK(cache.Put(TestKey(i), std::string(kPayload, 'x'), {}));
      clock_.Advance(absl::Seconds(1));
    }
  }
  bool Present(int i) {
    return FileSystem::Default()->Stat(tmp_.Sub(TestKey(i))).ok();
  }

  TempDir tmp_;
  HookClock clock_;
};

TEST_F(EvictionTest, OldestGoFirstAndTheCapHolds) {
  auto cache = OpenCache(5500);
  Fill(*cache, 10);
  CacheStats s = cache->Stats();
  EXPECT_LE(s.bytes, 5500);
  EXPECT_GT(s.evictions, 0);
  EXPECT_EQ(s.entries, 10 - s.evictions);
  EXPECT_FALSE(Present(0));
  EXPECT_TRUE(Present(9));
  EXPECT_TRUE(Present(8));
}

TEST_F(EvictionTest, AHitMakesAnEntryRecent) {
  auto cache = OpenCache(0);  // no cap while filling
  Fill(*cache, 6);
  ASSERT_TRUE(cache->Get(TestKey(0)).has_value());  // 0 is now the newest
  clock_.Advance(absl::Seconds(1));
  absl::StatusOr<CacheScanReport> r = cache->Gc(absl::Hours(1), 3500);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->evicted, 3);
  EXPECT_TRUE(Present(0));
  EXPECT_FALSE(Present(1));
  EXPECT_FALSE(Present(2));
  EXPECT_FALSE(Present(3));
  EXPECT_TRUE(Present(4));
}

TEST_F(EvictionTest, LeasedEntriesAreNeverEvicted) {
  auto cache = OpenCache(0);
  Fill(*cache, 4);
  Lease lease = *cache->TryAcquireLease(TestKey(0));  // being recompiled
  ASSERT_OK(cache->Gc(absl::Hours(1), 0).status());
  EXPECT_TRUE(Present(0));
  EXPECT_FALSE(Present(1));
  lease.Release();
  ASSERT_OK(cache->Gc(absl::Hours(1), 0).status());
  EXPECT_FALSE(Present(0));
}

TEST_F(EvictionTest, PinnedEntriesAreNeverEvicted) {
  auto cache = OpenCache(0);
  Fill(*cache, 3);
  {
    Cache::Pin pin = cache->PinEntry(TestKey(0));
    ASSERT_OK(cache->Gc(absl::Hours(1), 0).status());
    EXPECT_TRUE(Present(0));
    EXPECT_FALSE(Present(2));
  }
  ASSERT_OK(cache->Gc(absl::Hours(1), 0).status());
  EXPECT_FALSE(Present(0));
}

TEST_F(EvictionTest, AnEntryBeingReadIsNotEvicted) {
  // An eviction (from another thread's put) runs while a reader is inside
  // Get(): the reader's pin protects the entry.
  auto cache = OpenCache(0);
  Fill(*cache, 3);
  std::optional<CacheEntry> got;
  {
    Cache::Pin reader = cache->PinEntry(TestKey(0));  // what Get() holds
    ASSERT_OK(cache->Gc(absl::Hours(1), 0).status());
    EXPECT_TRUE(Present(0));
    got = cache->Get(TestKey(0));
  }
  EXPECT_TRUE(got.has_value());
}

TEST_F(EvictionTest, RecentlyAccessedEntriesAreSpared) {
  auto cache = OpenCache(0, absl::Milliseconds(10500));
  Fill(*cache, 20);  // keys 0..9 are 11-20 s old, 10..19 1-10 s
  absl::StatusOr<CacheScanReport> r = cache->Gc(absl::Hours(1), 0);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->evicted, 10);
  EXPECT_FALSE(Present(9));
  EXPECT_TRUE(Present(10));
}

TEST_F(EvictionTest, AnEntryReadByAnotherProcessIsRecent) {
  auto cache = OpenCache(0);
  Fill(*cache, 2);
  auto other = OpenCache(0);  // another process sharing the directory
  clock_.Advance(absl::Seconds(5));
  ASSERT_TRUE(other->Get(TestKey(0)).has_value());
  ASSERT_OK(cache->Gc(absl::Hours(1), 1200).status());
  EXPECT_TRUE(Present(0));
  EXPECT_FALSE(Present(1));
}

}  // namespace
}  // namespace tpjit
