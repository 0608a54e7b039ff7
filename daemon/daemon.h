// Daemon: tpjitd's core, without gRPC. Owns the cache store, the scheduler,
// the worker slots and the job table (single flight by plan digest), and
// answers warm-ups, generic compiles, fetches, stats and status. The service
// layer (service.cc) only converts to and from the wire. Thread-safe.
#ifndef TPJIT_DAEMON_DAEMON_H_
#define TPJIT_DAEMON_DAEMON_H_

#include <atomic>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/config.h"
#include "daemon/counters.h"
#include "daemon/executor.h"
#include "daemon/job.h"
#include "daemon/recipes.h"
#include "daemon/scheduler.h"
#include "daemon/slot.h"
#include "src/cache/store.h"
#include "src/common/child_process.h"
#include "src/common/clock.h"
#include "src/common/logger.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

// Effects the daemon reaches through seams (tests replace them). The
// pointers must outlive the daemon.
struct DaemonDeps {
  ProcessLauncher* launcher = ProcessLauncher::Real();  // workers, nvcc
  // null: open config.cache_dir. Best-effort (src/cache/store.h): a store
  // that fails (misses, refuses puts, grants no lease, is unhealthy) never
  // fails a compile; it only makes the daemon not ready.
  std::unique_ptr<Store> store;
  std::function<int()> gpu_count;  // null: ask the CUDA runtime
  int cpu_count = 0;               // 0: hardware concurrency
  // Time for durations, uptime and worker deadlines; the real children
  // compare deadlines with absl::Now(), so they need the real clock.
  Clock* clock = Clock::Real();
  Logger* logger = Logger::Stderr();  // the daemon's diagnostics
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
  // INVALID_ARGUMENT for a bad spec/rank/world/group, naming the field and
  // its limit. `cancelled` (may be empty) is polled while planning: once it
  // returns true planning stops with CANCELLED and nothing is attached.
  absl::Status Warmup(const tpjit::v1::WarmupRequest& request,
                      JobListener* listener, std::shared_ptr<Job>* job,
                      bool* attached,
                      const std::function<bool()>& cancelled = nullptr);
  // Runs `fn` on the planning pool (--plan-threads), or RESOURCE_EXHAUSTED
  // when --max-queued-plans warm-ups already wait (then `fn` never runs).
  absl::Status PostPlan(std::function<void()> fn);
  // Runs `fn` on the compile-preparation pool (--prepare-threads), or
  // RESOURCE_EXHAUSTED when --max-queued-prepares requests already wait.
  absl::Status PostPrepare(std::function<void()> fn);
  // Runs `fn` on the read pool (fetches, key lookups: they read the cache
  // from disk, so never on a gRPC reactor thread), or RESOURCE_EXHAUSTED
  // naming `what` (the RPC) when kMaxQueuedReads reads already wait.
  absl::Status PostRead(absl::string_view what, std::function<void()> fn);
  // Warm-ups waiting for a planning thread (for metrics and tests).
  size_t QueuedPlans() { return plan_pool_->queued(); }
  // Generic compile batch; `done` is called once, from a slot thread or
  // at once for a bad request. With request.no_wait(), at once: hits as
  // usual, misses marked queued while they compile on (no output).
  void Compile(
      const tpjit::v1::CompileRequest& request,
      std::function<void(absl::StatusOr<tpjit::v1::CompileResponse>)> done);
  absl::StatusOr<std::string> Fetch(const std::string& key);
  // Answers each key's state once its compile in flight (if any) has ended
  // (with request.any(): once one key has; the others read IN_FLIGHT):
  // PUBLISHED (in the cache), FAILED, or UNKNOWN (neither in flight nor
  // cached). `done` is called once: at once for a bad request
  // (INVALID_ARGUMENT naming the key) or when nothing is in flight, else
  // from the slot thread that ends the last compile. Reads the cache: call
  // it off the gRPC reactor threads (PostRead).
  void AwaitKeys(
      const tpjit::v1::AwaitKeysRequest& request,
      std::function<void(absl::StatusOr<tpjit::v1::AwaitKeysResponse>)> done);
  static constexpr int kMaxAwaitKeys = 4096;
  // Waits held in the in-flight table at once (all AwaitKeys calls); a call
  // that would pass it is refused with RESOURCE_EXHAUSTED.
  static constexpr int64_t kMaxAwaitWaiters = 65536;
  tpjit::v1::StatsResponse Stats();
  tpjit::v1::StatusResponse Status();
  // Readiness: OK when the self-test passed, a slot has live workers, every
  // slot has started (Slot::Starting: a self-tested worker, and on a GPU the
  // load-checker's context), the cache was writable when last probed and no
  // queue is saturated (planning or preparation queue full, more than
  // --max-queued-compiles compile tasks queued); otherwise UNAVAILABLE
  // naming the reason. Logs each change of reason. Reads no file: safe on a
  // gRPC reactor thread.
  absl::Status Readiness();
  // Readiness().ok(): what grpc.health.v1 reports for readiness.
  bool Serving();
  // The monitor's tick (server.cc, every 500 ms): probes the cache
  // directory (disk I/O) for Readiness and forgets finished jobs past
  // --job-retention. Start() probes once too.
  void RefreshReadiness();
  // The barrier's late-rank report hook.
  std::string RankProgress(const std::string& group, int rank);

  const DaemonConfig& config() const { return config_; }
  // Jobs in the job table (running and remembered), for tests and metrics.
  size_t RememberedJobs();
  static constexpr size_t kMaxRememberedJobs = 256;
  static constexpr size_t kMaxQueuedReads = 1024;
  Clock& clock() { return *deps_.clock; }
  Logger& logger() { return *deps_.logger; }
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
  // Forgets finished jobs older than --job-retention and the oldest finished
  // jobs beyond kMaxRememberedJobs (their cubins stay in the cache), and the
  // spec entries of forgotten jobs: the job table's memory is bounded by
  // kMaxRememberedJobs finished jobs plus the running ones.
  void PruneJobsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // UNAVAILABLE naming the first saturated queue, else OK.
  absl::Status QueuesSaturated();
  // With --trace-compiles, callers check it: "trace: <s since start> <what>"
  // for an event at `at`.
  void Trace(absl::Time at, absl::string_view what);

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
  // Job ids in creation order, for pruning.
  std::list<std::string> job_order_ ABSL_GUARDED_BY(mu_);
  bool self_test_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  absl::Mutex inflight_mu_;
  std::map<std::string, std::vector<std::shared_ptr<CompileTask>>> inflight_
      ABSL_GUARDED_BY(inflight_mu_);
  int64_t await_waiters_ ABSL_GUARDED_BY(inflight_mu_) = 0;
  std::string last_readiness_ ABSL_GUARDED_BY(mu_);
  // The store's health at the last probe (Start, RefreshReadiness).
  absl::Status store_health_ ABSL_GUARDED_BY(mu_) =
      absl::UnavailableError("cache not probed yet");
  // Last members: destroyed (drained and joined) first, while everything
  // their closures use is still alive.
  std::unique_ptr<Executor> plan_pool_;
  std::unique_ptr<Executor> prepare_pool_;
  std::unique_ptr<Executor> read_pool_;
  // Last: destroyed first, while the scheduler its prefetches use exists.
  std::unique_ptr<Recipes> recipes_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_DAEMON_H_
