// A failing cache never fails a compile (src/cache/store.h): the daemon with
// a store whose every call fails still compiles, and the store's failures
// are counted.
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "daemon/daemon.h"
#include "gtest/gtest.h"
#include "tests/cache/memory_store.h"
#include "tests/daemon/in_process_daemon.h"

namespace tpjit {
namespace {

// A worker that passes its self-test and "compiles" every source into the
// same bytes.
class CompilingWorker final : public ChildProcess {
 public:
  absl::StatusOr<tpjit::v1::WorkerResponse> Call(
      const tpjit::v1::WorkerRequest& request, absl::Time) override {
    tpjit::v1::WorkerResponse r;
    r.set_id(request.id());
    r.set_ok(true);
    r.set_version("fake-nvrtc");
    if (request.kind() != tpjit::v1::WorkerRequest::SELF_TEST) {
      r.set_cubin("fake cubin");
    }
    return r;
  }
  void Kill() override {}
  int pid() const override { return 1 << 30; }
};

class CompilingLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>&,
      const std::vector<std::string>&) override {
    return std::make_unique<CompilingWorker>();
  }
};

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
    EXPECT_EQ(got->results(0).output(), "fake cubin");
  }
  EXPECT_GE(broken->Stats().errors, 2);  // two failed gets at least
  EXPECT_GE(broken->puts.load(), 2);     // both puts tried, both failed
  (*daemon)->Stop();
}

}  // namespace
}  // namespace tpjit
