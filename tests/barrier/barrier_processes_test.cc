// Rank processes (`tpjit barrier` in tpjit_barrier_rank) meeting at a real
// gRPC BarrierService (tpjit_barrier_testd) on a temp Unix socket.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testlib/subprocess.h"

namespace tpjit {
namespace {

using ::tpjit::testing::ReadWholeFile;
using ::tpjit::testing::Subprocess;

using ::testing::HasSubstr;

constexpr int kWorld = 8;

struct RankRun {
  int code = -1;
  std::string out, err;
  absl::Duration wall;             // spawn to exit
  std::optional<double> reported;  // the "after N s" the rank printed
};

class BarrierProcessesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tpjit-barrier-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/tpjitd.sock";
    StartServer();
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServer() {
    const std::string out = dir_ + "/testd.out";
    auto p = Subprocess::Spawn({TPJIT_BARRIER_TESTD, "--socket", socket_}, out,
                               dir_ + "/testd.err");
    ASSERT_TRUE(p.ok()) << p.status();
    server_ = std::make_unique<Subprocess>(std::move(*p));
    const absl::Time end = absl::Now() + absl::Seconds(10);
    while (ReadWholeFile(out).find("ready") == std::string::npos) {
      ASSERT_LT(absl::Now(), end)
          << "testd did not start: " << ReadWholeFile(dir_ + "/testd.err");
      ASSERT_FALSE(server_->Poll().has_value()) << "testd exited";
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  void StopServer() {
    server_->Signal(SIGTERM);
    ASSERT_EQ(server_->Wait(absl::Seconds(5)), 0);
    server_.reset();
  }

  Subprocess SpawnRank(const std::string& group, int rank, double timeout) {
    const std::string base =
        absl::StrCat(dir_, "/", group, "-", rank, "-", spawned_++);
    auto p = Subprocess::Spawn(
        {TPJIT_BARRIER_RANK, "--group", group, "--rank", absl::StrCat(rank),
         "--world", absl::StrCat(kWorld), "--timeout", absl::StrCat(timeout),
         "--socket", socket_},
        base + ".out", base + ".err");
    EXPECT_TRUE(p.ok()) << p.status();
    paths_[p->pid()] = base;
    return std::move(*p);
  }

  RankRun Finish(Subprocess& p, absl::Duration limit) {
    RankRun run;
    auto code = p.Wait(limit);
    EXPECT_TRUE(code.has_value()) << "rank process hung";
    run.code = code.value_or(-1);
    run.wall = p.exited() - p.started();
    run.out = ReadWholeFile(paths_[p.pid()] + ".out");
    run.err = ReadWholeFile(paths_[p.pid()] + ".err");
    std::smatch m;
    if (std::regex_search(run.err, m, std::regex("after ([0-9.]+)s:"))) {
      double s = 0;
      if (absl::SimpleAtod(m[1].str(), &s)) run.reported = s;
    }
    return run;
  }

  // All kWorld ranks at once; expects every one to pass.
  void RoundAllPass(const std::string& group, uint64_t epoch) {
    std::vector<Subprocess> ranks;
    for (int r = 0; r < kWorld; ++r) ranks.push_back(SpawnRank(group, r, 20));
    for (int r = 0; r < kWorld; ++r) {
      RankRun run = Finish(ranks[r], absl::Seconds(30));
      EXPECT_EQ(run.code, 0) << run.err;
      EXPECT_THAT(run.out, HasSubstr(absl::StrCat("epoch ", epoch,
                                                  ": all 8 "
                                                  "ranks arrived")));
    }
  }

  std::string dir_, socket_;
  std::unique_ptr<Subprocess> server_;
  std::map<pid_t, std::string> paths_;
  int spawned_ = 0;
};

TEST_F(BarrierProcessesTest, AllOnTimePass) {
  const absl::Time start = absl::Now();
  RoundAllPass("ontime", 0);
  RecordProperty("wall_ms", absl::ToInt64Milliseconds(absl::Now() - start));
}

TEST_F(BarrierProcessesTest, OneLateRankFailsEveryRankByTheDeadline) {
  constexpr double kTimeout = 2.0;
  std::vector<Subprocess> ranks;
  for (int r = 0; r < kWorld - 1; ++r) {
    ranks.push_back(SpawnRank("late", r, kTimeout));
  }
  std::vector<RankRun> runs;
  for (auto& p : ranks) runs.push_back(Finish(p, absl::Seconds(10)));
  // Rank 7 comes after the others gave up: it is told at once.
  Subprocess late = SpawnRank("late", kWorld - 1, kTimeout);
  RankRun late_run = Finish(late, absl::Seconds(10));
  double longest = 0;
  for (int r = 0; r < kWorld - 1; ++r) {
    const RankRun& run = runs[r];
    EXPECT_EQ(run.code, 3) << run.err;
    EXPECT_THAT(run.err, HasSubstr("late: rank 7 (never arrived in this "
                                   "group)"));
    ASSERT_TRUE(run.reported.has_value()) << run.err;
    EXPECT_LE(*run.reported, kTimeout + 0.5) << run.err;
    // The epoch fails when the first rank's wait runs out; ranks that
    // started later return a little earlier than their own timeout.
    longest = std::max(longest, *run.reported);
    // Spawn to exit, process start-up included, on a loaded 2-core machine.
    EXPECT_LE(run.wall, absl::Seconds(kTimeout + 1.5)) << run.err;
  }
  EXPECT_GE(longest, kTimeout - 0.05);
  EXPECT_EQ(late_run.code, 3) << late_run.err;
  EXPECT_THAT(late_run.err, HasSubstr("late: rank 7"));
  ASSERT_TRUE(late_run.reported.has_value());
  EXPECT_LE(*late_run.reported, 0.5);
  std::cerr << "rank 0 said: " << runs[0].err
            << "rank 7 said: " << late_run.err;
}

TEST_F(BarrierProcessesTest, ManyEpochsInARow) {
  for (uint64_t epoch = 0; epoch < 10; ++epoch) RoundAllPass("many", epoch);
}

TEST_F(BarrierProcessesTest, ServerRestartedBetweenEpochs) {
  RoundAllPass("restart", 0);
  RoundAllPass("restart", 1);
  StopServer();
  // No daemon: a rank fails fast and says where it looked.
  Subprocess orphan = SpawnRank("restart", 0, 20);
  RankRun run = Finish(orphan, absl::Seconds(10));
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_THAT(run.err, HasSubstr("not reachable at unix:" + socket_));
  EXPECT_LT(run.wall, absl::Seconds(5));
  StartServer();
  RoundAllPass("restart", 0);  // a fresh daemon counts from 0 again
  RoundAllPass("restart", 1);
}

}  // namespace
}  // namespace tpjit
