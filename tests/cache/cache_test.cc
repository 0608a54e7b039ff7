// Cache entries: put/get, checksums, corruption handling, and the file system
// faults a writer can meet (no space, crash before rename, torn file, rename
// races). Leases: lease_test.cc; eviction: eviction_test.cc.
#include "src/cache/cache.h"

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/cache/local_store.h"
#include "tests/cache/fault_injecting_file_system.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::CountTemps;
using testing::FaultInjectingFileSystem;
using testing::FsOp;
using ::testing::HasSubstr;
using testing::HookClock;
using testing::TempDir;
using testing::TestKey;

class CacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> OpenCache(FileSystem* fs = nullptr) {
    CacheOptions o;
    o.fs = fs != nullptr ? fs : &fs_;
    o.clock = &clock_;
    o.log = [this](absl::string_view line) {
      absl::MutexLock lock(&log_mu_);
      log_.emplace_back(line);
    };
    auto cache = Cache::Open(tmp_.path(), o);
    EXPECT_OK(cache.status());
    return cache.ok() ? *std::move(cache) : nullptr;
  }
  std::string Log() {
    absl::MutexLock lock(&log_mu_);
    std::string all;
    for (const auto& l : log_) all += l + "\n";
    return all;
  }
  std::string EntryPath(int i) { return tmp_.Sub(TestKey(i)); }

  TempDir tmp_;
  HookClock clock_;
  FaultInjectingFileSystem fs_;
  absl::Mutex log_mu_;
  std::vector<std::string> log_;
};

TEST_F(CacheTest, PutThenGet) {
  auto cache = OpenCache();
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  ASSERT_OK(cache->Put(TestKey(1), "cubin", {{"family", "bf16_gemm_nt"}}));
  std::optional<CacheEntry> e = cache->Get(TestKey(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->payload, "cubin");
  EXPECT_EQ(e->metadata.at("family"), "bf16_gemm_nt");
  CacheStats s = cache->Stats();
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 1);
  EXPECT_EQ(s.entries, 1);
  EXPECT_GT(s.bytes, 5);
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(CacheTest, ReopenSeesEntriesAndStats) {
  ASSERT_OK(OpenCache()->Put(TestKey(1), "a", {}));
  auto cache = OpenCache();
  EXPECT_EQ(cache->Stats().entries, 1);
  EXPECT_TRUE(cache->Get(TestKey(1)).has_value());
}

TEST_F(CacheTest, InvalidKeysAreRejectedNotFatal) {
  auto cache = OpenCache();
  EXPECT_TRUE(absl::IsInvalidArgument(cache->Put("../../etc/passwd", "x", {})));
  EXPECT_FALSE(cache->Get("../../etc/passwd").has_value());
  EXPECT_EQ(cache->Stats().put_failures, 1);
}

TEST_F(CacheTest, CorruptEntryIsAMissMovedAsideCountedLogged) {
  auto cache = OpenCache();
  ASSERT_OK(cache->Put(TestKey(1), std::string(1000, 'c'), {}));
  std::string bytes = *FileSystem::Default()->ReadFile(EntryPath(1));
  bytes[600] ^= 0x40;  // one flipped bit in the payload
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), EntryPath(1), bytes, false));

  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(cache->Stats().corrupt_entries, 1);
  EXPECT_EQ(cache->Stats().misses, 1);
  EXPECT_TRUE(absl::IsNotFound(fs_.Stat(EntryPath(1)).status()));
  EXPECT_EQ(fs_.ListDir(tmp_.Sub("corrupt"))->size(), 1u);
  EXPECT_THAT(Log(), HasSubstr("checksum mismatch"));
  // A later put heals the key.
  ASSERT_OK(cache->Put(TestKey(1), "good", {}));
  EXPECT_EQ(cache->Get(TestKey(1))->payload, "good");
}

TEST_F(CacheTest, TornFileIsDetectedOnRead) {
  auto cache = OpenCache();
  fs_.TearWrites(200, TestKey(1));  // the disk keeps 200 bytes, says OK
  ASSERT_OK(cache->Put(TestKey(1), std::string(5000, 'p'), {}));
  fs_.Reset();
  EXPECT_EQ(fs_.Stat(EntryPath(1))->size, 200);
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(cache->Stats().corrupt_entries, 1);
  EXPECT_THAT(Log(), HasSubstr("length mismatch"));
}

TEST_F(CacheTest, NoSpaceDuringWriteLeavesOldEntryAndNoTemp) {
  auto cache = OpenCache();
  ASSERT_OK(cache->Put(TestKey(1), "old", {}));
  fs_.NoSpaceAfter(100, ".tmp-");
  absl::Status s = cache->Put(TestKey(1), std::string(4096, 'n'), {});
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  fs_.Reset();
  EXPECT_EQ(cache->Get(TestKey(1))->payload, "old");
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
  EXPECT_EQ(cache->Stats().put_failures, 1);
  EXPECT_THAT(Log(), HasSubstr("No space left"));
}

