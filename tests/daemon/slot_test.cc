// A slot with scripted workers (tests/testlib/fake_worker.h): what it does
// when a worker compiles, crashes, hangs, answers garbage or is stuck at
// Stop(), and that a failing cache never fails a compile.
#include "daemon/slot.h"

#include <memory>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "src/cache/kernel_entry.h"
#include "src/common/clock.h"
#include "src/common/logger.h"
#include "src/compile/cubin.h"
#include "tests/cache/memory_store.h"
#include "tests/testlib/cubin.h"
#include "tests/testlib/fake_worker.h"
#include "tests/testlib/status.h"
#include "tests/testlib/wait.h"

namespace tpjit {
namespace {

using ::tpjit::testing::MemoryStore;
using ::tpjit::testing::ScriptedLauncher;
using ::tpjit::testing::TinyCubin;
using ::tpjit::testing::WaitUntil;
using ::tpjit::testing::WorkerAct;

constexpr double kTimeout = 30;

// One task's outcome, delivered from a slot thread.
class Outcome {
 public:
  void Set(TaskOutcome o) {
    absl::MutexLock lock(&mu_);
    outcome_ = std::move(o);
  }
  // Waits (10 s at most) for the outcome.
  std::optional<TaskOutcome> Get() {
    WaitUntil(
        [this] {
          absl::MutexLock lock(&mu_);
          return outcome_.has_value();
        },
        absl::Seconds(10));
    absl::MutexLock lock(&mu_);
    return outcome_;
  }

 private:
  absl::Mutex mu_;
  std::optional<TaskOutcome> outcome_ ABSL_GUARDED_BY(mu_);
};

class SlotTest : public ::testing::Test {
 protected:
  ~SlotTest() override { StopSlot(); }

  void StartSlot(Store* store, int procs = 1, int gpu = -1) {
    SlotOptions o;
    o.procs = procs;
    o.gpu = gpu;
    o.worker_binary = "/fake/tpjit-worker";
    slot_ = std::make_unique<Slot>(o, SlotDeps{&scheduler_, store, &launcher_,
                                               &counters_, &clock_, &logger_});
    ASSERT_OK(slot_->Start());
  }
  void StopSlot() {
    scheduler_.Shutdown();
    if (slot_) slot_->Stop();
  }

  // Submits one NVRTC task for kernel `name`.
  std::shared_ptr<Outcome> Submit(const std::string& name) {
    auto out = std::make_shared<Outcome>();
    auto task = std::make_shared<CompileTask>();
    task->key = std::string(64, 'a');
    task->label = name;
    task->timeout_seconds = kTimeout;
    task->request.set_kind(tpjit::v1::WorkerRequest::NVRTC);
    task->request.set_arch("sm_90a");
    task->request.add_name_expressions(name);
    task->done = [out](TaskOutcome o) { out->Set(std::move(o)); };
    scheduler_.Submit({task});
    return out;
  }

  FakeClock clock_;
  MemoryLogger logger_;
  ScriptedLauncher launcher_;
  DaemonCounters counters_;
  Scheduler scheduler_{1};
  MemoryStore store_;
  std::unique_ptr<Slot> slot_;
};

TEST_F(SlotTest, CompilesPublishesAndTimesWorkersOnItsClock) {
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_FALSE(out->cache_hit);
  EXPECT_EQ(out->cubin, TinyCubin("k1"));
  EXPECT_TRUE(store_.Has(std::string(64, 'a')));
  ASSERT_EQ(launcher_.deadlines().size(), 1u);
  EXPECT_EQ(launcher_.deadlines()[0], clock_.Now() + absl::Seconds(kTimeout));
  EXPECT_EQ(counters_.cache_misses.load(), 1);
}

TEST_F(SlotTest, ServesAHitWithoutAWorker) {
  KernelEntry entry;
  entry.cubin = TinyCubin("k1");
  entry.lowered_names = {"k1"};
  ASSERT_OK(store_.Put(ToCacheEntry(std::string(64, 'a'), entry)));
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_TRUE(out->cache_hit);
  EXPECT_EQ(launcher_.compile_calls(), 0);
}

// Started() (what readiness waits for) once the GPU's load-checker holds
// its context and one worker has self-tested: that worker takes tasks while
// the others are still in their self-tests.
TEST_F(SlotTest, StartedOnceOneWorkerAndTheLoadCheckerSelfTested) {
  launcher_.HoldSelfTests(/*workers=*/false, /*load_checkers=*/true);
  StartSlot(&store_, /*procs=*/2, /*gpu=*/0);
  EXPECT_EQ(launcher_.launches(), 3);  // two workers and the load-checker
  // Both workers are ready; the load-checker has no context yet.
  EXPECT_TRUE(WaitUntil([&] { return launcher_.self_tests() == 2; },
                        absl::Seconds(10)));
  EXPECT_FALSE(slot_->Started());
  // Once the workers' threads have counted themselves, the reason names the
  // load-checker.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return slot_->Starting() ==
               "the load-checker of GPU 0 is still making its CUDA context";
      },
      absl::Seconds(10)));
  launcher_.HoldSelfTests(false, false);
  EXPECT_TRUE(WaitUntil([&] { return slot_->Started(); }, absl::Seconds(10)));
}

