// RecipeBook: recording, de-duplication, bounds, persistence across a
// reopen, corrupt files ignored, and recipes carried through cache archives.
#include "src/cache/recipe_book.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/cache/archive.h"
#include "tests/cache/fault_injecting_file_system.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::TempDir;

Recipe Make(int i, std::string include = "/opt/dg/include") {
  Recipe r;
  r.backend = "nvcc";
  r.arch = "sm_90a";
  r.output = "cubin";
  r.name = absl::StrCat("kernel", i, ".cu");
  r.source = absl::StrCat("extern \"C\" __global__ void k() { /* ", i, " */ }");
  r.options = {"-std=c++20", "-O3"};
  r.include_dirs = {std::move(include)};
  return r;
}

std::string Key(int i) { return Sha256Hex(absl::StrCat("key", i)); }

class RecipeBookTest : public ::testing::Test {
 protected:
  std::unique_ptr<RecipeBook> Open(RecipeBookOptions options = {}) {
    options.log = [this](absl::string_view line) {
      logs_.push_back(std::string(line));
    };
    auto book = RecipeBook::Open(dir_.path(), options);
    EXPECT_TRUE(book.ok()) << book.status();
    return book.ok() ? std::move(*book) : nullptr;
  }
  std::vector<std::string> Digests(RecipeBook& book, const std::string& g) {
    std::vector<std::string> out;
    for (const RecipeRef& r :
         book.Index(g).value_or(std::vector<RecipeRef>{})) {
      out.push_back(r.digest);
    }
    return out;
  }

  TempDir dir_;
  std::vector<std::string> logs_;
};

TEST(RecipeEncodingTest, RoundTripsAndDigestCoversEveryField) {
  Recipe r = Make(1);
  r.name_expressions = {"k<1>", "k<2>"};
  absl::StatusOr<Recipe> back = DecodeRecipe(EncodeRecipe(r));
  ASSERT_OK(back.status());
  EXPECT_EQ(*back, r);
  const std::string d = RecipeDigest(r);
  EXPECT_EQ(d.size(), 64u);
  for (auto mutate : std::vector<std::function<void(Recipe&)>>{
           [](Recipe& x) { x.backend = "nvrtc"; },
           [](Recipe& x) { x.arch = "sm_100a"; },
           [](Recipe& x) { x.output = "ptx"; },
           [](Recipe& x) { x.name = "other.cu"; },
           [](Recipe& x) { x.source += " "; },
           [](Recipe& x) { x.options.push_back("-lineinfo"); },
           [](Recipe& x) { x.include_dirs.push_back("/x"); },
           [](Recipe& x) { x.name_expressions.pop_back(); }}) {
    Recipe m = r;
    mutate(m);
    EXPECT_NE(RecipeDigest(m), d);
  }
  EXPECT_FALSE(DecodeRecipe("garbage").ok());
  std::string bytes = EncodeRecipe(r);
  EXPECT_FALSE(DecodeRecipe(bytes.substr(0, bytes.size() - 1)).ok());
  EXPECT_FALSE(DecodeRecipe(bytes + "x").ok());
}

TEST_F(RecipeBookTest, RecordsOncePerRecipeAndUpdatesTheKey) {
  auto book = Open();
  ASSERT_NE(book, nullptr);
  EXPECT_FALSE(book->Index("g").has_value());
  EXPECT_EQ(*book->Record("g", Make(1), Key(1)), true);
  EXPECT_EQ(*book->Record("g", Make(2), ""), true);
  EXPECT_EQ(*book->Record("g", Make(1), Key(1)), false);  // dedup
  EXPECT_EQ(*book->Record("g", Make(1), ""), false);      // keeps the key
  auto index = book->Index("g");
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 2u);
  EXPECT_EQ((*index)[0].digest, RecipeDigest(Make(1)));
  EXPECT_EQ((*index)[0].key, Key(1));
  EXPECT_EQ((*index)[1].key, "");
  EXPECT_EQ((*index)[0].bytes,
            static_cast<int64_t>(EncodeRecipe(Make(1)).size()));
  EXPECT_EQ(*book->Record("g", Make(2), Key(2)), true);  // key learnt
  EXPECT_EQ(book->Index("g")->at(1).key, Key(2));
  absl::StatusOr<Recipe> loaded = book->Load(RecipeDigest(Make(2)));
  ASSERT_OK(loaded.status());
  EXPECT_EQ(*loaded, Make(2));
  EXPECT_FALSE(book->Record("", Make(1), "").ok());
}

