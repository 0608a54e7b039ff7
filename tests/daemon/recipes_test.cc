// Recipes (daemon/recipes.h) against a fake compile path and a fake cache:
// what is recorded, when a prefetch starts and what it sends, include
// directories replaced, waiting and joining, List/Show.
#include "daemon/recipes.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/digest.h"
#include "tests/cache/test_util.h"

namespace tpjit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using tpjit::v1::CompileRequest;
using tpjit::v1::CompileResponse;
using tpjit::v1::PrefetchRecipeResponse;

constexpr absl::Duration kDeadline = absl::Seconds(30);

std::string KeyOf(const std::string& source) {
  return Sha256Hex(absl::StrCat("key:", source));
}

CompileRequest Request(const std::string& group, std::vector<int> ids,
                       std::vector<std::string> dirs = {}) {
  CompileRequest r;
  r.set_backend(tpjit::v1::NVCC);
  r.set_arch("sm_90a");
  r.add_options("-O3");
  r.set_group(group);
  for (const auto& d : dirs) r.add_include_dirs(d);
  for (int i : ids) {
    auto* s = r.add_sources();
    s->set_name(absl::StrCat("k", i, ".cu"));
    s->set_source(absl::StrCat("__global__ void k", i, "() {}"));
  }
  return r;
}

// Every source compiles, with key KeyOf(source).
CompileResponse Succeed(const CompileRequest& r) {
  CompileResponse out;
  for (const auto& s : r.sources()) {
    auto* res = out.add_results();
    res->set_name(s.name());
    res->set_ok(true);
    res->set_key(KeyOf(s.source()));
  }
  return out;
}

class RecipesTest : public ::testing::Test {
 protected:
  void SetUp() override { Reset(); }

  // A fresh Recipes over the same directory (a daemon restart).
  void Reset() {
    recipes_.reset();
    RecipeBookOptions o;
    o.log = [](absl::string_view) {};
    auto book = RecipeBook::Open(dir_.path(), o);
    ASSERT_TRUE(book.ok()) << book.status();
    book_ = book->get();
    RecipesDeps deps;
    deps.book = std::move(*book);
    deps.batch_size = 2;
    deps.compile = [this](const CompileRequest& r, CompileDone done) {
      {
        absl::MutexLock lock(&mu_);
        sent_.push_back(r);
        if (hold_) {
          held_.push_back([r, done] { done(Succeed(r)); });
          return;
        }
      }
      done(Succeed(r));
    };
    deps.cached = [this](const std::string& key) {
      absl::MutexLock lock(&mu_);
      return cached_.count(key) > 0;
    };
    recipes_ = std::make_unique<Recipes>(std::move(deps));
    absl::MutexLock lock(&mu_);
    sent_.clear();
  }

  // Compiles `request` as the daemon would: through the hook.
  void Compile(const CompileRequest& request) {
    CompileDone done =
        recipes_->OnCompile(request, [](absl::StatusOr<CompileResponse>) {});
    done(Succeed(request));
    ASSERT_TRUE(recipes_->Flush(kDeadline));
  }

  std::vector<std::string> SentNames() {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& r : sent_) {
      for (const auto& s : r.sources()) names.push_back(s.name());
    }
    return names;
  }

  testing::TempDir dir_;
  RecipeBook* book_ = nullptr;
  std::unique_ptr<Recipes> recipes_;
  absl::Mutex mu_;
  std::vector<CompileRequest> sent_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> cached_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::function<void()>> held_ ABSL_GUARDED_BY(mu_);
};

TEST_F(RecipesTest, RecordsTheSucceededSourcesOfAGroupOnly) {
  CompileRequest r = Request("g", {0, 1});
  CompileDone done =
      recipes_->OnCompile(r, [](absl::StatusOr<CompileResponse>) {});
  CompileResponse resp = Succeed(r);
  resp.mutable_results(1)->set_ok(false);
  done(resp);
  ASSERT_TRUE(recipes_->Flush(kDeadline));
  auto index = book_->Index("g");
  ASSERT_TRUE(index.has_value());
  ASSERT_EQ(index->size(), 1u);
  EXPECT_EQ((*index)[0].key, KeyOf(r.sources(0).source()));
  EXPECT_EQ(*book_->Load((*index)[0].digest), RecipeOf(r, 0));

  Compile(Request("", {5}));  // no group: nothing recorded
  EXPECT_EQ(book_->Groups().size(), 1u);
  bool called = false;  // a failed call is passed on and not recorded
  recipes_->OnCompile(Request("h", {7}), [&](auto s) { called = !s.ok(); })(
      absl::InternalError("boom"));
  ASSERT_TRUE(recipes_->Flush(kDeadline));
  EXPECT_TRUE(called);
  EXPECT_FALSE(book_->Index("h").has_value());
}

TEST_F(RecipesTest, FirstCompileOfAKnownGroupPrefetchesWhatTheCacheLacks) {
  Compile(Request("g", {0, 1, 2, 3, 4}));
  EXPECT_TRUE(SentNames().empty());  // first sight: no recipe yet
  Reset();                           // a restart; the cache keeps k0 only
  {
    absl::MutexLock lock(&mu_);
    cached_.insert(KeyOf(Request("", {0}).sources(0).source()));
  }
  Compile(Request("g", {1}));
  EXPECT_THAT(SentNames(), ElementsAre("k1.cu", "k2.cu", "k3.cu", "k4.cu"));
  {
    absl::MutexLock lock(&mu_);
    ASSERT_EQ(sent_.size(), 2u);  // batches of 2
    for (const auto& r : sent_) {
      EXPECT_EQ(r.group(), "");  // never records or triggers itself
      EXPECT_EQ(r.backend(), tpjit::v1::NVCC);
      EXPECT_THAT(r.options(), ElementsAre("-O3"));
    }
  }
  Compile(Request("g", {2}));  // not the first any more
  EXPECT_EQ(SentNames().size(), 4u);
}

