// RecipeBook shared through a remote store (an in-memory one here; the Redis
// tier in tests/integration/redis_share_test.cc): a second book with an
// empty directory pulls a group, merges are unions on both sides, bounds
// hold, corrupt or failing remotes never fail a record and are counted.
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "src/cache/recipe_book.h"
#include "src/cache/recipe_files.h"
#include "src/common/digest.h"
#include "tests/cache/memory_store.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using testing::MemoryStore;
using testing::TempDir;

Recipe Make(int i) {
  Recipe r;
  r.backend = "nvrtc";
  r.arch = "sm_90a";
  r.output = "cubin";
  r.name = absl::StrCat("k", i, ".cu");
  r.source = absl::StrCat("extern \"C\" __global__ void k", i, "() {}");
  return r;
}

std::string Key(int i) { return Sha256Hex(absl::StrCat("key", i)); }

class RecipeBookRemoteTest : public ::testing::Test {
 protected:
  // A book on its own directory `name`, sharing `remote_`.
  std::unique_ptr<RecipeBook> Open(const std::string& name,
                                   RecipeBookOptions o = {}) {
    o.remote = &remote_;
    o.log = [this](absl::string_view line) { logs_.emplace_back(line); };
    auto book = RecipeBook::Open(absl::StrCat(dir_.path(), "/", name), o);
    EXPECT_TRUE(book.ok()) << book.status();
    return book.ok() ? std::move(*book) : nullptr;
  }
  static std::set<std::string> Names(RecipeBook& book, const std::string& g) {
    std::set<std::string> out;
    const std::vector<RecipeRef> index =
        book.Index(g).value_or(std::vector<RecipeRef>{});
    for (const RecipeRef& r : index) {
      absl::StatusOr<Recipe> recipe = book.Load(r.digest);
      out.insert(recipe.ok() ? recipe->name : "unreadable");
    }
    return out;
  }

  TempDir dir_;
  MemoryStore remote_{"remote"};
  std::vector<std::string> logs_;
};

TEST_F(RecipeBookRemoteTest, AnEmptyBookPullsAGroupAnotherRecorded) {
  auto a = Open("a");
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(a->Record("g", Make(i), Key(i)).status());
  auto b = Open("b");
  EXPECT_FALSE(b->Index("g").has_value());
  EXPECT_EQ(b->Sync("g"), 3);
  ASSERT_TRUE(b->Index("g").has_value());
  auto digests = [](RecipeBook& book) {
    std::vector<std::string> out;
    const std::vector<RecipeRef> index = book.Index("g").value();
    for (const RecipeRef& r : index) out.push_back(r.digest);
    return out;
  };
  EXPECT_EQ(digests(*b), digests(*a)) << "same lines, same order";
  EXPECT_EQ(Names(*b, "g"), (std::set<std::string>{"k0.cu", "k1.cu", "k2.cu"}));
  EXPECT_EQ(b->Sync("g"), 0) << "in sync";
  // A third book lists the group from the remote list of groups.
  auto c = Open("c");
  EXPECT_TRUE(c->Groups().empty());
  c->SyncGroups();
  ASSERT_EQ(c->Groups().size(), 1u);
  EXPECT_EQ(c->Groups()[0].group, "g");
  EXPECT_EQ(c->Groups()[0].entries, 3);
  // A reopened book keeps what it pulled (it is on its disk).
  b.reset();
  EXPECT_EQ(Names(*Open("b"), "g").size(), 3u);
}

TEST_F(RecipeBookRemoteTest, MergesAreUnionsOnBothSides) {
  auto a = Open("a");
  auto b = Open("b");
  ASSERT_OK(a->Record("g", Make(0), Key(0)).status());
  ASSERT_OK(a->Record("g", Make(1), Key(1)).status());
  ASSERT_OK(b->Record("g", Make(2), Key(2)).status());  // pulls 0 and 1
  ASSERT_OK(a->Record("g", Make(3), Key(3)).status());  // pulls 2
  const std::set<std::string> all = {"k0.cu", "k1.cu", "k2.cu", "k3.cu"};
  EXPECT_EQ(Names(*a, "g"), all);
  b->Sync("g");
  EXPECT_EQ(Names(*b, "g"), all);
  auto c = Open("c");
  EXPECT_EQ(c->Sync("g"), 4);
  EXPECT_EQ(Names(*c, "g"), all);
}

TEST_F(RecipeBookRemoteTest, BoundsHoldAndABoundedBookKeepsTheRemoteWhole) {
  auto a = Open("a");
  for (int i = 0; i < 5; ++i)
    ASSERT_OK(a->Record("g", Make(i), Key(i)).status());
  RecipeBookOptions small;
  small.max_entries = 2;
  auto b = Open("b", small);
  EXPECT_EQ(b->Sync("g"), 2);
  EXPECT_EQ(Names(*b, "g"), (std::set<std::string>{"k3.cu", "k4.cu"}))
      << "the newest lines";
  EXPECT_EQ(Open("c")->Sync("g"), 5) << "b did not shrink the remote index";
}

TEST_F(RecipeBookRemoteTest, CorruptRemoteFilesAreSkippedAndCounted) {
  auto a = Open("a");
  ASSERT_OK(a->Record("g", Make(0), Key(0)).status());
  ASSERT_OK(a->Record("g", Make(1), Key(1)).status());
  // Recipe 0's object replaced by another payload (well-formed, wrong).
  const std::string d0 = RecipeDigest(Make(0));
  ASSERT_OK(remote_.Put(CacheEntry{d0, {}, EncodeRecipe(Make(7))}));
  auto b = Open("b");
  EXPECT_EQ(b->Sync("g"), 1);
  EXPECT_EQ(Names(*b, "g"), (std::set<std::string>{"k1.cu"}));
  EXPECT_EQ(b->corrupt(), 1);
  // An index that names another group: ignored, then replaced by ours.
  const std::string h = recipe_files::GroupFileName("h");
  ASSERT_OK(
      remote_.Put(CacheEntry{h, {{"group", "x"}, {"kind", "index"}}, ""}));
  EXPECT_EQ(b->Sync("h"), 0);
  EXPECT_EQ(b->corrupt(), 2);
  ASSERT_OK(b->Record("h", Make(2), Key(2)).status());
  EXPECT_EQ(Open("c")->Sync("h"), 1);
}

TEST_F(RecipeBookRemoteTest, AFailingRemoteNeverFailsARecordAndCatchesUpLater) {
  auto a = Open("a");
  remote_.FailAll(true);
  absl::StatusOr<bool> r = a->Record("g", Make(0), Key(0));
  ASSERT_OK(r.status());
  EXPECT_TRUE(*r);
  EXPECT_EQ(a->Sync("g"), 0);
  auto b = Open("b");
  EXPECT_EQ(b->Sync("g"), 0);
  EXPECT_FALSE(b->Index("g").has_value());
  remote_.FailAll(false);
  ASSERT_OK(a->Record("g", Make(1), Key(1)).status());  // publishes both
  EXPECT_EQ(b->Sync("g"), 2);
}

}  // namespace
}  // namespace tpjit
