// The NCCL barrier on real GPUs: one tpjit_gpu_barrier_rank process per GPU,
// meeting through a BarrierService hosted here on a temp Unix socket. Uses
// every visible GPU (set CUDA_VISIBLE_DEVICES to pick); skips with a reason
// when fewer than 2 are visible (fails instead under TPJIT_REQUIRE_GPU=1). A
// summary of timings goes to stdout and, if $TPJIT_GPU_RESULTS is set, is
// appended to that file.
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/barrier/nccl_api.h"
#include "tests/barrier/test_server.h"
#include "tests/gpu/require_gpu.h"
#include "tests/testlib/subprocess.h"

namespace tpjit {
namespace {

using ::tpjit::testing::ReadWholeFile;
using ::tpjit::testing::Subprocess;

using ::testing::HasSubstr;

// One "rep=..." line of a rank.
struct Rep {
  std::string code, msg;
  std::map<std::string, double> ms;
};

struct RankResult {
  int exit = -1;
  std::vector<Rep> reps;
  bool gpu_ok = false;
  std::string out, err;
};

std::string RankBinary() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    auto beside =
        std::filesystem::path(self).parent_path() / "tpjit_gpu_barrier_rank";
    if (std::filesystem::exists(beside)) return beside.string();
  }
  return TPJIT_GPU_BARRIER_RANK;
}

Rep ParseRep(const std::string& line) {
  Rep rep;
  const size_t msg = line.find(" msg=");
  if (msg != std::string::npos) rep.msg = line.substr(msg + 5);
  for (absl::string_view kv :
       absl::StrSplit(line.substr(0, msg), ' ', absl::SkipEmpty())) {
    std::pair<std::string, std::string> p = absl::StrSplit(kv, '=');
    double v = 0;
    if (p.first == "code") rep.code = p.second;
    if (absl::EndsWith(p.first, "_ms") && absl::SimpleAtod(p.second, &v)) {
      rep.ms[p.first] = v;
    }
  }
  return rep;
}

void Record(const std::string& line) {
  std::printf("RESULT %s\n", line.c_str());
  if (const char* path = std::getenv("TPJIT_GPU_RESULTS")) {
    std::ofstream(path, std::ios::app) << line << "\n";
  }
}

class BarrierGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    const cudaError_t e = CudaRuntime::Real()->GetDeviceCount(&count);
    // No driver or no device: skip. Any other error on a machine with GPUs
    // is a broken GPU run, never a skip.
    if (e == cudaErrorNoDevice || e == cudaErrorInsufficientDriver) {
      TPJIT_SKIP_WITHOUT_GPU(
          "no usable GPU: " << CudaRuntime::Real()->ErrorString(e));
    }
    ASSERT_EQ(e, cudaSuccess)
        << "cudaGetDeviceCount: " << CudaRuntime::Real()->ErrorString(e);
    if (count < 2) {
      TPJIT_SKIP_WITHOUT_GPU("needs >= 2 GPUs, found " << count);
    }
    world_ = count;
    char dir[] = "/tmp/tpjit-gpu-barrier-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    auto server = BarrierTestServer::Start(dir_ + "/tpjitd.sock");
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    server_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // Runs one process per GPU; `delays[r]` seconds before rank r arrives.
  std::vector<RankResult> RunRanks(const std::string& group, double timeout,
                                   int reps, std::vector<double> delays) {
    delays.resize(world_, 0);
    std::vector<Subprocess> procs;
    for (int r = 0; r < world_; ++r) {
      const std::string base = absl::StrCat(dir_, "/", group, "-", r);
      auto p = Subprocess::Spawn(
          {RankBinary(), "--socket", dir_ + "/tpjitd.sock", "--group", group,
           "--rank", absl::StrCat(r), "--world", absl::StrCat(world_),
           "--device", absl::StrCat(r), "--timeout", absl::StrCat(timeout),
           "--delay", absl::StrCat(delays[r]), "--reps", absl::StrCat(reps)},
          base + ".out", base + ".err");
      EXPECT_TRUE(p.ok()) << p.status();
      procs.push_back(std::move(*p));
    }
    std::vector<RankResult> results(world_);
    const absl::Duration limit =
        absl::Seconds(30 + reps * (timeout + 5) +
                      *std::max_element(delays.begin(), delays.end()));
    for (int r = 0; r < world_; ++r) {
      const std::string base = absl::StrCat(dir_, "/", group, "-", r);
      auto code = procs[r].Wait(limit);
      EXPECT_TRUE(code.has_value()) << "rank " << r << " hung";
      RankResult& res = results[r];
      res.exit = code.value_or(-1);
      res.out = ReadWholeFile(base + ".out");
      res.err = ReadWholeFile(base + ".err");
      for (absl::string_view line : absl::StrSplit(res.out, '\n')) {
        if (absl::StartsWith(line, "rep=")) {
          res.reps.push_back(ParseRep(std::string(line)));
        }
        if (line == "gpu_ok=1") res.gpu_ok = true;
      }
    }
    return results;
  }

  int world_ = 0;
  std::string dir_;
  std::unique_ptr<BarrierTestServer> server_;
};