TEST_F(RecipeBookTest, GroupsAreSeparateAndShareObjects) {
  auto book = Open();
  ASSERT_OK(book->Record("a", Make(1), Key(1)).status());
  ASSERT_OK(book->Record("b", Make(1), Key(1)).status());
  ASSERT_OK(book->Record("b", Make(2), Key(2)).status());
  std::vector<RecipeGroupInfo> groups = book->Groups();
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].group, "a");
  EXPECT_EQ(groups[0].entries, 1);
  EXPECT_EQ(groups[1].entries, 2);
  auto objects = FileSystem::Default()->ListDir(dir_.Sub("recipes/objects"));
  ASSERT_OK(objects.status());
  EXPECT_EQ(objects->size(), 2u);
}

TEST_F(RecipeBookTest, PersistsAcrossReopen) {
  {
    auto book = Open();
    for (int i = 0; i < 5; ++i) {
      ASSERT_OK(book->Record("deepseek-v3-tp8", Make(i), Key(i)).status());
    }
    ASSERT_OK(book->Record("other/group name", Make(9), "").status());
  }
  auto book = Open();
  ASSERT_EQ(book->Groups().size(), 2u);
  auto index = book->Index("deepseek-v3-tp8");
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ((*index)[i].digest, RecipeDigest(Make(i)));
    EXPECT_EQ((*index)[i].key, Key(i));
    EXPECT_EQ(*book->Load((*index)[i].digest), Make(i));
  }
  EXPECT_EQ(book->Index("other/group name")->size(), 1u);
  EXPECT_EQ(book->corrupt(), 0);
}

TEST_F(RecipeBookTest, BoundsDropTheOldestEntries) {
  RecipeBookOptions options;
  options.max_entries = 3;
  auto book = Open(options);
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(book->Record("g", Make(i), "").status());
  EXPECT_THAT(Digests(*book, "g"),
              ElementsAre(RecipeDigest(Make(2)), RecipeDigest(Make(3)),
                          RecipeDigest(Make(4))));
  EXPECT_THAT(logs_.back(), HasSubstr("dropped 1 oldest"));

  const int64_t one = static_cast<int64_t>(EncodeRecipe(Make(0)).size());
  RecipeBookOptions by_bytes;
  by_bytes.max_bytes = 2 * one + one / 2;
  auto small = Open(by_bytes);
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(small->Record("h", Make(i), "").status());
  }
  EXPECT_THAT(Digests(*small, "h"),
              ElementsAre(RecipeDigest(Make(2)), RecipeDigest(Make(3))));
}

TEST_F(RecipeBookTest, CorruptObjectIsIgnoredAndCounted) {
  {
    auto book = Open();
    ASSERT_OK(book->Record("g", Make(1), Key(1)).status());
    ASSERT_OK(book->Record("g", Make(2), Key(2)).status());
  }
  const std::string path =
      dir_.Sub(absl::StrCat("recipes/objects/", RecipeDigest(Make(1))));
  std::string bytes = *FileSystem::Default()->ReadFile(path);
  bytes[bytes.size() - 3] ^= 0x20;  // a flipped bit in the source
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), path, bytes, false));

  auto book = Open();
  EXPECT_EQ(book->Index("g")->size(), 2u);
  absl::StatusOr<Recipe> bad = book->Load(RecipeDigest(Make(1)));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(book->corrupt(), 1);
  EXPECT_OK(book->Load(RecipeDigest(Make(2))).status());
  // Export leaves the bad object out; recording again repairs it.
  auto files = book->ExportFiles();
  ASSERT_OK(files.status());
  EXPECT_EQ(files->count(absl::StrCat("objects/", RecipeDigest(Make(1)))), 0u);
  ASSERT_OK(book->Record("g", Make(1), Key(3)).status());
  EXPECT_OK(book->Load(RecipeDigest(Make(1))).status());
}

