#include "src/barrier/rendezvous_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;

struct Answer {
  bool called = false;
  RendezvousTable::Outcome outcome;
  RendezvousTable::Done Done() {
    return [this](const RendezvousTable::Outcome& o) {
      EXPECT_FALSE(called);
      called = true;
      outcome = o;
    };
  }
};

RendezvousTable::Request Req(int rank, int world, std::string value = "",
                             absl::Duration timeout = absl::Seconds(2)) {
  RendezvousTable::Request r;
  r.group = "g";
  r.epoch = 4;
  r.rank = rank;
  r.world = world;
  r.value = std::move(value);
  r.timeout = timeout;
  return r;
}

class RendezvousTableTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  RendezvousTable table_{&clock_};
};

TEST_F(RendezvousTableTest, PublishThenFetch) {
  Answer p, f;
  table_.Exchange(Req(0, 2, "id"), p.Done());
  ASSERT_TRUE(p.outcome.status.ok());
  clock_.Advance(absl::Seconds(1));
  table_.Exchange(Req(1, 2), f.Done());
  ASSERT_TRUE(f.outcome.status.ok());
  EXPECT_EQ(f.outcome.reply.value, "id");
  ASSERT_EQ(f.outcome.reply.arrivals.size(), 2u);
  EXPECT_EQ(f.outcome.reply.arrivals[0].rank, 0);
  EXPECT_EQ(f.outcome.reply.arrivals[0].age, absl::Seconds(1));
  EXPECT_EQ(f.outcome.reply.arrivals[1].age, absl::ZeroDuration());
}

TEST_F(RendezvousTableTest, FetchWaitsForPublish) {
  Answer f, p;
  table_.Exchange(Req(1, 2), f.Done());
  EXPECT_FALSE(f.called);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(table_.ExpireDue(), 0);
  table_.Exchange(Req(0, 2, "id"), p.Done());
  ASSERT_TRUE(f.called);
  EXPECT_EQ(f.outcome.reply.value, "id");
  EXPECT_FALSE(table_.NextDeadline().has_value());
}

TEST_F(RendezvousTableTest, FetchTimesOutNamingMissingRanks) {
  Answer f;
  table_.Exchange(Req(2, 4), f.Done());
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(table_.ExpireDue(), 1);
  EXPECT_TRUE(absl::IsDeadlineExceeded(f.outcome.status));
  EXPECT_THAT(f.outcome.status.message(),
              HasSubstr("rank 0 did not publish within 2.0s; ranks not seen: "
                        "0, 1, 3"));
}

TEST_F(RendezvousTableTest, AskingAgainStartsANewRound) {
  Answer p1, f1, f2, p2;
  table_.Exchange(Req(0, 2, "old"), p1.Done());
  table_.Exchange(Req(1, 2), f1.Done());
  EXPECT_EQ(f1.outcome.reply.value, "old");
  table_.Exchange(Req(1, 2), f2.Done());  // the job restarted
  EXPECT_FALSE(f2.called);
  table_.Exchange(Req(0, 2, "new"), p2.Done());
  ASSERT_TRUE(f2.called);
  EXPECT_EQ(f2.outcome.reply.value, "new");
}

TEST_F(RendezvousTableTest, PeekRecordsNothing) {
  Answer f, peek;
  table_.Exchange(Req(1, 3), f.Done());
  auto r = Req(2, 3);
  r.peek = true;
  table_.Exchange(r, peek.Done());
  ASSERT_TRUE(peek.outcome.status.ok());
  ASSERT_EQ(peek.outcome.reply.arrivals.size(), 1u);
  EXPECT_EQ(peek.outcome.reply.arrivals[0].rank, 1);
}

TEST_F(RendezvousTableTest, Validates) {
  Answer a, b, c, d;
  table_.Exchange(Req(0, 2, ""), a.Done());
  EXPECT_TRUE(absl::IsInvalidArgument(a.outcome.status));
  table_.Exchange(Req(2, 2), b.Done());
  EXPECT_TRUE(absl::IsInvalidArgument(b.outcome.status));
  table_.Exchange(Req(1, 2), c.Done());
  table_.Exchange(Req(1, 3), d.Done());
  EXPECT_TRUE(absl::IsFailedPrecondition(d.outcome.status));
  EXPECT_THAT(d.outcome.status.message(), HasSubstr("world=3"));
  Answer dup;
  table_.Exchange(Req(1, 2), dup.Done());
  EXPECT_TRUE(absl::IsFailedPrecondition(dup.outcome.status));
}

TEST_F(RendezvousTableTest, ForgetsIdleEntries) {
  Answer p;
  table_.Exchange(Req(0, 2, "id"), p.Done());
  EXPECT_EQ(table_.entries(), 1);
  clock_.Advance(absl::Minutes(11));
  table_.ExpireDue();
  EXPECT_EQ(table_.entries(), 0);
}

TEST_F(RendezvousTableTest, WithdrawAndFailAll) {
  Answer a, b;
  auto t = table_.Exchange(Req(1, 3), a.Done());
  EXPECT_TRUE(table_.Withdraw(t));
  table_.Exchange(Req(2, 3), b.Done());
  table_.FailAll(absl::UnavailableError("down"));
  EXPECT_FALSE(a.called);
  EXPECT_TRUE(absl::IsUnavailable(b.outcome.status));
}

}  // namespace
}  // namespace tpjit
