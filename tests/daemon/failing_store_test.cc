// A failing cache never fails a compile (src/cache/store.h): the daemon with
// a store whose every call fails still compiles, and the store's failures
// are counted. And a kernel another node is compiling (its lease held
// elsewhere) is put back once, then waited for and served from the store:
// this node never compiles it.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "daemon/daemon.h"
#include "gtest/gtest.h"
#include "tests/cache/memory_store.h"
#include "tests/daemon/in_process_daemon.h"
#include "tests/testlib/cubin.h"

namespace tpjit {
namespace {

using testing::TinyCubin;

// A worker that passes its self-test and "compiles" every source into the
// same bytes.
class CompilingWorker final : public ChildProcess {
 public:
  explicit CompilingWorker(std::atomic<int>* compiles) : compiles_(compiles) {}
  absl::StatusOr<tpjit::v1::WorkerResponse> Call(
      const tpjit::v1::WorkerRequest& request, absl::Time) override {
    if (request.kind() != tpjit::v1::WorkerRequest::SELF_TEST) {
      compiles_->fetch_add(1);
    }
    tpjit::v1::WorkerResponse r;
    r.set_id(request.id());
    r.set_ok(true);
    r.set_version("fake-nvrtc");
    if (request.kind() != tpjit::v1::WorkerRequest::SELF_TEST) {
      r.set_cubin(kFakeOutput);
    }
    return r;
  }
  void Kill() override {}
  void Interrupt() override {}
  int pid() const override { return 1 << 30; }

  static inline const std::string kFakeOutput = TinyCubin("_Z1kv");

 private:
  std::atomic<int>* compiles_;
};

class CompilingLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>&,
      const std::vector<std::string>&) override {
    return std::make_unique<CompilingWorker>(&compiles);
  }
  std::atomic<int> compiles{0};
};

DaemonConfig TestConfig(const std::string& dir) {
  DaemonConfig config;
  config.socket = dir + "/tpjitd.sock";
  config.cache_dir = dir + "/cache";
  config.slots = 1;
  config.procs = 1;
  config.gpus = 0;
  config.worker_binary = "/nonexistent/tpjit-worker";
  config.nvcc = "/nonexistent/nvcc";
  return config;
}

tpjit::v1::CompileRequest NvrtcRequest() {
  tpjit::v1::CompileRequest r;
  r.set_backend(tpjit::v1::NVRTC);
  r.set_arch("sm_90a");
  r.set_return_output(true);
  r.add_sources()->set_source("__global__ void k() {}\n");
  return r;
}

absl::StatusOr<tpjit::v1::CompileResponse> CompileAndWait(
    Daemon& daemon, const tpjit::v1::CompileRequest& r) {
  absl::Notification done;
  absl::StatusOr<tpjit::v1::CompileResponse> got;
  daemon.Compile(r, [&](absl::StatusOr<tpjit::v1::CompileResponse> o) {
    got = std::move(o);
    done.Notify();
  });
  if (!done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
    return absl::DeadlineExceededError("no answer in 60 s");
  }
  return got;
}

TEST(FailingStoreTest, EveryStoreCallFailsAndTheCompileStillSucceeds) {
  testing::TempDir dir;
  DaemonConfig config;
  config.socket = dir.path() + "/tpjitd.sock";
  config.cache_dir = dir.path() + "/cache";
  config.slots = 1;
  config.procs = 1;
  config.gpus = 0;
  config.worker_binary = "/nonexistent/tpjit-worker";
  config.nvcc = "/nonexistent/nvcc";
  CompilingLauncher launcher;
  auto store = std::make_unique<testing::MemoryStore>("broken");
  store->FailAll(true);
  testing::MemoryStore* broken = store.get();
  DaemonDeps deps;
  deps.launcher = &launcher;
  deps.store = std::move(store);
  auto daemon = Daemon::Create(config, std::move(deps));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE((*daemon)->Start().ok());

  for (int round = 0; round < 2; ++round) {  // a miss both times
    tpjit::v1::CompileRequest r;
    r.set_backend(tpjit::v1::NVRTC);
    r.set_arch("sm_90a");
    r.set_return_output(true);
    r.add_sources()->set_source("__global__ void k() {}\n");
    absl::Notification done;
    absl::StatusOr<tpjit::v1::CompileResponse> got;
    (*daemon)->Compile(r, [&](absl::StatusOr<tpjit::v1::CompileResponse> o) {
      got = std::move(o);
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->results_size(), 1);
    EXPECT_TRUE(got->results(0).ok()) << got->results(0).error();
    EXPECT_FALSE(got->results(0).cache_hit());
    EXPECT_EQ(got->results(0).output(), CompilingWorker::kFakeOutput);
  }
  EXPECT_GE(broken->Stats().errors, 2);  // two failed gets at least
  EXPECT_GE(broken->puts.load(), 2);     // both puts tried, both failed
  (*daemon)->Stop();
}

TEST(FleetLeaseTest, AKernelCompiledElsewhereIsWaitedForNotCompiled) {
  testing::TempDir dir;
  CompilingLauncher launcher;
  // The kernel's key, from a daemon with an empty store.
  std::string key;
  {
    DaemonDeps deps;
    deps.launcher = &launcher;
    deps.store = std::make_unique<testing::MemoryStore>("first");
    auto first = Daemon::Create(TestConfig(dir.path() + "/a"), std::move(deps));
    ASSERT_TRUE(first.ok()) << first.status();
    ASSERT_TRUE((*first)->Start().ok());
    auto got = CompileAndWait(**first, NvrtcRequest());
    ASSERT_TRUE(got.ok()) << got.status();
    key = got->results(0).key();
    (*first)->Stop();
  }
  ASSERT_EQ(launcher.compiles.load(), 1);
  // Another node holds the kernel's lease in the shared store.
  auto shared = std::make_unique<testing::MemoryStore>("shared");
  testing::MemoryStore* store = shared.get();
  auto other_node = store->AcquireOrWait(key, absl::Now() + absl::Seconds(5));
  ASSERT_NE(other_node, nullptr);
  DaemonDeps deps;
  deps.launcher = &launcher;
  deps.store = std::move(shared);
  auto daemon = Daemon::Create(TestConfig(dir.path() + "/b"), std::move(deps));
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  ASSERT_TRUE((*daemon)->Start().ok());
  absl::Notification done;
  absl::StatusOr<tpjit::v1::CompileResponse> got;
  (*daemon)->Compile(NvrtcRequest(),
                     [&](absl::StatusOr<tpjit::v1::CompileResponse> o) {
                       got = std::move(o);
                       done.Notify();
                     });
  // Asked (the compile path), deferred once, asked again, now waiting.
  ASSERT_TRUE(testing::WaitFor([&] { return store->gets.load() >= 3; },
                               absl::Seconds(30)));
  EXPECT_FALSE(done.HasBeenNotified());
  // The other node publishes and lets go.
  ASSERT_TRUE(
      store
          ->Put(CacheEntry{
              key, {{"label", "elsewhere"}}, CompilingWorker::kFakeOutput})
          .ok());
  other_node.reset();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->results(0).ok()) << got->results(0).error();
  EXPECT_TRUE(got->results(0).cache_hit());
  EXPECT_EQ(launcher.compiles.load(), 1);  // never compiled on this node
  (*daemon)->Stop();
}

}  // namespace
}  // namespace tpjit
