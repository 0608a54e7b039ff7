// Bounds of the barrier tables: world, rank, group names, values, and the
// number of groups / entries / waiting ranks kept at once. The crash inputs
// of issue 12 (world = 2^31 - 1 allocated per rank) are answered
// INVALID_ARGUMENT without allocating anything per rank.
#include <climits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/barrier/arrival_table.h"
#include "src/barrier/rendezvous_table.h"
#include "src/common/clock.h"
#include "src/common/request_limits.h"

namespace tpjit {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

struct BarrierAnswer {
  bool called = false;
  ArrivalTable::Outcome outcome;
  ArrivalTable::Done Done() {
    return [this](const ArrivalTable::Outcome& o) {
      called = true;
      outcome = o;
    };
  }
};

struct RendezvousAnswer {
  bool called = false;
  RendezvousTable::Outcome outcome;
  RendezvousTable::Done Done() {
    return [this](const RendezvousTable::Outcome& o) {
      called = true;
      outcome = o;
    };
  }
};

ArrivalTable::Arrival At(std::string group, int rank, int world,
                         absl::Duration timeout = absl::Seconds(1)) {
  return {std::move(group), rank, world, std::nullopt, timeout};
}

RendezvousTable::Request Meet(std::string group, int rank, int world,
                              std::string value = "") {
  RendezvousTable::Request r;
  r.group = std::move(group);
  r.rank = rank;
  r.world = world;
  r.value = std::move(value);
  r.timeout = absl::Seconds(1);
  return r;
}

class ArrivalBoundsTest : public ::testing::Test {
 protected:
  absl::Status Arrive(const ArrivalTable::Arrival& a) {
    BarrierAnswer answer;
    table_.Arrive(a, answer.Done());
    EXPECT_TRUE(answer.called) << "a rejected arrival is answered at once";
    return answer.outcome.status;
  }
  FakeClock clock_;
  ArrivalTable table_{&clock_, nullptr,
                      ArrivalTable::Options{.max_groups = 4, .max_waiters = 6}};
};

TEST_F(ArrivalBoundsTest, HugeWorldIsInvalidArgument) {
  // Issue 12: Barrier{group:"x", rank:0, world:2147483647, timeout_ms:100}.
  absl::Status s = Arrive(At("x", 0, INT_MAX, absl::Milliseconds(100)));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(s.message(), AllOf(HasSubstr("world"), HasSubstr("1..1024")));
  EXPECT_EQ(table_.remembered_epochs(), 0);
  EXPECT_EQ(table_.NextDeadline(), std::nullopt);
}

TEST_F(ArrivalBoundsTest, RankAndWorldOutOfRange) {
  EXPECT_EQ(Arrive(At("x", 0, 0)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Arrive(At("x", 0, kMaxWorld + 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(Arrive(At("x", -1, 2)).message(), HasSubstr("rank -1 out of"));
  EXPECT_THAT(Arrive(At("x", 2, 2)).message(), HasSubstr("want 0..1"));
  EXPECT_TRUE(Arrive(At("x", 0, 1)).ok());
}

TEST_F(ArrivalBoundsTest, LongOrUnprintableGroupIsInvalidArgument) {
  absl::Status s = Arrive(At(std::string(12 << 20, 'g'), 0, 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("group"), HasSubstr("256 bytes")));
  s = Arrive(At("a\nb", 0, 1));
  EXPECT_THAT(s.message(), HasSubstr("byte 0x0a at offset 1"));
  EXPECT_EQ(Arrive(At("", 0, 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Arrive(At(std::string(kMaxNameBytes, 'g'), 0, 1)).ok());
  EXPECT_EQ(Arrive(At("x", 0, 1, absl::Seconds(-1))).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ArrivalBoundsTest, OldestIdleGroupIsForgottenFirst) {
  for (int g = 0; g < 4; ++g) {
    ASSERT_TRUE(Arrive(At("g" + std::to_string(g), 0, 1)).ok());
    clock_.Advance(absl::Seconds(1));
  }
  EXPECT_EQ(table_.remembered_epochs(), 4);
  // A fifth group forgets g0 (the oldest) and nothing else.
  ASSERT_TRUE(Arrive(At("g4", 0, 1)).ok());
  EXPECT_EQ(table_.remembered_epochs(), 4);
  // g1 was remembered: its next arrival is epoch 1.
  BarrierAnswer g1;
  table_.Arrive(At("g1", 0, 1), g1.Done());
  EXPECT_EQ(g1.outcome.epoch, 1u);
}

TEST_F(ArrivalBoundsTest, GroupsWithWaitersAreKeptAndNewGroupsRefused) {
  std::vector<BarrierAnswer> waiting(4);
  for (int g = 0; g < 4; ++g) {
    table_.Arrive(At("w" + std::to_string(g), 0, 2), waiting[g].Done());
    ASSERT_FALSE(waiting[g].called);
  }
  absl::Status s = Arrive(At("new", 0, 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("limit is 4 groups"));
  // A known group still works.
  BarrierAnswer partner;
  table_.Arrive(At("w0", 1, 2), partner.Done());
  EXPECT_TRUE(partner.outcome.status.ok());
  EXPECT_TRUE(waiting[0].outcome.status.ok());
}

TEST_F(ArrivalBoundsTest, WaitingRanksAreCapped) {
  std::vector<BarrierAnswer> waiting(6);
  for (int r = 0; r < 6; ++r) {
    table_.Arrive(At("big", r, 8), waiting[r].Done());
    ASSERT_FALSE(waiting[r].called);
  }
  absl::Status s = Arrive(At("big", 6, 8));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("limit is 6"));
}

class RendezvousBoundsTest : public ::testing::Test {
 protected:
  absl::Status Exchange(const RendezvousTable::Request& r) {
    RendezvousAnswer answer;
    table_.Exchange(r, answer.Done());
    EXPECT_TRUE(answer.called);
    return answer.outcome.status;
  }
  FakeClock clock_;
  RendezvousTable table_{&clock_, RendezvousTable::Options{.max_entries = 3}};
};

TEST_F(RendezvousBoundsTest, HugeWorldIsInvalidArgument) {
  RendezvousAnswer answer;
  RendezvousTable::Request r = Meet("x", 1, INT_MAX);
  r.timeout = absl::Milliseconds(100);
  table_.Exchange(r, answer.Done());
  ASSERT_TRUE(answer.called);
  EXPECT_EQ(answer.outcome.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(answer.outcome.status.message(), HasSubstr("1..1024"));
  EXPECT_EQ(table_.entries(), 0);
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(table_.ExpireDue(), 0);
}

TEST_F(RendezvousBoundsTest, NamesAndValuesAreBounded) {
  absl::Status s = Exchange(Meet(std::string(12 << 20, 'g'), 0, 2, "id"));
  EXPECT_THAT(s.message(), AllOf(HasSubstr("group"), HasSubstr("256")));
  s = Exchange(Meet("g", 1, 2, std::string(8192, 'v')));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("value"));
  EXPECT_EQ(Exchange(Meet("g\x01", 0, 2, "id")).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table_.entries(), 0);
}

TEST_F(RendezvousBoundsTest, OldestIdleEntryIsForgottenFirst) {
  for (int g = 0; g < 3; ++g) {
    ASSERT_TRUE(Exchange(Meet("g" + std::to_string(g), 0, 2, "id")).ok());
    clock_.Advance(absl::Seconds(1));
  }
  ASSERT_TRUE(Exchange(Meet("g3", 0, 2, "id")).ok());
  EXPECT_EQ(table_.entries(), 3);
  // g0 was forgotten: its rank 1 waits for a new publish.
  RendezvousAnswer late;
  table_.Exchange(Meet("g0", 1, 2), late.Done());
  EXPECT_FALSE(late.called);
  // g3 is still there: rank 1 gets its value at once.
  RendezvousAnswer kept;
  table_.Exchange(Meet("g3", 1, 2), kept.Done());
  EXPECT_TRUE(kept.called);
  table_.FailAll(absl::UnavailableError("test over"));
}

TEST_F(RendezvousBoundsTest, EntriesWithWaitersAreKeptAndNewOnesRefused) {
  std::vector<RendezvousAnswer> waiting(3);
  for (int g = 0; g < 3; ++g) {
    table_.Exchange(Meet("w" + std::to_string(g), 1, 2), waiting[g].Done());
    ASSERT_FALSE(waiting[g].called);
  }
  absl::Status s = Exchange(Meet("new", 0, 2, "id"));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_THAT(s.message(), HasSubstr("limit is 3 entries"));
  table_.FailAll(absl::UnavailableError("test over"));
}

TEST(RequestLimitsTest, TimeoutsAreClampedAndNegativesRefused) {
  EXPECT_EQ(*ClampTimeoutMs("timeout_ms", 100, absl::Seconds(1)),
            absl::Milliseconds(100));
  EXPECT_EQ(*ClampTimeoutMs("timeout_ms", LLONG_MAX, absl::Seconds(1)),
            absl::Seconds(1));
  absl::StatusOr<absl::Duration> bad =
      ClampTimeoutMs("timeout_ms", -1, absl::Seconds(1));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("timeout_ms: -1"));
  EXPECT_THAT(CheckRequestBytes("barrier", 20000, 16384).message(),
              HasSubstr("limit of 16384 bytes"));
}

}  // namespace
}  // namespace tpjit
