// Group recipes with the real tpjitd (NVRTC back end, no GPU): a group's
// compiles are recorded; after a restart with the cubins gone (or on an empty
// cache that imported only the recipes, with the headers at another path),
// one Compile of the group makes the daemon compile the rest unasked, and the
// ranks' later requests are hits. `tpjit recipe` and `tpjit cache
// export/import` run in-process against it.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/cache_command.h"
#include "cli/recipe_command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/cache/entry_format.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tpjit::v1::CompileRequest;
using tpjit::v1::CompileResponse;

constexpr int kKernels = 6;

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

CliResult Recipe(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = tpjit::cli::RunRecipeCommand(args, out, err);
  return {code, out.str(), err.str()};
}

CliResult CacheCli(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = tpjit::RunCacheCommand(args, out, err);
  return {code, out.str(), err.str()};
}

// Source i includes "scale.cuh" from the include directory.
CompileRequest Request(const std::string& group, int i,
                       const std::string& include_dir) {
  CompileRequest r;
  r.set_backend(tpjit::v1::NVRTC);
  r.set_arch("sm_90a");
  r.set_group(group);
  r.add_include_dirs(include_dir);
  auto* s = r.add_sources();
  s->set_name(absl::StrCat("k", i, ".cu"));
  s->set_source(
      absl::StrCat("#include \"scale.cuh\"\n"
                   "extern \"C\" __global__ void k",
                   i, "(float* p) { p[threadIdx.x] = scale(p[threadIdx.x], ", i,
                   ".0f); }\n"));
  return r;
}

class RecipeDaemonTest : public ::testing::Test {
 protected:
  // An allowed include tree at `root`/`site`/include with scale.cuh.
  std::string MakeInclude(const std::string& root, const std::string& site) {
    const std::string dir = root + "/allowed/" + site + "/include";
    fs::create_directories(dir);
    std::ofstream(dir + "/scale.cuh")
        << "__device__ inline float scale(float x, float f) { return x * f; "
           "}\n";
    return fs::canonical(dir).string();
  }

  std::unique_ptr<Daemon> Start(const std::string& root) {
    auto d = std::make_unique<Daemon>(
        root, std::vector<std::string>{
                  "--slots", "1", "--procs", "2", "--include-allowlist",
                  fs::canonical(root).string() + "/allowed"});
    EXPECT_TRUE(d->WaitServing());
    return d;
  }

  static CompileResponse Compile(Daemon& d, const CompileRequest& r) {
    return CompileOne(d, r);
  }

  // Records the group: compiles every kernel once, then stops the daemon
  // (which writes the queued recordings before it exits).
  void RecordGroup(const std::string& root, const std::string& group,
                   const std::string& include) {
    auto d = Start(root);
    for (int i = 0; i < kKernels; ++i) Compile(*d, Request(group, i, include));
    EXPECT_EQ(d->Stats().compiles(), kKernels);
    EXPECT_EQ(d->Stop(), 0);
  }

  // Removes every cubin entry; the recipes stay.
  static int RemoveCubins(const std::string& cache) {
    int removed = 0;
    for (const auto& e : fs::directory_iterator(cache)) {
      if (e.is_regular_file() &&
          IsValidCacheKey(e.path().filename().string())) {
        fs::remove(e.path());
        ++removed;
      }
    }
    return removed;
  }

  // One Compile of the group, then waits (deadline: --timeout) for the
  // prefetch it set off; every kernel must have been compiled exactly once.
  void ExpectPrefetchOnFirstCompile(Daemon& d, const std::string& group,
                                    const std::string& include) {
    Compile(d, Request(group, 0, include));
    CliResult p = Recipe({"prefetch", group, "--wait", "--json", "--socket",
                          d.socket(), "--timeout", "300"});
    ASSERT_EQ(p.code, 0) << p.err;
    auto j = nlohmann::json::parse(p.out);
    EXPECT_EQ(j["entries"], kKernels);
    EXPECT_EQ(j["failed"], 0);
    // The daemon started the prefetch itself: this call joined it, or found
    // it done.
    EXPECT_TRUE(j["joined"] == true || j["submitted"] == 0) << p.out;
    EXPECT_EQ(d.Stats().compiles(), kKernels) << p.out;
    for (int i = 1; i < kKernels; ++i) {
      CompileResponse r = Compile(d, Request(group, i, include));
      ASSERT_EQ(r.results_size(), 1);
      EXPECT_TRUE(r.results(0).cache_hit()) << i;
    }
    EXPECT_EQ(d.Stats().compiles(), kKernels);
  }

  TempDir dir_;
};

TEST_F(RecipeDaemonTest, RestartWithoutCubinsPrefetchesTheWholeRecipe) {
  const std::string root = dir_.path();
  const std::string include = MakeInclude(root, "site-a");
  RecordGroup(root, "deepseek-v3-tp8", include);
  ASSERT_EQ(RemoveCubins(root + "/cache"), kKernels);

  auto d = Start(root);
  CliResult ls = Recipe({"ls", "--json", "--socket", d->socket()});
  ASSERT_EQ(ls.code, 0) << ls.err;
  auto groups = nlohmann::json::parse(ls.out)["groups"];
  ASSERT_EQ(groups.size(), 1u) << ls.out;
  EXPECT_EQ(groups[0]["group"], "deepseek-v3-tp8");
  EXPECT_EQ(groups[0]["entries"], kKernels);
  EXPECT_EQ(groups[0]["cached"], 0);
  EXPECT_EQ(d->Stats().compiles(), 0);

  ExpectPrefetchOnFirstCompile(*d, "deepseek-v3-tp8", include);

  CliResult show = Recipe({"show", "deepseek-v3-tp8", "--socket", d->socket()});
  ASSERT_EQ(show.code, 0) << show.err;
  EXPECT_THAT(show.out, HasSubstr("6 entries, 6 cached"));
  EXPECT_THAT(show.out, HasSubstr("k5.cu"));
  CliResult unknown = Recipe({"show", "nobody", "--socket", d->socket()});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("\"nobody\" has no recipe"));
  EXPECT_EQ(d->Stop(), 0);
}

TEST_F(RecipeDaemonTest, ImportedRecipesRefillAnEmptyCacheOnAnotherLayout) {
  const std::string old_root = dir_.path() + "/old-node";
  const std::string new_root = dir_.path() + "/new-node";
  fs::create_directories(old_root);
  fs::create_directories(new_root);
  RecordGroup(old_root, "llama-tp4", MakeInclude(old_root, "site-a"));
  const std::string bundle = dir_.path() + "/recipes.tpjitar";
  CliResult ex = CacheCli({"export", "--cache-dir", old_root + "/cache",
                           "--recipes", "--out", bundle});
  ASSERT_EQ(ex.code, 0) << ex.err;
  EXPECT_THAT(ex.out, HasSubstr("exported 0 entries"));
  CliResult im =
      CacheCli({"import", "--cache-dir", new_root + "/cache", bundle});
  ASSERT_EQ(im.code, 0) << im.err;
  fs::remove_all(old_root);  // the recorded include dir is gone

  // The new node has the library at another path: the trigger's include
  // directory stands in for the recorded one.
  const std::string include = MakeInclude(new_root, "venv/site-b");
  auto d = Start(new_root);
  ExpectPrefetchOnFirstCompile(*d, "llama-tp4", include);
  EXPECT_EQ(d->Stop(), 0);
}

}  // namespace
}  // namespace tpjit::testing
