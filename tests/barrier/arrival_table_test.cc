#include "src/barrier/arrival_table.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Collects the outcome of one Arrive.
struct Answer {
  bool called = false;
  ArrivalTable::Outcome outcome;
  ArrivalTable::Done Done() {
    return [this](const ArrivalTable::Outcome& o) {
      EXPECT_FALSE(called) << "done called twice";
      called = true;
      outcome = o;
    };
  }
};

ArrivalTable::Arrival At(int rank, int world, absl::Duration timeout,
                         std::optional<uint64_t> epoch = std::nullopt,
                         std::string group = "g") {
  return {std::move(group), rank, world, epoch, timeout};
}

class ArrivalTableTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  ArrivalTable table_{&clock_, [](const std::string& group, int rank) {
                        return rank == 3 ? "compiling 5/9 kernels" : "";
                      }};
};

TEST_F(ArrivalTableTest, CompletesWhenLastRankArrives) {
  Answer a[3];
  table_.Arrive(At(0, 3, absl::Seconds(5)), a[0].Done());
  clock_.Advance(absl::Seconds(1));
  table_.Arrive(At(2, 3, absl::Seconds(5)), a[2].Done());
  EXPECT_FALSE(a[0].called);
  EXPECT_EQ(table_.waiting_ranks(), 2);
  table_.Arrive(At(1, 3, absl::Seconds(5)), a[1].Done());
  for (const Answer& x : a) {
    ASSERT_TRUE(x.called);
    EXPECT_TRUE(x.outcome.status.ok()) << x.outcome.status;
    EXPECT_EQ(x.outcome.epoch, 0u);
  }
  EXPECT_EQ(a[0].outcome.waited, absl::Seconds(1));
  EXPECT_EQ(table_.waiting_ranks(), 0);
  EXPECT_FALSE(table_.NextDeadline().has_value());
}

TEST_F(ArrivalTableTest, TimeoutFailsEveryWaiterNamingLateRanks) {
  Answer a[3];
  for (int r = 0; r < 3; ++r) {
    table_.Arrive(At(r, 4, absl::Seconds(2)), a[r].Done());
  }
  ASSERT_EQ(table_.NextDeadline(), clock_.MonotonicNow() + absl::Seconds(2));
  clock_.Advance(absl::Milliseconds(1999));
  EXPECT_EQ(table_.ExpireDue(), 0);
  clock_.Advance(absl::Milliseconds(1));
  EXPECT_EQ(table_.ExpireDue(), 3);
  for (const Answer& x : a) {
    ASSERT_TRUE(x.called);
    EXPECT_TRUE(absl::IsDeadlineExceeded(x.outcome.status));
    EXPECT_THAT(x.outcome.status.message(),
                HasSubstr("late: rank 3 (last progress: compiling 5/9 "
                          "kernels; never arrived in this group)"));
    EXPECT_THAT(x.outcome.status.message(), HasSubstr("3 of 4 ranks"));
  }
  // The late rank is told at once, and named.
  clock_.Advance(absl::Seconds(5));
  Answer late;
  table_.Arrive(At(3, 4, absl::Seconds(2)), late.Done());
  ASSERT_TRUE(late.called);
  EXPECT_TRUE(absl::IsDeadlineExceeded(late.outcome.status));
  EXPECT_THAT(late.outcome.status.message(),
              HasSubstr("rank 3 arrived 5.0s after the barrier timed out"));
  EXPECT_THAT(late.outcome.status.message(), HasSubstr("late: rank 3"));
}

TEST_F(ArrivalTableTest, EarliestDeadlineFailsTheEpoch) {
  Answer a, b;
  table_.Arrive(At(0, 3, absl::Seconds(10)), a.Done());
  table_.Arrive(At(1, 3, absl::Seconds(1)), b.Done());
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(table_.ExpireDue(), 2);
  EXPECT_TRUE(absl::IsDeadlineExceeded(a.outcome.status));
  EXPECT_THAT(a.outcome.status.message(), HasSubstr("late: rank 2"));
}

TEST_F(ArrivalTableTest, LastSeenProgressInLateReport) {
  Answer a[2];
  table_.Arrive(At(0, 2, absl::Seconds(1)), a[0].Done());
  table_.Arrive(At(1, 2, absl::Seconds(1)), a[1].Done());
  ASSERT_TRUE(a[1].outcome.status.ok());
  Answer b;
  clock_.Advance(absl::Seconds(3));
  table_.Arrive(At(0, 2, absl::Seconds(1)), b.Done());
  clock_.Advance(absl::Seconds(1));
  table_.ExpireDue();
  EXPECT_EQ(b.outcome.epoch, 1u);
  EXPECT_THAT(b.outcome.status.message(),
              HasSubstr("rank 1 (last arrived at epoch 0, 4.0s ago)"));
}

TEST_F(ArrivalTableTest, RejectsBadArrivals) {
  Answer a;
  table_.Arrive(At(8, 8, absl::Seconds(1)), a.Done());
  EXPECT_TRUE(absl::IsInvalidArgument(a.outcome.status));
  EXPECT_THAT(a.outcome.status.message(), HasSubstr("rank 8 out of range"));
  Answer b;
  table_.Arrive(At(0, 0, absl::Seconds(1)), b.Done());
  EXPECT_TRUE(absl::IsInvalidArgument(b.outcome.status));
  Answer c;
  table_.Arrive(At(0, 2, absl::Seconds(1), std::nullopt, ""), c.Done());
  EXPECT_TRUE(absl::IsInvalidArgument(c.outcome.status));
  Answer d;
  table_.Arrive(At(0, 2, -absl::Seconds(1)), d.Done());
  EXPECT_TRUE(absl::IsInvalidArgument(d.outcome.status));
}