TEST_F(SlotTest, StartedWithoutAGpuOnceOneWorkerSelfTested) {
  launcher_.HoldSelfTests(/*workers=*/true, /*load_checkers=*/false);
  StartSlot(&store_, /*procs=*/2);
  EXPECT_EQ(launcher_.launches(), 2);
  EXPECT_FALSE(slot_->Started());
  EXPECT_EQ(slot_->Starting(), "compile workers still starting");
  launcher_.PassSelfTests(1);
  EXPECT_TRUE(WaitUntil([&] { return slot_->Started(); }, absl::Seconds(10)));
  // The ready worker compiles while the other is still in its self-test.
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_EQ(out->cubin, TinyCubin("k1"));
}

// A self-test call that failed leaves its answer behind in a real worker's
// pipe: the worker is replaced, never called again, so the compile gets its
// own answer.
TEST_F(SlotTest, AWorkerWhoseSelfTestCallFailedIsReplaced) {
  launcher_.FailSelfTests(1);
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_EQ(out->cubin, TinyCubin("k1"));
  EXPECT_EQ(launcher_.launches(), 2);  // the first worker and its successor
  EXPECT_GE(launcher_.kills(), 1);
  EXPECT_EQ(slot_->Status().restarts(), 1);
  EXPECT_TRUE(logger_.Contains("worker 0 failed its self-test"));
}

// Likewise the load-checker: relaunched, and the slot starts all the same.
TEST_F(SlotTest, ALoadCheckerWhoseSelfTestCallFailedIsReplaced) {
  launcher_.FailSelfTests(1);
  launcher_.HoldSelfTests(/*workers=*/true, /*load_checkers=*/false);
  StartSlot(&store_, /*procs=*/1, /*gpu=*/0);
  // The held worker's self-test cannot take the failure: the checker's does.
  EXPECT_TRUE(WaitUntil(
      [&] { return logger_.Contains("load-checker of GPU 0 failed"); },
      absl::Seconds(10)));
  EXPECT_TRUE(
      WaitUntil([&] { return launcher_.launches() == 3; }, absl::Seconds(10)));
  EXPECT_GE(launcher_.kills(), 1);
  launcher_.HoldSelfTests(false, false);
  EXPECT_TRUE(WaitUntil([&] { return slot_->Started(); }, absl::Seconds(10)));
}

TEST_F(SlotTest, ACrashedWorkerIsRestartedAndTheKernelRetried) {
  launcher_.Script({WorkerAct::kCrash});
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_EQ(launcher_.compile_calls(), 2);
  EXPECT_EQ(launcher_.launches(), 2);  // the first worker and its successor
  EXPECT_GE(launcher_.kills(), 1);
  EXPECT_EQ(slot_->Status().restarts(), 1);
  EXPECT_TRUE(logger_.Contains("died"));
  EXPECT_TRUE(logger_.Contains("restarting it"));
}

TEST_F(SlotTest, ASecondCrashFailsTheKernel) {
  launcher_.Script({WorkerAct::kCrash, WorkerAct::kCrash});
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(out->status.message().find("failed 2 times"), std::string::npos);
  EXPECT_EQ(counters_.compile_failures.load(), 1);
  EXPECT_FALSE(store_.Has(std::string(64, 'a')));
}

TEST_F(SlotTest, AHungWorkerIsReplacedAndTheTimeLimitNamed) {
  launcher_.Script({WorkerAct::kHang, WorkerAct::kHang});
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(out->status.message().find("time limit"), std::string::npos);
  EXPECT_EQ(launcher_.launches(), 3);
}

TEST_F(SlotTest, GarbageFromAWorkerCountsAsACrash) {
  launcher_.Script({WorkerAct::kGarbage});
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_OK(ValidateCubin(out->cubin));
  EXPECT_EQ(launcher_.compile_calls(), 2);
  EXPECT_EQ(launcher_.launches(), 2);
  EXPECT_TRUE(logger_.Contains("garbage"));
}

TEST_F(SlotTest, ACompileErrorIsNotRetried) {
  launcher_.Script({WorkerAct::kCompileError});
  StartSlot(&store_);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out->log, "fake: syntax error");
  EXPECT_EQ(launcher_.compile_calls(), 1);
}

TEST_F(SlotTest, AFailingCacheNeverFailsACompile) {
  MemoryStore failing("broken");
  failing.FailAll(true);  // misses, refused puts, no lease, unhealthy
  StartSlot(&failing);
  auto out = Submit("k1")->Get();
  ASSERT_TRUE(out.has_value());
  ASSERT_OK(out->status);
  EXPECT_EQ(out->cubin, TinyCubin("k1"));
  EXPECT_GE(failing.gets.load(), 1);
  EXPECT_EQ(failing.puts.load(), 1);
  EXPECT_GE(failing.Stats().errors, 2);
}

TEST_F(SlotTest, StopInterruptsAWorkerStuckInACompile) {
  launcher_.Script({WorkerAct::kBlock});
  StartSlot(&store_);
  auto pending = Submit("k1");
  ASSERT_TRUE(
      WaitUntil([this] { return launcher_.blocked(); }, absl::Seconds(10)));
  StopSlot();  // returns only once the stuck call has ended
  EXPECT_GE(launcher_.interrupts(), 1);
  auto out = pending->Get();
  ASSERT_TRUE(out.has_value());
  EXPECT_FALSE(out->status.ok());
}

}  // namespace
}  // namespace tpjit