TEST_F(BarrierGpuTest, OnTimePasses) {
  auto results = RunRanks("ontime", 60, 1, {});
  for (int r = 0; r < world_; ++r) {
    const RankResult& res = results[r];
    ASSERT_EQ(res.exit, 0) << res.out << res.err;
    ASSERT_EQ(res.reps.size(), 1u);
    EXPECT_TRUE(res.gpu_ok);
    const auto& ms = res.reps[0].ms;
    Record(absl::StrFormat(
        "world=%d case=ontime rank=%d total_ms=%.1f rendezvous_ms=%.1f "
        "init_ms=%.1f first_all_reduce_ms=%.1f teardown_ms=%.1f",
        world_, r, ms.at("total_ms"), ms.at("rendezvous_ms"), ms.at("init_ms"),
        ms.at("all_reduce_ms"), ms.at("teardown_ms")));
  }
}

TEST_F(BarrierGpuTest, OneLateRankFailsEveryRankByTheDeadline) {
  constexpr double kTimeout = 3;
  constexpr double kLate = kTimeout + 2;
  const int late = world_ - 1;
  std::vector<double> delays(world_, 0);
  delays[late] = kLate;
  auto results = RunRanks("late", kTimeout, 1, delays);
  const std::string named = absl::StrCat("late: rank ", late);
  for (int r = 0; r < world_; ++r) {
    const RankResult& res = results[r];
    EXPECT_EQ(res.exit, 3) << res.out << res.err;
    ASSERT_EQ(res.reps.size(), 1u) << res.out << res.err;
    const Rep& rep = res.reps[0];
    EXPECT_EQ(rep.code, "DEADLINE_EXCEEDED");
    EXPECT_THAT(rep.msg, HasSubstr(named));
    EXPECT_LE(rep.ms.at("total_ms"), (kTimeout + 1) * 1000) << rep.msg;
    EXPECT_TRUE(res.gpu_ok) << "GPU unusable after the barrier: " << res.out;
    Record(absl::StrFormat(
        "world=%d case=late rank=%d%s total_ms=%.1f abort_ms=%.1f "
        "init_ms=%.1f gpu_ok=%d msg=%s",
        world_, r, r == late ? "(late)" : "", rep.ms.at("total_ms"),
        rep.ms.at("abort_ms"), rep.ms.at("init_ms"), res.gpu_ok, rep.msg));
  }
}

TEST_F(BarrierGpuTest, FiftyRepetitionsWithoutAHang) {
  constexpr int kReps = 50;
  const absl::Time start = absl::Now();
  auto results = RunRanks("reps", 30, kReps, {});
  const double wall = absl::ToDoubleSeconds(absl::Now() - start);
  for (int r = 0; r < world_; ++r) {
    const RankResult& res = results[r];
    EXPECT_EQ(res.exit, 0) << res.out << res.err;
    EXPECT_EQ(res.reps.size(), static_cast<size_t>(kReps));
    EXPECT_TRUE(res.gpu_ok);
    double sum = 0, worst = 0, init = 0, reduce = 0;
    for (const Rep& rep : res.reps) {
      EXPECT_EQ(rep.code, "OK") << rep.msg;
      sum += rep.ms.at("total_ms");
      worst = std::max(worst, rep.ms.at("total_ms"));
      init += rep.ms.at("init_ms");
      reduce += rep.ms.at("all_reduce_ms");
    }
    const double n = std::max<size_t>(res.reps.size(), 1);
    Record(absl::StrFormat(
        "world=%d case=reps50 rank=%d passed=%d mean_total_ms=%.1f "
        "max_total_ms=%.1f mean_init_ms=%.1f mean_all_reduce_ms=%.1f "
        "wall_s=%.1f",
        world_, r, static_cast<int>(res.reps.size()), sum / n, worst, init / n,
        reduce / n, wall));
  }
}

}  // namespace
}  // namespace tpjit