TEST_F(CacheTest, NoSpaceForANewKeyLeavesNothing) {
  auto cache = OpenCache();
  fs_.NoSpaceAfter(0, ".tmp-");
  EXPECT_FALSE(cache->Put(TestKey(2), "x", {}).ok());
  fs_.Reset();
  EXPECT_FALSE(cache->Get(TestKey(2)).has_value());
  EXPECT_EQ(fs_.ListDir(tmp_.path())->size(), 0u);
}

TEST_F(CacheTest, FsyncFailureFailsThePutCleanly) {
  auto cache = OpenCache();
  fs_.FailOp(FsOp::kSync, absl::DataLossError("fsync: Input/output error"));
  EXPECT_FALSE(cache->Put(TestKey(1), "x", {}).ok());
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(CacheTest, CrashBetweenWriteAndRenameLeavesOnlyATemp) {
  auto cache = OpenCache();
  fs_.CrashAfter(FsOp::kClose, ".tmp-");  // dies right before the rename
  EXPECT_TRUE(absl::IsAborted(cache->Put(TestKey(1), "x", {})));
  fs_.Reset();  // "restart"
  auto reopened = OpenCache();
  EXPECT_FALSE(reopened->Get(TestKey(1)).has_value());
  EXPECT_EQ(CountTemps(tmp_.path()), 1);
  // A fresh temp survives a cleanup that only takes old ones...
  EXPECT_EQ(*reopened->CleanupTemps(absl::Hours(1)), 0);
  // ... and goes once it is old enough.
  clock_.Advance(absl::Hours(2));
  EXPECT_EQ(*reopened->CleanupTemps(absl::Hours(1)), 1);
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(CacheTest, RenameRaceWithAnotherWriterLeavesOneWholeEntry) {
  auto cache = OpenCache();
  auto other = OpenCache(FileSystem::Default());
  // Another process publishes its (different) entry just before our rename.
  fs_.SetBeforeRename([&](const std::string&, const std::string& to) {
    if (to == EntryPath(1)) {
      ASSERT_OK(other->Put(TestKey(1), "theirs", {}));
    }
  });
  ASSERT_OK(cache->Put(TestKey(1), "ours", {{"m", "1"}}));
  fs_.Reset();
  std::optional<CacheEntry> e = cache->Get(TestKey(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->payload, "ours");
  EXPECT_EQ(e->metadata.at("m"), "1");
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(CacheTest, RenameRaceWithTempCleanupFailsThePutOnly) {
  auto cache = OpenCache();
  // A janitor elsewhere removes our temp file just before we rename it.
  fs_.SetBeforeRename([&](const std::string& from, const std::string&) {
    FileSystem::Default()->Unlink(from).IgnoreError();
  });
  EXPECT_TRUE(absl::IsNotFound(cache->Put(TestKey(1), "x", {})));
  fs_.Reset();
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(cache->Stats().put_failures, 1);
  EXPECT_EQ(fs_.ListDir(tmp_.path())->size(), 0u);
}

TEST_F(CacheTest, ReadErrorsAreMissesNotFailures) {
  auto cache = OpenCache();
  ASSERT_OK(cache->Put(TestKey(1), "x", {}));
  fs_.FailOp(FsOp::kRead, absl::UnavailableError("read: Stale file handle"));
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(cache->Stats().read_failures, 1);
  EXPECT_EQ(cache->Stats().corrupt_entries, 0);
  EXPECT_TRUE(cache->Get(TestKey(1)).has_value());
}

// Contains: one stat, no read; no hit or miss counted, access time kept.
TEST_F(CacheTest, ContainsStatsTheEntryWithoutReadingIt) {
  auto cache = OpenCache();
  EXPECT_FALSE(cache->Contains(TestKey(1)));
  ASSERT_OK(cache->Put(TestKey(1), "cubin", {}));
  const absl::Time mtime = fs_.Stat(EntryPath(1))->mtime;
  const int reads = fs_.Count(FsOp::kRead), stats = fs_.Count(FsOp::kStat);
  EXPECT_TRUE(cache->Contains(TestKey(1)));
  EXPECT_FALSE(cache->Contains(TestKey(2)));
  EXPECT_EQ(fs_.Count(FsOp::kRead), reads);
  EXPECT_EQ(fs_.Count(FsOp::kStat), stats + 2);
  EXPECT_EQ(fs_.Stat(EntryPath(1))->mtime, mtime);
  CacheStats s = cache->Stats();
  EXPECT_EQ(s.hits, 0);
  EXPECT_EQ(s.misses, 0);
  EXPECT_EQ(s.read_failures, 0);
  EXPECT_FALSE(cache->Contains("../../etc/passwd"));
  // Through the Store interface (LocalStore) as the daemon asks it.
  std::unique_ptr<Store> store = NewLocalStore(std::move(cache));
  EXPECT_TRUE(store->Contains(TestKey(1)));
  EXPECT_FALSE(store->Contains(TestKey(2)));
  EXPECT_EQ(fs_.Count(FsOp::kRead), reads);
}

// A file too short for a header is not contained; a whole-sized corrupt one
// is (the stat cannot tell) until Get moves it aside.
TEST_F(CacheTest, ContainsRefusesTruncatedEntriesOnly) {
  auto cache = OpenCache();
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), EntryPath(1),
                           std::string(kCacheEntryHeaderSize - 1, 'x'), false));
  EXPECT_FALSE(cache->Contains(TestKey(1)));
  ASSERT_OK(cache->Put(TestKey(2), std::string(1000, 'c'), {}));
  std::string bytes = *FileSystem::Default()->ReadFile(EntryPath(2));
  bytes[600] ^= 0x40;
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), EntryPath(2), bytes, false));
  EXPECT_TRUE(cache->Contains(TestKey(2)));
  EXPECT_FALSE(cache->Get(TestKey(2)).has_value());
  EXPECT_FALSE(cache->Contains(TestKey(2)));  // moved aside
}

