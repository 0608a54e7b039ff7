// What two real tpjitd of one deployment share through one real
// redis-server (issue 15), each with its own empty cache directory:
//  - a group's recipe recorded by daemon A is prefetched whole by daemon B
//    at the group's first Compile, and `tpjit recipe ls` on B lists it;
//  - a warm-up's manifest made by A is served by B without a compile (tpjitd
//    persists no manifest: it is rebuilt from the plan and the shared kernel
//    entries, byte-identical);
//  - a Redis full under allkeys-lru evicts, the evictions are counted, every
//    compile succeeds;
//  - a corrupt recipe value in Redis is ignored and counted.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/recipe_command.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/cache/recipe_book.h"
#include "src/cache/recipe_files.h"
#include "tests/cache/redis_server.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

namespace fs = std::filesystem;
using tpjit::v1::CompileRequest;
using tpjit::v1::CompileResponse;

constexpr int kKernels = 4;
constexpr char kGroup[] = "llama-tp2";
constexpr char kSpec[] = R"({
  "name": "two-shapes", "target": {"arch": "sm_90a", "numSms": 132},
  "mPolicy": {"kind": "EXPLICIT", "mValues": [1, 64, 512, 4096]},
  "shapes": [{"family": "bf16_gemm_nt", "n": 1280, "k": 2048},
             {"family": "bf16_gemm_nt", "n": 2048, "k": 1024}]})";

// Kernel i; `pad` bytes of initialized device data make its cubin larger.
std::string Source(int i, int pad) {
  return absl::StrCat("__device__ char pad", i, "[", pad, "] = {", i + 1,
                      "};\nextern \"C\" __global__ void k", i,
                      "(float* p) { p[threadIdx.x] = pad", i,
                      "[threadIdx.x] * ", i, ".0f; }\n");
}

CompileRequest Request(int i, int pad = 1) {
  CompileRequest r;
  r.set_backend(tpjit::v1::NVRTC);
  r.set_arch("sm_90a");
  r.set_group(kGroup);
  auto* s = r.add_sources();
  s->set_name(absl::StrCat("k", i, ".cu"));
  s->set_source(Source(i, pad));
  return r;
}

// The recipe tpjitd records for Request(i) (daemon/recipes.h RecipeOf).
Recipe RecipeOfRequest(int i) {
  Recipe r;
  r.backend = "nvrtc";
  r.arch = "sm_90a";
  r.output = "cubin";
  r.name = absl::StrCat("k", i, ".cu");
  r.source = Source(i, 1);
  return r;
}

std::pair<int, std::string> RecipeCli(std::vector<std::string> args) {
  std::ostringstream out, err;
  int code = tpjit::cli::RunRecipeCommand(args, out, err);
  return {code, out.str() + err.str()};
}

class RedisShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TPJIT_REQUIRE_REDIS();
    redis_ = std::make_unique<RedisServer>(dir_.path());
    ASSERT_TRUE(redis_->Start());
  }

  std::unique_ptr<Daemon> Start(const std::string& name) {
    const std::string root = absl::StrCat(dir_.path(), "/", name);
    fs::create_directories(root);
    auto d = std::make_unique<Daemon>(
        root, std::vector<std::string>{"--remote-cache", redis_->url(),
                                       "--slots", "1", "--procs", "2",
                                       "--remote-cache-timeout", "5"});
    EXPECT_TRUE(d->WaitServing()) << d->Log();
    return d;
  }

  static CompileResponse Compile(Daemon& d, const CompileRequest& r) {
    return CompileOne(d, r);
  }

  RedisReply Raw(const std::vector<std::string>& args) {
    auto c = redis_->Connect();
    EXPECT_TRUE(c.ok()) << c.status();
    auto r = (*c)->Command(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : RedisReply{};
  }

  // Daemon A compiles the group's kernels and stops (its recordings, and
  // their publication to Redis, are written before it exits).
  void RecordOnA() {
    auto a = Start("a");
    for (int i = 0; i < kKernels; ++i) Compile(*a, Request(i));
    EXPECT_EQ(a->Stats().compiles(), kKernels);
    EXPECT_EQ(a->Stop(), 0);
  }

  // Deletes the kernel entries from Redis (the recipes stay): B has to
  // compile, as after a toolchain change or an eviction.
  void DropKernelEntries() {
    RedisReply keys = Raw({"KEYS", "tpjit:e:*"});
    EXPECT_EQ(keys.elements.size(), static_cast<size_t>(kKernels));
    for (const RedisReply& k : keys.elements) Raw({"DEL", k.str});
  }

  TempDir dir_;
  std::unique_ptr<RedisServer> redis_;
};

