#include "daemon/scheduler.h"

#include <future>
#include <set>
#include <thread>

#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

std::vector<std::shared_ptr<CompileTask>> Tasks(int n, double cost = 1.0) {
  std::vector<std::shared_ptr<CompileTask>> tasks;
  for (int i = 0; i < n; ++i) {
    auto t = std::make_shared<CompileTask>();
    t->key = std::to_string(i);
    t->cost = cost + i * 0.01;
    tasks.push_back(t);
  }
  return tasks;
}

TEST(SchedulerTest, ShardsAreDisjointAndBalanced) {
  Scheduler s(4);
  s.Submit(Tasks(16));
  for (int slot = 0; slot < 4; ++slot) EXPECT_EQ(s.Queued(slot), 4);
  std::set<std::string> seen;
  for (int slot = 0; slot < 4; ++slot) {
    for (int i = 0; i < 4; ++i) {
      auto t = s.TryTake(slot);
      ASSERT_NE(t, nullptr);
      EXPECT_TRUE(seen.insert(t->key).second);
    }
  }
  EXPECT_EQ(seen.size(), 16u);
  EXPECT_EQ(s.steals(), 0);
  EXPECT_EQ(s.TryTake(0), nullptr);
}

TEST(SchedulerTest, IdleSlotStealsFromTheLongestQueue) {
  Scheduler s(2);
  s.Submit(Tasks(6));
  for (int i = 0; i < 3; ++i) ASSERT_NE(s.TryTake(0), nullptr);
  // Slot 0 is dry: it steals slot 1's work from the back.
  auto stolen = s.TryTake(0);
  ASSERT_NE(stolen, nullptr);
  EXPECT_EQ(s.steals(), 1);
  EXPECT_EQ(s.Queued(1), 2);
}

TEST(SchedulerTest, RequeueAvoidsTheFailingSlot) {
  Scheduler s(3);
  auto t = Tasks(1)[0];
  s.Requeue(t, 0);
  EXPECT_EQ(s.Queued(0), 0);
  EXPECT_EQ(s.Queued(1) + s.Queued(2), 1);
  Scheduler single(1);
  single.Requeue(t, 0);
  EXPECT_EQ(single.Queued(0), 1);  // nowhere else to go
}

// Take(slot) on its own thread; the result arrives through a future, so the
// test can tell "still blocked" from "returned" with a deadline.
class Taker {
 public:
  Taker(Scheduler& s, int slot)
      : s_(s),
        result_(done_.get_future()),
        thread_([this, slot] { done_.set_value(s_.Take(slot)); }) {}
  // Never leaves a blocked thread behind, even when an assertion failed.
  ~Taker() {
    s_.Shutdown();
    thread_.join();
  }
  // True if Take returned within `limit`.
  bool ReturnedWithin(absl::Duration limit) {
    return result_.wait_for(absl::ToChronoMilliseconds(limit)) ==
           std::future_status::ready;
  }
  std::shared_ptr<CompileTask> Get() { return result_.get(); }

 private:
  Scheduler& s_;
  std::promise<std::shared_ptr<CompileTask>> done_;
  std::future<std::shared_ptr<CompileTask>> result_;
  std::thread thread_;
};

// A Take that returned nothing would be ready at once; the 200 ms window is a
// deadline for that failure, not a synchronisation sleep (a slow machine can
// only make the test pass for a broken Take, never fail for a good one).
constexpr absl::Duration kStillBlocked = absl::Milliseconds(200);
constexpr absl::Duration kWakes = absl::Seconds(10);

TEST(SchedulerTest, TakeBlocksUntilSubmit) {
  Scheduler s(2);
  Taker taker(s, 1);
  EXPECT_FALSE(taker.ReturnedWithin(kStillBlocked))
      << "Take returned with nothing queued";
  s.Submit(Tasks(1));
  ASSERT_TRUE(taker.ReturnedWithin(kWakes)) << "Submit did not wake Take";
  std::shared_ptr<CompileTask> got = taker.Get();
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(got->key, "0");
  EXPECT_EQ(s.Depth(), 0);
}

TEST(SchedulerTest, BlockedTakeStealsWorkSubmittedToAnotherSlot) {
  Scheduler s(2);
  Taker taker(s, 0);
  EXPECT_FALSE(taker.ReturnedWithin(kStillBlocked));
  s.Requeue(Tasks(1)[0], /*avoid_slot=*/0);  // lands on slot 1's queue
  ASSERT_TRUE(taker.ReturnedWithin(kWakes)) << "Requeue did not wake Take";
  EXPECT_NE(taker.Get(), nullptr);
  EXPECT_EQ(s.steals(), 1);
}

TEST(SchedulerTest, TakeBlocksUntilShutdown) {
  Scheduler s(2);
  Taker taker(s, 0);
  EXPECT_FALSE(taker.ReturnedWithin(kStillBlocked))
      << "Take returned with nothing queued";
  s.Shutdown();
  ASSERT_TRUE(taker.ReturnedWithin(kWakes)) << "Shutdown did not wake Take";
  EXPECT_EQ(taker.Get(), nullptr);
  // After Shutdown, Take no longer blocks and hands out nothing.
  s.Submit(Tasks(2));
  EXPECT_EQ(s.Take(1), nullptr);
  EXPECT_EQ(s.TryTake(1), nullptr);
}

}  // namespace
}  // namespace tpjit
