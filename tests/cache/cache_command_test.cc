// `tpjit cache ...`: output, exit codes (0 ok, 1 failure, 2 usage) and the
// export/import round trip through the command.
#include "cli/cache_command.h"

#include <stdlib.h>

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/cache/cache.h"
#include "src/cache/recipe_book.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::DirListing;
using ::testing::HasSubstr;
using testing::TempDir;
using testing::TestKey;

class CacheCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("TPJIT_CACHE_DIR");
    dir_ = tmp_.Sub("cache");
    CacheOptions o;
    o.log = [](absl::string_view) {};
    auto cache = *Cache::Open(dir_, o);
    for (int i = 0; i < 3; ++i) {
      ASSERT_OK(cache->Put(TestKey(i), std::string(50, 'x'),
                           {{"family", "fp8_gemm_nt"}}));
    }
  }
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    return RunCacheCommand(args, out_, err_);
  }

  TempDir tmp_;
  std::string dir_;
  std::ostringstream out_, err_;
};

TEST_F(CacheCommandTest, UsageErrorsNameTheProblem) {
  EXPECT_EQ(Run({}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("missing subcommand"));
  EXPECT_EQ(Run({"frobnicate", "--cache-dir", dir_}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown subcommand \"frobnicate\""));
  EXPECT_EQ(Run({"ls"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--cache-dir is required"));
  EXPECT_EQ(Run({"ls", "--cache-dir", dir_, "--bogus"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("unknown flag --bogus"));
  EXPECT_EQ(Run({"ls", "--cache-dir", dir_, "--out", "x"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--out does not apply to ls"));
  EXPECT_EQ(Run({"gc", "--cache-dir", dir_, "--max-size", "lots"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--max-size: \"lots\""));
  EXPECT_EQ(Run({"gc", "--cache-dir", dir_, "--temp-age=-1"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--temp-age"));
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--all"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--out"));
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--out", "f", "nothex"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("\"nothex\" is not a cache key"));
  EXPECT_EQ(Run({"import", "--cache-dir", dir_}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("import needs exactly one"));
  EXPECT_EQ(Run({"ls", "--cache-dir"}), 2);
  EXPECT_THAT(err_.str(), HasSubstr("--cache-dir needs a value"));
}

TEST_F(CacheCommandTest, MissingDirIsAFailure) {
  EXPECT_EQ(Run({"ls", "--cache-dir", tmp_.Sub("nope")}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("does not exist"));
}

TEST_F(CacheCommandTest, LsAndStat) {
  setenv("TPJIT_CACHE_DIR", dir_.c_str(), 1);
  EXPECT_EQ(Run({"ls", "--long"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr(TestKey(1)));
  EXPECT_THAT(out_.str(), HasSubstr("family=fp8_gemm_nt"));
  EXPECT_EQ(Run({"stat"}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("entries: 3"));
  unsetenv("TPJIT_CACHE_DIR");
}

TEST_F(CacheCommandTest, VerifyReportsCorruptionWithExitOne) {
  EXPECT_EQ(Run({"verify", "--cache-dir", dir_}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("verified 3 entries, 0 corrupt"));
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), JoinPath(dir_, TestKey(1)),
                           "junk", false));
  EXPECT_EQ(Run({"verify", "--cache-dir", dir_}), 1);
  EXPECT_THAT(out_.str(), HasSubstr("corrupt " + TestKey(1)));
  EXPECT_EQ(Run({"verify", "--cache-dir", dir_, "--repair"}), 1);
  EXPECT_EQ(Run({"verify", "--cache-dir", dir_}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("verified 2 entries, 0 corrupt"));
}

TEST_F(CacheCommandTest, GcEvictsToSize) {
  EXPECT_EQ(Run({"gc", "--cache-dir", dir_, "--max-size", "0"}), 0)
      << err_.str();
  // Entries were just written: the eviction grace (10 s) spares them.
  EXPECT_THAT(out_.str(), HasSubstr("evicted 0 entries"));
}

TEST_F(CacheCommandTest, ExportImportRoundTripAndBadArchive) {
  std::string keys = tmp_.Sub("keys.txt");
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), keys,
                           "# kernels of one manifest\n" + TestKey(0) + "\n\n",
                           false));
  std::string ar = tmp_.Sub("a.tpjitar");
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--out", ar, "--keys-from",
                 keys, TestKey(2)}),
            0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("exported 2 entries"));

  std::string dst = tmp_.Sub("dst");
  EXPECT_EQ(Run({"import", "--cache-dir", dst, ar}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("2 added"));
  EXPECT_EQ(Run({"verify", "--cache-dir", dst}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("verified 2 entries"));

  std::string bytes = *FileSystem::Default()->ReadFile(ar);
  std::string bad = tmp_.Sub("bad.tpjitar");
  ASSERT_OK(WriteWholeFile(*FileSystem::Default(), bad,
                           bytes.substr(0, bytes.size() - 7), false));
  std::vector<std::string> before = DirListing(dst);
  EXPECT_EQ(Run({"import", "--cache-dir", dst, bad}), 1);
  EXPECT_THAT(err_.str(), HasSubstr("import rejected, cache unchanged"));
  EXPECT_EQ(DirListing(dst), before);
}

TEST_F(CacheCommandTest, ExportAll) {
  std::string ar = tmp_.Sub("all.tpjitar");
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--all", "--out=" + ar}), 0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("exported 3 entries"));
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--out", ar, TestKey(7)}), 1);
  EXPECT_THAT(err_.str(), HasSubstr(TestKey(7)));
}

TEST_F(CacheCommandTest, RecipesTravelWithExportAndImport) {
  Recipe recipe;
  recipe.backend = "nvrtc";
  recipe.arch = "sm_90a";
  recipe.output = "cubin";
  recipe.name = "k.cu";
  recipe.source = "__global__ void k() {}";
  {
    auto book = RecipeBook::Open(dir_);
    ASSERT_OK(book.status());
    ASSERT_OK((*book)->Record("dsv3-tp8", recipe, TestKey(0)).status());
  }
  const std::string ar = tmp_.Sub("recipes.tpjitar");
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--recipes", "--out", ar}), 0)
      << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("exported 0 entries"));
  EXPECT_THAT(out_.str(), HasSubstr("2 recipe files"));
  const std::string dst = tmp_.Sub("empty");
  EXPECT_EQ(Run({"import", "--cache-dir", dst, ar}), 0) << err_.str();
  EXPECT_THAT(out_.str(), HasSubstr("1 recipes added, 1 groups merged"));
  auto book = RecipeBook::Open(dst);
  ASSERT_OK(book.status());
  auto index = (*book)->Index("dsv3-tp8");
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 1u);
  EXPECT_EQ((*index)[0].key, TestKey(0));
  EXPECT_EQ(*(*book)->Load((*index)[0].digest), recipe);
  // --all carries the recipes too.
  EXPECT_EQ(Run({"export", "--cache-dir", dir_, "--all", "--out", ar}), 0);
  EXPECT_THAT(out_.str(), HasSubstr("exported 3 entries"));
  EXPECT_THAT(out_.str(), HasSubstr("2 recipe files"));
}

}  // namespace
}  // namespace tpjit