TEST_F(RedisShareTest, ARecipeRecordedByOneDaemonIsPrefetchedByAnother) {
  RecordOnA();
  DropKernelEntries();
  auto b = Start("b");
  auto [ls_code, ls] = RecipeCli({"ls", "--json", "--socket", b->socket()});
  ASSERT_EQ(ls_code, 0) << ls;
  auto groups = nlohmann::json::parse(ls)["groups"];
  ASSERT_EQ(groups.size(), 1u) << ls;
  EXPECT_EQ(groups[0]["group"], kGroup);
  EXPECT_EQ(groups[0]["entries"], kKernels);

  // The group's first rank asks for one kernel: B compiles them all.
  Compile(*b, Request(0));
  auto [code, out] = RecipeCli({"prefetch", kGroup, "--wait", "--json",
                                "--socket", b->socket(), "--timeout", "120"});
  ASSERT_EQ(code, 0) << out;
  auto report = nlohmann::json::parse(out);
  EXPECT_EQ(report["entries"], kKernels) << out;
  EXPECT_EQ(report["failed"], 0) << out;
  EXPECT_EQ(b->Stats().compiles(), kKernels) << out << b->Log();
  for (int i = 1; i < kKernels; ++i) {
    EXPECT_TRUE(Compile(*b, Request(i)).results(0).cache_hit()) << i;
  }
  EXPECT_EQ(b->Stats().compiles(), kKernels);
  const auto r = b->Stats().remote_cache();
  EXPECT_GE(r.recipe_hits(), kKernels + 1) << "the index and every object";
  EXPECT_EQ(r.recipe_corrupt(), 0);
}

TEST_F(RedisShareTest, AWarmupManifestMadeByOneDaemonIsServedByAnother) {
  const std::string spec = dir_.path() + "/spec.json";
  std::ofstream(spec) << kSpec;
  std::vector<std::string> digests;
  for (const char* name : {"a", "b"}) {
    auto d = Start(name);
    const std::string base = absl::StrCat(dir_.path(), "/", name, "/rank");
    auto p = Subprocess::Spawn(
        {TPJIT_TEST_RANK, d->socket(), spec, "0", "1", base + ".manifest"},
        base + ".out");
    ASSERT_TRUE(p.ok()) << p.status();
    ASSERT_EQ(p->WaitForever(), 0) << ReadWholeFile(base + ".out") << d->Log();
    std::vector<std::string> words =
        absl::StrSplit(ReadWholeFile(base + ".out"), ' ');
    digests.push_back(words[0]);
    auto s = d->Stats();
    if (digests.size() == 1) {
      EXPECT_GT(s.compiles(), 0);
      continue;
    }
    EXPECT_EQ(s.compiles(), 0) << "every kernel came from Redis";
    EXPECT_GT(s.remote_cache().hits(), 0);
  }
  EXPECT_EQ(digests[0], digests[1]) << "the same manifest";
}

