// Export/import archives: round trip, and rejection of truncated, tampered
// or otherwise bad archives with the cache left unchanged.
#include "src/cache/archive.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/cache/byte_io.h"
#include "tests/cache/fault_injecting_file_system.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::DirListing;
using testing::FaultInjectingFileSystem;
using testing::FsOp;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TestKey;

class ArchiveTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> OpenCache(const std::string& dir,
                                   FileSystem* fs = nullptr) {
    CacheOptions o;
    o.fs = fs;
    o.log = [](absl::string_view) {};
    return *Cache::Open(dir, o);
  }
  void SetUp() override {
    src_ = OpenCache(tmp_.Sub("src"));
    for (int i = 0; i < 4; ++i) {
      ASSERT_OK(src_->Put(TestKey(i), std::string(100 + i, 'a' + i),
                          {{"i", std::to_string(i)}}));
    }
    archive_ = tmp_.Sub("out.tpjitar");
    ASSERT_OK(ExportCacheArchive(*src_, {TestKey(0), TestKey(2), TestKey(3)},
                                 *FileSystem::Default(), archive_)
                  .status());
    bytes_ = *FileSystem::Default()->ReadFile(archive_);
  }
  // Imports `bytes` into a destination cache holding TestKey(9); expects a
  // rejection naming `why` and an unchanged destination.
  void ExpectRejected(const std::string& bytes, const std::string& why) {
    auto dst = OpenCache(tmp_.Sub("dst"));
    ASSERT_OK(dst->Put(TestKey(9), "mine", {}));
    std::vector<std::string> before = DirListing(tmp_.Sub("dst"));
    std::string path = tmp_.Sub("bad.tpjitar");
    ASSERT_OK(WriteWholeFile(*FileSystem::Default(), path, bytes, false));
    absl::StatusOr<ArchiveReport> r =
        ImportCacheArchive(*dst, *FileSystem::Default(), path);
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(why));
    EXPECT_EQ(DirListing(tmp_.Sub("dst")), before);
  }

  TempDir tmp_;
  std::unique_ptr<Cache> src_;
  std::string archive_;
  std::string bytes_;
};

TEST_F(ArchiveTest, RoundTrip) {
  auto dst = OpenCache(tmp_.Sub("dst"));
  ASSERT_OK(dst->Put(TestKey(3), std::string(103, 'd'), {{"i", "3"}}));
  absl::StatusOr<ArchiveReport> r =
      ImportCacheArchive(*dst, *FileSystem::Default(), archive_);
  ASSERT_OK(r.status());
  EXPECT_EQ(r->entries, 3);
  EXPECT_EQ(r->added, 2);
  EXPECT_EQ(r->present, 1);
  for (int i : {0, 2, 3}) {
    std::optional<CacheEntry> e = dst->Get(TestKey(i));
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->payload, std::string(100 + i, 'a' + i));
    EXPECT_EQ(e->metadata.at("i"), std::to_string(i));
  }
  EXPECT_FALSE(dst->Get(TestKey(1)).has_value());
  // Importing again adds nothing.
  EXPECT_EQ(ImportCacheArchive(*dst, *FileSystem::Default(), archive_)->added,
            0);
}

TEST_F(ArchiveTest, ExportOfAMissingOrCorruptKeyWritesNothing) {
  std::string out = tmp_.Sub("x.tpjitar");
  absl::StatusOr<ArchiveReport> r = ExportCacheArchive(
      *src_, {TestKey(0), TestKey(7)}, *FileSystem::Default(), out);
  EXPECT_TRUE(absl::IsNotFound(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(TestKey(7)));
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(),
                           JoinPath(src_->dir(), TestKey(1)), "bad", false));
  r = ExportCacheArchive(*src_, {TestKey(1)}, *FileSystem::Default(), out);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_FALSE(FileSystem::Default()->Stat(out).ok());
}

TEST_F(ArchiveTest, TruncatedArchivesAreRejected) {
  for (size_t n :
       {size_t{0}, size_t{10}, bytes_.size() / 2, bytes_.size() - 1}) {
    SCOPED_TRACE(n);
    ExpectRejected(bytes_.substr(0, n), "bad cache archive");
  }
}

TEST_F(ArchiveTest, TamperedArchiveIsRejected) {
  std::string bad = bytes_;
  bad[bad.size() / 2] ^= 0x01;
  ExpectRejected(bad, "archive checksum mismatch");
}

TEST_F(ArchiveTest, TamperedEntryWithAFixedUpArchiveChecksumIsRejected) {
  // Flip a payload byte and recompute the whole-archive checksum: the
  // per-entry checksum still catches it.
  std::string bad = bytes_;
  bad[bad.size() - 40 - 10] ^= 0x01;  // inside the last entry's payload
  std::string body = bad.substr(0, bad.size() - 40);
  Sha256 sha;
  sha.Update(body);
  bad = body + "TPJITEND" + sha.Finish();
  ExpectRejected(bad, "entry 2 checksum mismatch");
}

TEST_F(ArchiveTest, NotAnArchiveIsRejected) {
  ExpectRejected(std::string(200, 'z'), "bad magic");
}

TEST_F(ArchiveTest, WriteFailureMidwayRollsBack) {
  FaultInjectingFileSystem fs;
  auto dst = OpenCache(tmp_.Sub("dst"), &fs);
  std::vector<std::string> before = DirListing(tmp_.Sub("dst"));
  fs.FailOp(FsOp::kRename, absl::ResourceExhaustedError("disk full"),
            TestKey(3));
  absl::StatusOr<ArchiveReport> r =
      ImportCacheArchive(*dst, *FileSystem::Default(), archive_);
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("removed"));
  EXPECT_EQ(DirListing(tmp_.Sub("dst")), before);
}

}  // namespace
}  // namespace tpjit
