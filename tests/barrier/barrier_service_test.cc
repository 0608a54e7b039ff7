// BarrierServiceImpl behind a real gRPC server on a temp Unix socket, called
// through DaemonBarrier and RendezvousClient from threads of this process.
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "client/rpc/barrier_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/barrier/test_server.h"
#include "tests/testlib/wait.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;

class BarrierServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/tpjit-barrier-svc-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/tpjitd.sock";
    BarrierServiceImpl::Options options;
    options.progress = [](const std::string& group, int rank) {
      return absl::StrCat("warming up ", group, " (rank ", rank, ")");
    };
    options.on_barrier_answer = [this](const absl::Status& s) {
      ++answers_;
      if (absl::IsDeadlineExceeded(s)) ++timeouts_;
    };
    auto server = BarrierTestServer::Start(socket_, options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  void TearDown() override {
    server_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<DaemonBarrier> Rank(const std::string& group, int rank,
                                      int world) {
    return DaemonBarrier::Connect(socket_, {group, rank, world});
  }

  // Runs `world` ranks on threads; rank `late` (if >= 0) does not come.
  std::vector<absl::Status> Round(const std::string& group, int world,
                                  absl::Duration timeout, int late = -1) {
    std::vector<absl::Status> status(world);
    std::vector<std::thread> threads;
    for (int r = 0; r < world; ++r) {
      if (r == late) continue;
      threads.emplace_back(
          [&, r] { status[r] = Rank(group, r, world)->Arrive(timeout); });
    }
    for (auto& t : threads) t.join();
    return status;
  }

  // Polls `done` until it holds (true) or `limit` passes (false).
  static bool WaitFor(const std::function<bool()>& done,
                      absl::Duration limit = absl::Seconds(10)) {
    return ::tpjit::testing::WaitUntil(done, limit);
  }

  std::string dir_, socket_;
  std::atomic<int> answers_{0}, timeouts_{0};
  std::unique_ptr<BarrierTestServer> server_;
};

TEST_F(BarrierServiceTest, AllArrive) {
  for (const absl::Status& s : Round("g", 8, absl::Seconds(10))) {
    EXPECT_TRUE(s.ok()) << s;
  }
}

TEST_F(BarrierServiceTest, LateRankNamedWithProgress) {
  const absl::Time start = absl::Now();
  auto status = Round("g", 8, absl::Milliseconds(500), /*late=*/5);
  const absl::Duration took = absl::Now() - start;
  for (int r = 0; r < 8; ++r) {
    if (r == 5) continue;
    EXPECT_TRUE(absl::IsDeadlineExceeded(status[r])) << status[r];
    EXPECT_THAT(status[r].message(),
                HasSubstr("late: rank 5 (last progress: warming up g (rank "
                          "5); never arrived in this group)"));
  }
  EXPECT_LT(took, absl::Milliseconds(500 + 400));
  // The late rank learns at once that it was late.
  const absl::Time t = absl::Now();
  absl::Status s = Rank("g", 5, 8)->Arrive(absl::Seconds(10));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("after the barrier timed out"));
  EXPECT_LT(absl::Now() - t, absl::Milliseconds(500));
  EXPECT_EQ(timeouts_.load(), 8);  // the daemon's counter hook saw them all
  EXPECT_EQ(answers_.load(), 8);
}

