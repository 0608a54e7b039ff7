// Daemon: tpjitd's core, without gRPC. Owns the cache store, the scheduler,
// the worker slots and the job table (single flight by plan digest), and
// answers warm-ups, generic compiles, fetches, stats and status. The service
// layer (service.cc) only converts to and from the wire. Thread-safe.
#ifndef TPJIT_DAEMON_DAEMON_H_
#define TPJIT_DAEMON_DAEMON_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/child_process.h"
#include "daemon/config.h"
#include "daemon/counters.h"
#include "daemon/cubin_store.h"
#include "daemon/job.h"
#include "daemon/recipes.h"
#include "daemon/scheduler.h"
#include "daemon/slot.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

// Effects the daemon reaches through seams (tests replace them).
struct DaemonDeps {
  ProcessLauncher* launcher = ProcessLauncher::Real();
  std::unique_ptr<CubinStore> store;  // null: open config.cache_dir
  std::function<int()> gpu_count;     // null: ask the CUDA runtime
  int cpu_count = 0;                  // 0: hardware concurrency
};

class Daemon {
 public:
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(DaemonConfig config,
                                                        DaemonDeps deps);
  ~Daemon();

  // Runs the NVRTC self-test in a worker and starts the slots.
  absl::Status Start();
  // Stops the slots (kills workers); pending jobs fail with UNAVAILABLE.
  void Stop();

  // Finds or creates the job of `request`'s plan and attaches `listener`.
  // INVALID_ARGUMENT for a bad spec/rank/world, naming the field.
  absl::Status Warmup(const tpjit::v1::WarmupRequest& request,
                      JobListener* listener, std::shared_ptr<Job>* job,
                      bool* attached);
  // Generic compile batch; `done` is called once, from a slot thread or
  // at once for a bad request.
  void Compile(
      const tpjit::v1::CompileRequest& request,
      std::function<void(absl::StatusOr<tpjit::v1::CompileResponse>)> done);
  absl::StatusOr<std::string> Fetch(const std::string& key);
  tpjit::v1::StatsResponse Stats();
  tpjit::v1::StatusResponse Status();
  // SERVING: self-test passed, a slot has live workers, cache writable.
  bool Serving();
  // The barrier's late-rank report hook.
  std::string RankProgress(const std::string& group, int rank);

  const DaemonConfig& config() const { return config_; }
  DaemonCounters& counters() { return counters_; }
  std::vector<int> WorkerPids();
  int gpus() const { return gpus_; }
  // The group recipes (RecipeService); nullptr when the cache directory
  // holds none and cannot hold any.
  Recipes* recipes() { return recipes_.get(); }

 private:
  Daemon(DaemonConfig config, DaemonDeps deps);
  absl::Status SelfTest();
  // Single flight for generic compiles: true when `task` is the first with
  // its key (submit it); otherwise it is served by the first one's outcome.
  bool JoinInFlight(const std::shared_ptr<CompileTask>& task);
  // Opens the recipes of the cache directory; logs and leaves them off when
  // that fails (the cache is best-effort).
  void OpenRecipes();

  DaemonConfig config_;
  DaemonDeps deps_;
  int gpus_ = 0;
  Toolchain toolchain_;
  std::string nvrtc_version_;
  absl::Time started_;
  DaemonCounters counters_;
  std::unique_ptr<Scheduler> scheduler_;
  std::vector<std::unique_ptr<Slot>> slots_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_ ABSL_GUARDED_BY(mu_);
  // Spec digest -> its job, so ranks after the first skip planning.
  std::map<std::string, std::shared_ptr<Job>> spec_jobs_ ABSL_GUARDED_BY(mu_);
  bool self_test_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex inflight_mu_;
  std::map<std::string, std::vector<std::shared_ptr<CompileTask>>> inflight_
      ABSL_GUARDED_BY(inflight_mu_);
  // Last: destroyed first, while the scheduler its prefetches use exists.
  std::unique_ptr<Recipes> recipes_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_DAEMON_H_
