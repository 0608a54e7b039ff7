#include "src/common/file_system.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cache/fault_injecting_file_system.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::FaultInjectingFileSystem;
using testing::FsOp;
using ::testing::HasSubstr;
using testing::TempDir;
using ::testing::UnorderedElementsAre;

TEST(PosixFileSystemTest, WriteReadStatListRenameUnlink) {
  TempDir tmp;
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK(WriteWholeFile(*fs, tmp.Sub("a"), "hello", false));
  EXPECT_EQ(*fs->ReadFile(tmp.Sub("a")), "hello");
  EXPECT_EQ(fs->Stat(tmp.Sub("a"))->size, 5);
  ASSERT_OK(fs->Rename(tmp.Sub("a"), tmp.Sub("b")));
  EXPECT_THAT(*fs->ListDir(tmp.path()), UnorderedElementsAre("b"));
  ASSERT_OK(fs->Unlink(tmp.Sub("b")));
  EXPECT_TRUE(absl::IsNotFound(fs->Stat(tmp.Sub("b")).status()));
}

TEST(PosixFileSystemTest, ExclusiveCreateAndLinkRefuseExistingNames) {
  TempDir tmp;
  FileSystem* fs = FileSystem::Default();
  ASSERT_OK(WriteWholeFile(*fs, tmp.Sub("a"), "1", true));
  EXPECT_TRUE(
      absl::IsAlreadyExists(fs->NewWritableFile(tmp.Sub("a"), true).status()));
  ASSERT_OK(WriteWholeFile(*fs, tmp.Sub("b"), "2", true));
  absl::Status s = fs->Link(tmp.Sub("b"), tmp.Sub("a"));
  EXPECT_TRUE(absl::IsAlreadyExists(s));
  EXPECT_EQ(*fs->ReadFile(tmp.Sub("a")), "1");
  ASSERT_OK(fs->Link(tmp.Sub("b"), tmp.Sub("c")));
  EXPECT_EQ(*fs->ReadFile(tmp.Sub("c")), "2");
}

TEST(PosixFileSystemTest, ErrorsNameThePathAndMapErrno) {
  TempDir tmp;
  absl::Status s = FileSystem::Default()->ReadFile(tmp.Sub("missing")).status();
  EXPECT_TRUE(absl::IsNotFound(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr(tmp.Sub("missing")));
}

TEST(PosixFileSystemTest, CreateDirsSetMTimeSyncDir) {
  TempDir tmp;
  FileSystem* fs = FileSystem::Default();
  std::string deep = tmp.Sub("x/y/z");
  ASSERT_OK(fs->CreateDirs(deep));
  ASSERT_OK(fs->CreateDirs(deep));
  EXPECT_TRUE(fs->Stat(deep)->is_directory);
  ASSERT_OK(fs->SyncDir(deep));
  ASSERT_OK(WriteWholeFile(*fs, JoinPath(deep, "f"), "", false));
  absl::Time t = absl::FromUnixSeconds(1700000000);
  ASSERT_OK(fs->SetMTime(JoinPath(deep, "f"), t));
  EXPECT_EQ(fs->Stat(JoinPath(deep, "f"))->mtime, t);
}

TEST(FaultInjectingFileSystemTest, FailOpHitsOnlyMatchingPaths) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  fs.FailOp(FsOp::kOpen, absl::PermissionDeniedError("no"), "/b", 1);
  EXPECT_OK(WriteWholeFile(fs, tmp.Sub("a"), "1", false));
  EXPECT_TRUE(
      absl::IsPermissionDenied(WriteWholeFile(fs, tmp.Sub("b"), "1", false)));
  EXPECT_OK(WriteWholeFile(fs, tmp.Sub("b"), "1", false));
}

TEST(FaultInjectingFileSystemTest, NoSpaceStoresAPrefixThenFails) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  fs.NoSpaceAfter(3);
  EXPECT_TRUE(absl::IsResourceExhausted(
      WriteWholeFile(fs, tmp.Sub("a"), "hello", false)));
  EXPECT_EQ(*FileSystem::Default()->ReadFile(tmp.Sub("a")), "hel");
}

TEST(FaultInjectingFileSystemTest, TornWritesReportSuccess) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  fs.TearWrites(2);
  EXPECT_OK(WriteWholeFile(fs, tmp.Sub("a"), "hello", false));
  EXPECT_EQ(*fs.ReadFile(tmp.Sub("a")), "he");
}

TEST(FaultInjectingFileSystemTest, CrashStopsEverything) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  fs.CrashAfter(FsOp::kSync);
  EXPECT_TRUE(absl::IsAborted(WriteWholeFile(fs, tmp.Sub("a"), "x", false)));
  EXPECT_TRUE(fs.crashed());
  EXPECT_TRUE(absl::IsAborted(fs.Unlink(tmp.Sub("a"))));
  EXPECT_TRUE(FileSystem::Default()->Stat(tmp.Sub("a")).ok());
}

TEST(FaultInjectingFileSystemTest, HiddenFilesAppearAfterNCalls) {
  TempDir tmp;
  FaultInjectingFileSystem fs;
  ASSERT_OK(WriteWholeFile(fs, tmp.Sub("new"), "x", false));
  fs.HideFor("new", 2);
  EXPECT_TRUE(absl::IsNotFound(fs.Stat(tmp.Sub("new")).status()));
  EXPECT_TRUE(fs.ListDir(tmp.path())->empty());
  EXPECT_OK(fs.Stat(tmp.Sub("new")).status());
  // Creation still sees it.
  fs.HideFor("new", 5);
  EXPECT_TRUE(
      absl::IsAlreadyExists(fs.NewWritableFile(tmp.Sub("new"), true).status()));
}

}  // namespace
}  // namespace tpjit
