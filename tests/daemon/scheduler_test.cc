#include "daemon/scheduler.h"

#include <set>
#include <thread>

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

TEST(SchedulerTest, TakeBlocksUntilWorkOrShutdown) {
  Scheduler s(2);
  std::shared_ptr<CompileTask> got;
  std::thread waiter([&] { got = s.Take(1); });
  s.Submit(Tasks(1));
  waiter.join();
  ASSERT_NE(got, nullptr);
  std::thread idle([&] { got = s.Take(0); });
  s.Shutdown();
  idle.join();
  EXPECT_EQ(got, nullptr);
}

}  // namespace
}  // namespace tpjit