TEST_F(RecipeBookTest, CorruptIndexIsSkippedAtOpen) {
  {
    auto book = Open();
    ASSERT_OK(book->Record("g", Make(1), Key(1)).status());
    ASSERT_OK(book->Record("h", Make(2), Key(2)).status());
  }
  auto names = *FileSystem::Default()->ListDir(dir_.Sub("recipes/groups"));
  ASSERT_EQ(names.size(), 2u);
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(),
                           dir_.Sub("recipes/groups/" + names[0]), "junk",
                           false));
  auto book = Open();
  EXPECT_EQ(book->Groups().size(), 1u);
  EXPECT_EQ(book->corrupt(), 1);
  EXPECT_THAT(logs_.back(), HasSubstr("ignored"));
}

TEST_F(RecipeBookTest, TwoBooksOnOneDirectoryMergeTheirIndexes) {
  auto a = Open();
  auto b = Open();
  ASSERT_OK(a->Record("g", Make(1), "").status());
  ASSERT_OK(b->Record("g", Make(2), "").status());  // re-reads a's line
  auto c = Open();
  EXPECT_EQ(c->Index("g")->size(), 2u);
}

TEST_F(RecipeBookTest, FailedIndexWriteKeepsTheOldIndexAndIsRetried) {
  testing::FaultInjectingFileSystem fs;
  RecipeBookOptions options;
  options.fs = &fs;
  auto book = Open(options);
  ASSERT_OK(book->Record("g", Make(1), Key(1)).status());
  fs.NoSpaceAfter(100, "recipes/groups/");
  absl::StatusOr<bool> r = book->Record("g", Make(2), Key(2));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted)
      << r.status();
  EXPECT_EQ(book->Index("g")->size(), 1u);  // memory follows the disk
  auto names = FileSystem::Default()->ListDir(dir_.Sub("recipes/groups"));
  ASSERT_EQ(names->size(), 1u);  // no temp file left behind
  EXPECT_EQ(Open()->Index("g")->size(), 1u);
  fs.Reset();
  EXPECT_EQ(*book->Record("g", Make(2), Key(2)), true);  // retried
  EXPECT_EQ(Open()->Index("g")->size(), 2u);
}

TEST_F(RecipeBookTest, TempFilesOfACrashedWriterAreRemovedWhenOld) {
  testing::FaultInjectingFileSystem fs;
  fs.CrashAfter(testing::FsOp::kClose, ".tmp-");  // dies before the rename
  RecipeBookOptions options;
  options.fs = &fs;
  auto book = Open(options);
  EXPECT_FALSE(book->Record("g", Make(1), Key(1)).ok());
  auto temps = *FileSystem::Default()->ListDir(dir_.Sub("recipes/objects"));
  ASSERT_EQ(temps.size(), 1u);
  EXPECT_TRUE(IsTempName(temps[0]));
  EXPECT_TRUE(Open()->Groups().empty());
  // A fresh temp file stays (its writer may be alive); an old one goes.
  EXPECT_EQ(FileSystem::Default()->ListDir(dir_.Sub("recipes/objects"))->size(),
            1u);
  FakeClock later(absl::Now() + absl::Hours(2));
  RecipeBookOptions reopen;
  reopen.clock = &later;
  Open(reopen);
  EXPECT_TRUE(
      FileSystem::Default()->ListDir(dir_.Sub("recipes/objects"))->empty());
}

TEST_F(RecipeBookTest, SeesGroupsAnotherProcessWroteAfterOpen) {
  auto a = Open();
  EXPECT_TRUE(a->Groups().empty());
  auto b = Open();
  ASSERT_OK(b->Record("late", Make(1), Key(1)).status());
  ASSERT_OK(b->Record("later", Make(2), Key(2)).status());
  auto index = a->Index("late");  // e.g. `tpjit cache import` meanwhile
  ASSERT_TRUE(index.has_value());
  EXPECT_EQ((*index)[0].key, Key(1));
  EXPECT_EQ(a->Groups().size(), 2u);
}