TEST_F(CacheTest, ContainsStatErrorsAreCountedLoggedAndFalse) {
  auto cache = OpenCache();
  ASSERT_OK(cache->Put(TestKey(1), "x", {}));
  fs_.FailOp(FsOp::kStat, absl::UnavailableError("stat: Stale file handle"),
             TestKey(1));
  EXPECT_FALSE(cache->Contains(TestKey(1)));
  EXPECT_EQ(cache->Stats().read_failures, 1);
  EXPECT_THAT(Log(), HasSubstr("Stale file handle"));
  EXPECT_TRUE(cache->Contains(TestKey(1)));
}

TEST_F(CacheTest, CorruptReplacedByAGoodEntryMeanwhileIsPutBack) {
  auto cache = OpenCache();
  ASSERT_OK(
      WriteWholeFile(*FileSystem::Default(), EntryPath(1), "garbage", false));
  auto other = OpenCache(FileSystem::Default());
  // Between our read and our move-aside, another writer heals the entry.
  fs_.SetBeforeRename([&](const std::string& from, const std::string&) {
    if (from == EntryPath(1)) {
      ASSERT_OK(other->Put(TestKey(1), "good", {}));
    }
  });
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  fs_.Reset();
  EXPECT_EQ(cache->Get(TestKey(1))->payload, "good");
}

TEST_F(CacheTest, ProbeWritable) {
  auto cache = OpenCache();
  EXPECT_TRUE(cache->IsWritable());
  fs_.FailOp(FsOp::kOpen, absl::PermissionDeniedError("open: read-only fs"));
  absl::Status s = cache->ProbeWritable();
  EXPECT_TRUE(absl::IsPermissionDenied(s)) << s;
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

TEST_F(CacheTest, VerifyFindsAndRepairsCorruption) {
  auto cache = OpenCache();
  for (int i = 0; i < 5; ++i) ASSERT_OK(cache->Put(TestKey(i), "p", {}));
  ASSERT_OK(WriteWholeFile(fs_, EntryPath(3), "junk", false));
  absl::StatusOr<CacheScanReport> r = cache->Verify(false);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->entries, 5);
  ASSERT_EQ(r->corrupt.size(), 1u);
  EXPECT_EQ(r->corrupt[0].first, TestKey(3));
  ASSERT_OK(cache->Verify(true).status());
  EXPECT_TRUE(cache->Verify(false)->corrupt.empty());
  EXPECT_EQ(cache->Verify(false)->entries, 4);
}

// Readers racing writers of the same keys only ever see whole entries.
TEST_F(CacheTest, ConcurrentReadersNeverSeeTornEntries) {
  auto cache = OpenCache(FileSystem::Default());
  std::atomic<bool> stop{false};
  std::atomic<int> hits{0}, bad{0}, writers_left{2};
  std::vector<std::thread> threads;
  for (int w = 0; w < 2; ++w) {
    threads.emplace_back([&, w] {
      for (int n = 0; n < 60; ++n) {
        std::string gen = std::to_string(w * 100000 + n);
        std::string payload(20000 + (n % 7) * 3000, static_cast<char>('a' + w));
        payload += gen;
        cache->Put(TestKey(n % 3), payload, {{"gen", gen}}).IgnoreError();
      }
      if (--writers_left == 0) stop = true;
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (!stop) {
        for (int k = 0; k < 3; ++k) {
          std::optional<CacheEntry> e = cache->Get(TestKey(k));
          if (!e) continue;
          ++hits;
          const std::string& gen = e->metadata.at("gen");
          if (!absl::EndsWith(e->payload, gen)) ++bad;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_GT(hits, 0);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(cache->Stats().corrupt_entries, 0);
  EXPECT_EQ(CountTemps(tmp_.path()), 0);
}

}  // namespace
}  // namespace tpjit
