// A fleet on one host (issue 15): four real tpjitd, each with its own socket
// and cache directory, sharing one real redis-server; eight rank processes
// per daemon warm up the same spec at once. The fleet compiles each kernel
// once, and every rank gets the same manifest. Then the same with Redis
// killed mid-run: every job still finishes, locally.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"
#include "tests/cache/redis_server.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

const std::string kSpec =
    std::string(TPJIT_SPECS_DIR) + "/qwen3-30b-a3b-tp4.json";
// Two of its shapes: each daemon compiles all of them once Redis is gone.
constexpr char kSmallSpec[] = R"({
  "name": "qwen3-two-shapes", "target": {"arch": "sm_90a", "numSms": 132},
  "mPolicy": {"kind": "FULL", "chunkedPrefillSize": 8192},
  "shapes": [{"family": "bf16_gemm_nt", "n": 1280, "k": 2048},
             {"family": "bf16_gemm_nt", "n": 2048, "k": 1024}]})";
constexpr int kDaemons = 4;
constexpr int kRanks = 8;

struct Fleet {
  std::vector<std::unique_ptr<TempDir>> dirs;
  std::vector<std::unique_ptr<Daemon>> daemons;
};

Fleet StartFleet(const std::string& redis_url) {
  Fleet f;
  for (int d = 0; d < kDaemons; ++d) {
    f.dirs.push_back(std::make_unique<TempDir>());
    // A generous time-out: on a loaded CI machine a slow reply must not
    // turn into a local compile (time-outs have their own unit test).
    f.daemons.push_back(std::make_unique<Daemon>(
        f.dirs.back()->path(),
        std::vector<std::string>{"--remote-cache", redis_url, "--procs", "1",
                                 "--remote-cache-timeout", "5"}));
  }
  for (auto& d : f.daemons) EXPECT_TRUE(d->WaitServing()) << d->Log();
  return f;
}

// Starts kRanks rank processes on every daemon (tests/testlib Subprocess;
// a rank that cannot start is an empty slot).
std::vector<std::optional<Subprocess>> StartRanks(
    Fleet& f, const std::string& tag, const std::string& spec = kSpec) {
  std::vector<std::optional<Subprocess>> ranks;
  for (int d = 0; d < kDaemons; ++d) {
    for (int r = 0; r < kRanks; ++r) {
      const std::string base = absl::StrCat(f.dirs[d]->path(), "/", tag, r);
      auto p = Subprocess::Spawn(
          {TPJIT_TEST_RANK, f.daemons[d]->socket(), spec, std::to_string(r),
           std::to_string(kRanks), base + ".manifest"},
          base + ".out");
      ranks.emplace_back();
      if (p.ok()) ranks.back().emplace(std::move(*p));
    }
  }
  return ranks;
}

// Waits for every rank; the set of manifest digests they printed (a failed
// rank adds "failed").
std::set<std::string> WaitRanks(Fleet& f,
                                std::vector<std::optional<Subprocess>> pids,
                                const std::string& tag) {
  std::set<std::string> digests;
  for (size_t i = 0; i < pids.size(); ++i) {
    const int d = static_cast<int>(i) / kRanks,
              r = static_cast<int>(i) % kRanks;
    const std::string base = absl::StrCat(f.dirs[d]->path(), "/", tag, r);
    if (!pids[i] || pids[i]->WaitForever() != 0) {
      ADD_FAILURE() << "rank " << r << " of daemon " << d << ": "
                    << ReadWholeFile(base + ".out") << f.daemons[d]->Log();
      digests.insert("failed");
      continue;
    }
    std::vector<std::string> words =
        absl::StrSplit(ReadWholeFile(base + ".out"), ' ');
    digests.insert(words[0]);
  }
  return digests;
}

size_t DistinctKernels() {
  auto spec = ParseSpecJson(ReadWholeFile(kSpec));
  return PlanWarmup(*spec)->kernels.size();
}

TEST(RedisFleetTest, FourDaemonsCompileEachKernelOnceForTheFleet) {
  TPJIT_REQUIRE_REDIS();
  TempDir redis_dir;
  RedisServer redis(redis_dir.path());
  ASSERT_TRUE(redis.Start());
  Fleet fleet = StartFleet(redis.url());
  std::set<std::string> digests =
      WaitRanks(fleet, StartRanks(fleet, "cold"), "cold");
  EXPECT_EQ(digests.size(), 1u) << "every rank of every daemon: one manifest";
  int64_t compiles = 0, remote_hits = 0, won = 0;
  for (auto& d : fleet.daemons) {
    auto s = d->Stats();
    compiles += s.compiles();
    remote_hits += s.remote_cache().hits();
    won += s.remote_cache().leases_won();
    EXPECT_TRUE(s.remote_cache().healthy()) << s.remote_cache().detail();
  }
  EXPECT_EQ(compiles, static_cast<int64_t>(DistinctKernels()));
  EXPECT_EQ(won, compiles);
  EXPECT_GE(remote_hits, (kDaemons - 1) * compiles);
}

TEST(RedisFleetTest, RedisKilledMidRunAndEveryJobFinishesLocally) {
  TPJIT_REQUIRE_REDIS();
  TempDir redis_dir;
  RedisServer redis(redis_dir.path());
  ASSERT_TRUE(redis.Start());
  Fleet fleet = StartFleet(redis.url());
  const std::string spec = redis_dir.path() + "/small.json";
  std::ofstream(spec) << kSmallSpec;
  std::vector<std::optional<Subprocess>> pids = StartRanks(fleet, "k", spec);
  // Kill Redis once the fleet has compiled something.
  ASSERT_TRUE(WaitUntil(
      [&] {
        for (auto& d : fleet.daemons) {
          if (d->Stats().compiles() > 0) return true;
        }
        return false;
      },
      absl::Seconds(120)));
  redis.Kill();
  std::set<std::string> digests = WaitRanks(fleet, std::move(pids), "k");
  EXPECT_EQ(digests.size(), 1u);
  EXPECT_EQ(digests.count("failed"), 0u);
  for (auto& d : fleet.daemons) {
    auto s = d->Stats();
    EXPECT_TRUE(s.serving()) << s.not_serving_reason();  // SERVING, degraded
    EXPECT_FALSE(s.remote_cache().healthy());
    EXPECT_FALSE(s.remote_cache().detail().empty());
  }
}

TEST(RedisFleetTest, RedisDownAtStartServesLocally) {
  TPJIT_REQUIRE_REDIS();
  TempDir dir;
  Daemon daemon(dir.path(),
                {"--remote-cache", "unix://" + dir.path() + "/no-redis.sock",
                 "--procs", "1"});
  ASSERT_TRUE(daemon.WaitServing()) << daemon.Log();
  auto s = daemon.Stats();
  EXPECT_TRUE(s.serving());
  EXPECT_FALSE(s.remote_cache().healthy());
  EXPECT_NE(s.remote_cache().detail().find("unavailable"), std::string::npos)
      << s.remote_cache().detail();
}

}  // namespace
}  // namespace tpjit::testing