TEST_F(BarrierServiceTest, ManyEpochsWithOneBarrierPerRank) {
  constexpr int kWorld = 4;
  std::vector<std::thread> threads;
  std::vector<absl::Status> last(kWorld);
  for (int r = 0; r < kWorld; ++r) {
    threads.emplace_back([&, r] {
      auto barrier = Rank("many", r, kWorld);
      for (int e = 0; e < 200 && last[r].ok(); ++e) {
        last[r] = barrier->Arrive(absl::Seconds(10));
        if (last[r].ok() && barrier->last_epoch() != static_cast<uint64_t>(e)) {
          last[r] = absl::InternalError("wrong epoch");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const absl::Status& s : last) EXPECT_TRUE(s.ok()) << s;
  EXPECT_LE(server_->service().arrivals().remembered_epochs(), 64);
}

TEST_F(BarrierServiceTest, BadRequestsAreRejected) {
  absl::Status s = Rank("g", 9, 8)->Arrive(absl::Seconds(1));
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("rank 9 out of range for world 8"));
}

TEST_F(BarrierServiceTest, ClientThatGoesAwayIsWithdrawn) {
  DaemonBarrierOptions o{"gone", 0, 2};
  o.rpc_margin = absl::Milliseconds(-9800);  // RPC deadline 200 ms
  absl::Status s =
      DaemonBarrier::Connect(socket_, o)->Arrive(absl::Seconds(10));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("did not answer"));
  EXPECT_TRUE(WaitFor([&] {
    return server_->service().arrivals().waiting_ranks() == 0;
  })) << "the withdrawn rank is still waiting";
  // Rank 0 did not count: the group meets in epoch 0 as if it never came.
  auto status = Round("gone", 2, absl::Seconds(5));
  EXPECT_TRUE(status[0].ok() && status[1].ok()) << status[0] << status[1];
}

TEST_F(BarrierServiceTest, MissingDaemonFailsFast) {
  const absl::Time start = absl::Now();
  absl::Status s = DaemonBarrier::Connect(dir_ + "/nobody.sock", {"g", 0, 2})
                       ->Arrive(absl::Seconds(30));
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("not reachable at unix:" + dir_));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
}

TEST_F(BarrierServiceTest, ShutdownAnswersWaiters) {
  std::thread t([&] {
    absl::Status s = Rank("down", 0, 2)->Arrive(absl::Seconds(30));
    EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  });
  ASSERT_TRUE(WaitFor(
      [&] { return server_->service().arrivals().waiting_ranks() == 1; }));
  server_->Shutdown();
  t.join();
}

// Rank 1 waits first (Peek shows it waiting for 50 ms, by the daemon's
// clock); rank 0's publish answers it with the value and both arrivals.
TEST_F(BarrierServiceTest, RendezvousHandsTheValueOver) {
  auto client = RendezvousClient::Connect(socket_);
  absl::StatusOr<RendezvousReply> fetched;
  const absl::Time before_wait = absl::Now();
  std::thread t(
      [&] { fetched = client->Exchange("r", 3, 1, 2, "", absl::Seconds(10)); });
  const bool rank1_waits = WaitFor([&] {
    auto seen = client->Peek("r", 3, 0, 2, absl::Seconds(1));
    return seen.ok() && seen->arrivals.size() == 1 &&
           seen->arrivals[0].rank == 1 &&
           seen->arrivals[0].age >= absl::Milliseconds(50);
  });
  auto published = client->Exchange("r", 3, 0, 2, "the-id", absl::Seconds(5));
  const absl::Duration bound = absl::Now() - before_wait;
  t.join();
  ASSERT_TRUE(rank1_waits) << "rank 1 never showed up in Peek";
  ASSERT_TRUE(published.ok()) << published.status();
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->value, "the-id");
  ASSERT_EQ(fetched->arrivals.size(), 2u);
  EXPECT_EQ(fetched->arrivals[0].rank, 0);
  EXPECT_EQ(fetched->arrivals[1].rank, 1);
  EXPECT_GE(fetched->arrivals[1].age, absl::Milliseconds(50));
  EXPECT_LE(fetched->arrivals[1].age, bound);
  EXPECT_LT(fetched->arrivals[0].age, fetched->arrivals[1].age);
  auto peek = client->Peek("r", 3, 1, 2, absl::Seconds(1));
  ASSERT_TRUE(peek.ok());
  EXPECT_EQ(peek->arrivals.size(), 2u);
  // Nobody publishes epoch 4: the wait ends at the timeout, naming rank 0.
  auto lonely = client->Exchange("r", 4, 1, 2, "", absl::Milliseconds(300));
  EXPECT_TRUE(absl::IsDeadlineExceeded(lonely.status())) << lonely.status();
  EXPECT_THAT(lonely.status().message(), HasSubstr("ranks not seen: 0"));
}

}  // namespace
}  // namespace tpjit