TEST_F(RedisShareTest, AFullLruRedisEvictsAndEveryCompileSucceeds) {
  // Room for little more than what the server holds now.
  RedisReply info = Raw({"INFO", "memory"});
  int64_t used = 0;
  for (absl::string_view line : absl::StrSplit(info.str, "\r\n")) {
    if (absl::ConsumePrefix(&line, "used_memory:")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &used));
    }
  }
  ASSERT_GT(used, 0) << info.str;
  // (Connections and their buffers need room too: with too little, even
  // allkeys-lru refuses most writes. A query buffer that took a 512 KiB
  // value grows to about 1 MiB and is not evictable until Redis shrinks it;
  // with 2 MiB of room, a run on a fresh machine saw 4 of 8 puts refused.
  // 3 MiB leaves room for the daemon's busy connections, and 8 such
  // cubins still overflow it.)
  Raw({"CONFIG", "SET", "maxmemory", absl::StrCat(used + (3 << 20))});
  Raw({"CONFIG", "SET", "maxmemory-policy", "allkeys-lru"});
  auto a = Start("a");
  constexpr int kBig = 8;  // 8 cubins of over 512 KiB each
  int64_t bytes = 0;
  for (int i = 0; i < kBig; ++i) {
    bytes += Compile(*a, Request(i, 512 << 10)).results(0).cubin_bytes();
  }
  EXPECT_GT(bytes, 4 << 20);
  ASSERT_TRUE(
      WaitUntil([&] { return a->Stats().remote_cache().evictions() > 0; },
                absl::Seconds(20)))
      << a->Log();
  auto s = a->Stats();
  EXPECT_EQ(s.compiles(), kBig);
  EXPECT_EQ(s.compile_failures(), 0);
  EXPECT_TRUE(s.serving()) << s.not_serving_reason();
  // A put that even eviction cannot make room for (the big value is in the
  // connection's buffer too) is refused and counted in `full`: never more
  // than a few, never a failure.
  EXPECT_LT(s.remote_cache().full(), kBig / 2);
  EXPECT_TRUE(s.remote_cache().healthy()) << s.remote_cache().detail();
}

TEST_F(RedisShareTest, ACorruptRecipeValueIsIgnoredAndCounted) {
  RecordOnA();
  DropKernelEntries();
  // One object with a flipped byte (its checksum fails) and the index of
  // another group that is not an entry at all.
  const std::string object =
      absl::StrCat("tpjit:r:", RecipeDigest(RecipeOfRequest(1)));
  RedisReply bytes = Raw({"GET", object});
  ASSERT_FALSE(bytes.str.empty());
  bytes.str.back() ^= 1;
  Raw({"SET", object, bytes.str});
  Raw({"SET",
       absl::StrCat("tpjit:r:", recipe_files::GroupFileName("other-group")),
       "garbage"});

  auto b = Start("b");
  Compile(*b, Request(0));
  auto [code, out] = RecipeCli({"prefetch", kGroup, "--wait", "--json",
                                "--socket", b->socket(), "--timeout", "120"});
  ASSERT_EQ(code, 0) << out;
  auto report = nlohmann::json::parse(out);
  EXPECT_EQ(report["entries"], kKernels - 1) << "the corrupt one left out";
  EXPECT_EQ(report["failed"], 0) << out;
  auto [show_code, show] =
      RecipeCli({"show", "other-group", "--socket", b->socket()});
  EXPECT_EQ(show_code, 2) << show;
  auto s = b->Stats();
  EXPECT_EQ(s.compiles(), kKernels - 1);
  EXPECT_GE(s.remote_cache().recipe_corrupt(), 2);
  EXPECT_TRUE(s.remote_cache().healthy());
  // B's own compile of kernel 1 records it again and repairs the value.
  Compile(*b, Request(1));
  ASSERT_TRUE(WaitUntil(
      [&] {
        RedisReply v = Raw({"GET", object});
        return v.str.size() == bytes.str.size() && v.str != bytes.str;
      },
      absl::Seconds(20)));
}

}  // namespace
}  // namespace tpjit::testing