TEST_F(RecipeBookTest, ArchiveCarriesRecipesIntoAnEmptyCache) {
  auto book = Open();
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(book->Record("g", Make(i), Key(i)).status());
  }
  auto cache = Cache::Open(dir_.path(), {});
  ASSERT_OK(cache.status());
  ASSERT_OK((*cache)->Put(Key(0), "cubin0", {}));
  const std::string archive = dir_.Sub("bundle.tpjit");
  auto exported = ExportCacheArchive(**cache, {Key(0)}, *FileSystem::Default(),
                                     archive, book.get());
  ASSERT_OK(exported.status());
  EXPECT_EQ(exported->recipe_files, 4);  // 3 objects + 1 index

  TempDir other;
  auto cache2 = Cache::Open(other.path(), {});
  auto book2 = RecipeBook::Open(other.path(), {});
  ASSERT_OK(book2.status());
  auto imported = ImportCacheArchive(**cache2, *FileSystem::Default(), archive,
                                     book2->get());
  ASSERT_OK(imported.status());
  EXPECT_EQ(imported->added, 1);
  EXPECT_EQ(imported->recipe_objects, 3);
  EXPECT_EQ(imported->recipe_groups, 1);
  auto reopened = RecipeBook::Open(other.path(), {});
  auto index = (*reopened)->Index("g");
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 3u);
  EXPECT_EQ((*index)[2].key, Key(2));
  EXPECT_EQ(*(*reopened)->Load((*index)[1].digest), Make(1));
  // A second import adds nothing.
  auto again = ImportCacheArchive(**cache2, *FileSystem::Default(), archive,
                                  book2->get());
  ASSERT_OK(again.status());
  EXPECT_EQ(again->recipe_objects, 0);
  EXPECT_EQ(again->recipe_groups, 0);
}

TEST_F(RecipeBookTest, ArchiveWithoutRecipesStaysVersionOne) {
  auto cache = Cache::Open(dir_.path(), {});
  ASSERT_OK((*cache)->Put(Key(0), "cubin0", {}));
  std::map<std::string, std::string> entries = {
      {Key(0), *(*cache)->ReadVerified(Key(0))}};
  std::string v1 = EncodeCacheArchive(entries);
  EXPECT_EQ(v1[8], 1);  // the version field
  auto decoded = DecodeCacheArchiveContents(v1);
  ASSERT_OK(decoded.status());
  EXPECT_TRUE(decoded->recipe_files.empty());
  auto book = Open();
  ASSERT_OK(book->Record("g", Make(1), "").status());
  std::string v2 = EncodeCacheArchive(entries, *book->ExportFiles());
  EXPECT_EQ(v2[8], 2);
  decoded = DecodeCacheArchiveContents(v2);
  ASSERT_OK(decoded.status());
  EXPECT_EQ(decoded->recipe_files.size(), 2u);
  EXPECT_EQ(decoded->entries.size(), 1u);
}

TEST_F(RecipeBookTest, BadRecipeFileRejectsTheWholeImport) {
  auto book = Open();
  ASSERT_OK(book->Record("g", Make(1), "").status());
  auto files = *book->ExportFiles();
  std::map<std::string, std::string> bad = files;
  bad.begin()->second[200 % bad.begin()->second.size()] ^= 1;
  EXPECT_EQ(RecipeBook::VerifyFiles(bad).code(), absl::StatusCode::kDataLoss);
  bad = files;
  bad["objects/../../escape"] = files.begin()->second;
  EXPECT_EQ(RecipeBook::VerifyFiles(bad).code(), absl::StatusCode::kDataLoss);

  auto cache = Cache::Open(dir_.path(), {});
  ASSERT_OK((*cache)->Put(Key(0), "cubin0", {}));
  std::map<std::string, std::string> entries = {
      {Key(0), *(*cache)->ReadVerified(Key(0))}};
  const std::string archive = dir_.Sub("bad.tpjit");
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), archive,
                           EncodeCacheArchive(entries, bad), false));
  TempDir other;
  auto cache2 = Cache::Open(other.path(), {});
  auto book2 = RecipeBook::Open(other.path(), {});
  auto r = ImportCacheArchive(**cache2, *FileSystem::Default(), archive,
                              book2->get());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_TRUE((*cache2)->List()->empty());
  EXPECT_TRUE((*book2)->Groups().empty());
}

}  // namespace
}  // namespace tpjit
