// Who may write the cache (issue 12): a directory owned by another uid or
// writable by group/other is refused with the fix (or accepted with a
// warning); entries owned by another uid are never served; planted FIFOs
// and symlinks are misses, not hangs.
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/cache/cache.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;
using testing::TestKey;

constexpr int64_t kMe = 1000;
constexpr int64_t kOther = 4242;

// Reports the owner `uid_of[path]` (default kMe) for every path: lets a test
// that runs as any user play "another user wrote this".
class OwnerFileSystem final : public FileSystemWrapper {
 public:
  OwnerFileSystem() : FileSystemWrapper(FileSystem::Default()) {}
  absl::StatusOr<FileInfo> Stat(const std::string& path) override {
    absl::StatusOr<FileInfo> info = target()->Stat(path);
    if (!info.ok()) return info;
    absl::MutexLock lock(&mu_);
    auto it = uid_of_.find(path);
    info->uid = it == uid_of_.end() ? kMe : it->second;
    return info;
  }
  void SetOwner(const std::string& path, int64_t uid) {
    absl::MutexLock lock(&mu_);
    uid_of_[path] = uid;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, int64_t> uid_of_ ABSL_GUARDED_BY(mu_);
};

class CacheTrustTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<Cache>> Open(bool allow_shared = false,
                                              FileSystem* fs = nullptr) {
    CacheOptions o;
    o.fs = fs != nullptr ? fs : &fs_;
    o.trusted_uid = kMe;
    o.allow_shared_dir = allow_shared;
    o.log = [this](absl::string_view line) {
      absl::MutexLock lock(&mu_);
      log_.emplace_back(line);
    };
    return Cache::Open(tmp_.path(), o);
  }
  std::string Log() {
    absl::MutexLock lock(&mu_);
    std::string all;
    for (const auto& l : log_) all += l + "\n";
    return all;
  }

  TempDir tmp_;
  OwnerFileSystem fs_;
  absl::Mutex mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
};

TEST_F(CacheTrustTest, OwnPrivateDirectoryIsAccepted) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  EXPECT_TRUE(Open().ok());
}

TEST_F(CacheTrustTest, WorldWritableDirectoryIsRefusedNamingTheFix) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0777), 0);
  auto cache = Open();
  ASSERT_TRUE(absl::IsFailedPrecondition(cache.status())) << cache.status();
  EXPECT_THAT(std::string(cache.status().message()),
              HasSubstr("chmod go-w " + tmp_.path()));
  EXPECT_THAT(std::string(cache.status().message()), HasSubstr("0777"));
}

TEST_F(CacheTrustTest, GroupWritableDirectoryIsRefused) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0775), 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(Open().status()));
}

TEST_F(CacheTrustTest, SharedDirectoryIsAcceptedWithAWarningWhenAllowed) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 01777), 0);
  auto cache = Open(/*allow_shared=*/true);
  ASSERT_TRUE(cache.ok()) << cache.status();
  EXPECT_THAT(Log(), HasSubstr("WARNING"));
  EXPECT_THAT(Log(), HasSubstr("chmod go-w"));
}

TEST_F(CacheTrustTest, DirectoryOfAnotherUserIsRefusedNamingChown) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  fs_.SetOwner(tmp_.path(), kOther);
  auto cache = Open();
  ASSERT_TRUE(absl::IsFailedPrecondition(cache.status())) << cache.status();
  EXPECT_THAT(std::string(cache.status().message()),
              HasSubstr("chown 1000 " + tmp_.path()));
}

TEST_F(CacheTrustTest, EntryOfAnotherUserIsNeverServed) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  auto cache = *Open();
  ASSERT_TRUE(cache->Put(TestKey(1), "planted", {{"load_checked", "1"}}).ok());
  fs_.SetOwner(tmp_.Sub(TestKey(1)), kOther);  // a valid entry, wrong owner
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(cache->Stats().foreign_entries, 1);
  EXPECT_EQ(cache->Stats().corrupt_entries, 1);
  EXPECT_EQ(cache->Stats().hits, 0);
  EXPECT_TRUE(
      absl::IsPermissionDenied(cache->ReadVerified(TestKey(1)).status()));
  EXPECT_THAT(Log(), HasSubstr("owned by uid 4242"));
  // Our own put replaces it and is served.
  fs_.SetOwner(tmp_.Sub(TestKey(1)), kMe);
  ASSERT_TRUE(cache->Put(TestKey(1), "ours", {}).ok());
  EXPECT_EQ(cache->Get(TestKey(1))->payload, "ours");
}

TEST_F(CacheTrustTest, EntryOfAnotherUserIsNotContained) {
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  auto cache = *Open();
  ASSERT_TRUE(cache->Put(TestKey(1), "planted", {}).ok());
  EXPECT_TRUE(cache->Contains(TestKey(1)));
  fs_.SetOwner(tmp_.Sub(TestKey(1)), kOther);
  EXPECT_FALSE(cache->Contains(TestKey(1)));
}

TEST_F(CacheTrustTest, RealFileOfAnotherUserIsNeverServed) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown a file";
  CacheOptions o;
  o.trusted_uid = 0;
  o.log = [](absl::string_view) {};
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0755), 0);
  auto cache = *Cache::Open(tmp_.path(), o);
  ASSERT_TRUE(cache->Put(TestKey(1), "planted", {}).ok());
  ASSERT_EQ(chown(tmp_.Sub(TestKey(1)).c_str(), 65534, 65534), 0);
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());
  EXPECT_EQ(cache->Stats().foreign_entries, 1);
}

TEST_F(CacheTrustTest, PlantedFifoOrSymlinkIsAMissNotAHang) {
  CacheOptions o;
  o.log = [](absl::string_view) {};
  auto cache = *Cache::Open(tmp_.path(), o);
  ASSERT_TRUE(cache->Put(TestKey(9), "target", {}).ok());
  ASSERT_EQ(mkfifo(tmp_.Sub(TestKey(1)).c_str(), 0644), 0);
  ASSERT_EQ(symlink(tmp_.Sub(TestKey(9)).c_str(), tmp_.Sub(TestKey(2)).c_str()),
            0);
  EXPECT_FALSE(cache->Get(TestKey(1)).has_value());  // would block on open
  EXPECT_FALSE(cache->Get(TestKey(2)).has_value());
}

}  // namespace
}  // namespace tpjit