TEST_F(RecipesTest, NoPrefetchWhenTheCacheHoldsEverything) {
  Compile(Request("g", {0, 1}));
  Reset();
  {
    absl::MutexLock lock(&mu_);
    for (int i : {0, 1}) {
      cached_.insert(KeyOf(Request("", {i}).sources(0).source()));
    }
  }
  Compile(Request("g", {0}));
  EXPECT_TRUE(SentNames().empty());
}

TEST_F(RecipesTest, MissingIncludeDirsAreReplacedByIndex) {
  const std::string here = dir_.path();
  Compile(Request("g", {0, 1}, {"/old/site/include", here}));
  Reset();
  Compile(Request("g", {9}, {"/new/site/include", "/new/other"}));
  absl::MutexLock lock(&mu_);
  ASSERT_FALSE(sent_.empty());
  EXPECT_THAT(sent_[0].include_dirs(),
              ElementsAre("/new/site/include", here));  // kept: it exists
}

TEST_F(RecipesTest, PrefetchWaitsJoinsAndReports) {
  Compile(Request("g", {0, 1, 2}));
  Reset();
  {
    absl::MutexLock lock(&mu_);
    hold_ = true;
  }
  tpjit::v1::PrefetchRecipeRequest req;
  req.set_group("g");
  req.set_wait(true);
  absl::Notification first, second;
  absl::StatusOr<PrefetchRecipeResponse> a, b;
  recipes_->Prefetch(req, [&](auto r) {
    a = r;
    first.Notify();
  });
  ASSERT_TRUE(recipes_->Flush(kDeadline));
  recipes_->Prefetch(req, [&](auto r) {
    b = r;
    second.Notify();
  });
  ASSERT_TRUE(recipes_->Flush(kDeadline));
  EXPECT_FALSE(first.HasBeenNotified());
  EXPECT_TRUE(recipes_->List().groups(0).prefetching());
  std::vector<std::function<void()>> held;
  {
    absl::MutexLock lock(&mu_);
    held.swap(held_);
  }
  EXPECT_EQ(held.size(), 2u);  // 3 entries in batches of 2
  for (auto& release : held) release();
  ASSERT_TRUE(first.WaitForNotificationWithTimeout(kDeadline));
  ASSERT_TRUE(second.WaitForNotificationWithTimeout(kDeadline));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->entries(), 3);
  EXPECT_EQ(a->submitted(), 3);
  EXPECT_EQ(a->compiled(), 3);
  EXPECT_FALSE(a->joined());
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->joined());
  EXPECT_EQ(b->compiled(), 3);
  EXPECT_EQ(SentNames().size(), 3u);
}

TEST_F(RecipesTest, BadOrUnknownGroups) {
  tpjit::v1::PrefetchRecipeRequest req;
  absl::StatusOr<PrefetchRecipeResponse> r;
  absl::Notification n1;
  recipes_->Prefetch(req, [&](auto s) {
    r = s;
    n1.Notify();
  });
  ASSERT_TRUE(n1.WaitForNotificationWithTimeout(kDeadline));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  req.set_group("nobody");
  absl::Notification n2;
  recipes_->Prefetch(req, [&](auto s) {
    r = s;
    n2.Notify();
  });
  ASSERT_TRUE(n2.WaitForNotificationWithTimeout(kDeadline));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("nobody"));
  tpjit::v1::ShowRecipeRequest show;
  show.set_group("nobody");
  EXPECT_EQ(recipes_->Show(show).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RecipesTest, ShowListsEntriesAndFlagsUnreadableOnes) {
  CompileRequest r = Request("g", {0, 1}, {"/inc"});
  Compile(r);
  {
    absl::MutexLock lock(&mu_);
    cached_.insert(KeyOf(r.sources(0).source()));
  }
  auto index = *book_->Index("g");
  const std::string bad =
      JoinPath(dir_.path(), "recipes/objects/" + index[1].digest);
  ASSERT_TRUE(WriteWholeFile(*FileSystem::Default(), bad, "junk", false).ok());
  tpjit::v1::ShowRecipeRequest show;
  show.set_group("g");
  show.set_with_source(true);
  auto s = recipes_->Show(show);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->group().entries(), 2);
  EXPECT_EQ(s->group().cached(), 1);
  ASSERT_EQ(s->entries_size(), 2);
  EXPECT_EQ(s->entries(0).name(), "k0.cu");
  EXPECT_EQ(s->entries(0).backend(), tpjit::v1::NVCC);
  EXPECT_THAT(s->entries(0).include_dirs(), ElementsAre("/inc"));
  EXPECT_EQ(s->entries(0).source(), r.sources(0).source());
  EXPECT_TRUE(s->entries(0).cached());
  EXPECT_FALSE(s->entries(1).error().empty());

  tpjit::v1::PrefetchRecipeRequest req;  // the unreadable one is skipped
  req.set_group("g");
  req.set_wait(true);
  absl::Notification n;
  absl::StatusOr<PrefetchRecipeResponse> p;
  recipes_->Prefetch(req, [&](auto x) {
    p = x;
    n.Notify();
  });
  ASSERT_TRUE(n.WaitForNotificationWithTimeout(kDeadline));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->cached(), 1);
  EXPECT_EQ(p->unreadable(), 1);
  EXPECT_EQ(p->submitted(), 0);
  auto list = recipes_->List();
  ASSERT_EQ(list.groups_size(), 1);
  EXPECT_EQ(list.groups(0).group(), "g");
}

}  // namespace
}  // namespace tpjit