TEST_F(ArrivalTableTest, RejectsWorldMismatchAndDuplicates) {
  Answer first, mismatch, dup_waiting, dup_explicit;
  table_.Arrive(At(0, 4, absl::Seconds(5), 7), first.Done());
  table_.Arrive(At(1, 8, absl::Seconds(5), 7), mismatch.Done());
  EXPECT_TRUE(absl::IsFailedPrecondition(mismatch.outcome.status));
  EXPECT_THAT(mismatch.outcome.status.message(),
              HasSubstr("rank 1 says world=8 but group 'g' epoch 7 was "
                        "opened with world=4 by rank 0"));
  table_.Arrive(At(0, 4, absl::Seconds(5)), dup_waiting.Done());
  EXPECT_TRUE(absl::IsFailedPrecondition(dup_waiting.outcome.status));
  EXPECT_THAT(dup_waiting.outcome.status.message(),
              HasSubstr("already waiting in epoch 7"));
  EXPECT_FALSE(first.called);
  // Complete epoch 7, then rank 2 claims it again.
  Answer rest[3];
  for (int r = 1; r < 4; ++r) {
    table_.Arrive(At(r, 4, absl::Seconds(5), 7), rest[r - 1].Done());
  }
  ASSERT_TRUE(first.outcome.status.ok());
  table_.Arrive(At(2, 4, absl::Seconds(5), 7), dup_explicit.Done());
  EXPECT_TRUE(absl::IsFailedPrecondition(dup_explicit.outcome.status));
  EXPECT_THAT(dup_explicit.outcome.status.message(),
              HasSubstr("rank 2 already arrived"));
}

TEST_F(ArrivalTableTest, ManyEpochsInARowStayBounded) {
  constexpr int kWorld = 4;
  for (uint64_t e = 0; e < 1000; ++e) {
    Answer a[kWorld];
    for (int r = kWorld - 1; r >= 0; --r) {
      table_.Arrive(At(r, kWorld, absl::Seconds(1)), a[r].Done());
      clock_.Advance(absl::Milliseconds(1));
    }
    for (const Answer& x : a) {
      ASSERT_TRUE(x.outcome.status.ok()) << x.outcome.status;
      ASSERT_EQ(x.outcome.epoch, e);
    }
  }
  EXPECT_LE(table_.remembered_epochs(), 64 + 1);  // + the newest
  clock_.Advance(absl::Minutes(11));
  table_.ExpireDue();
  EXPECT_EQ(table_.remembered_epochs(), 0);
}

TEST_F(ArrivalTableTest, WithdrawnRankCountsAsAbsentAndRejoins) {
  Answer solo, rejoin, other;
  auto ticket = table_.Arrive(At(0, 2, absl::Seconds(5)), solo.Done());
  EXPECT_TRUE(table_.Withdraw(ticket));
  EXPECT_FALSE(table_.Withdraw(ticket));
  EXPECT_EQ(table_.waiting_ranks(), 0);
  table_.Arrive(At(0, 2, absl::Seconds(5)), rejoin.Done());
  EXPECT_FALSE(rejoin.called);
  ticket = table_.Arrive(At(1, 2, absl::Seconds(5)), other.Done());
  EXPECT_FALSE(solo.called);
  ASSERT_TRUE(rejoin.outcome.status.ok());
  EXPECT_EQ(rejoin.outcome.epoch, 0u);  // the withdrawn call did not count
  EXPECT_EQ(other.outcome.epoch, 0u);
  EXPECT_FALSE(table_.Withdraw(ticket));  // already answered
}

TEST_F(ArrivalTableTest, FailAllAnswersWaiters) {
  Answer a;
  table_.Arrive(At(0, 2, absl::Seconds(5)), a.Done());
  table_.FailAll(absl::UnavailableError("down"));
  EXPECT_TRUE(absl::IsUnavailable(a.outcome.status));
  EXPECT_EQ(table_.waiting_ranks(), 0);
}

// Real time: 8 threads, one late; a timer thread plays the daemon's part.
TEST(ArrivalTableRealTimeTest, EveryRankReturnsByTheDeadline) {
  ArrivalTable table(Clock::Real(), nullptr);
  std::atomic<bool> stop{false};
  std::thread timer([&] {
    while (!stop) {
      table.ExpireDue();
      absl::SleepFor(absl::Milliseconds(2));
    }
  });
  constexpr int kWorld = 8;
  const absl::Duration timeout = absl::Milliseconds(300);
  std::vector<std::thread> ranks;
  std::vector<absl::Duration> took(kWorld);
  std::vector<absl::Status> status(kWorld);
  for (int r = 0; r < kWorld - 1; ++r) {
    ranks.emplace_back([&, r] {
      absl::Notification done;
      const absl::Time start = absl::Now();
      table.Arrive(At(r, kWorld, timeout), [&](const auto& o) {
        status[r] = o.status;
        done.Notify();
      });
      done.WaitForNotification();
      took[r] = absl::Now() - start;
    });
  }
  for (auto& t : ranks) t.join();
  stop = true;
  timer.join();
  for (int r = 0; r < kWorld - 1; ++r) {
    EXPECT_TRUE(absl::IsDeadlineExceeded(status[r]));
    EXPECT_THAT(status[r].message(), HasSubstr("late: rank 7"));
    EXPECT_LT(took[r], timeout + absl::Milliseconds(100));
    EXPECT_GE(took[r], timeout - absl::Milliseconds(50));
  }
}

}  // namespace
}  // namespace tpjit
