// A worker slot: one per GPU (or per --slots without GPUs). It owns a pool of
// long-lived compile worker processes (one thread drives each) and, with a
// GPU, the GPU's one load-check process. Slot threads take tasks from the
// Scheduler (own shard first, then stealing), consult the cache, hold the
// compile lease, compile, publish and load-check. A worker that crashes or
// exceeds its time limit is killed and restarted; its task is retried on
// another slot, and fails (with its log) after the second crash. A worker
// that answers garbage (not a worker response) counts as a crash.
// The cache is best-effort: a store that misses, drops puts or grants no
// lease never fails a compile; the slot compiles and answers without it.
// Thread-safe; Stop() interrupts busy workers (through their ChildProcess,
// the only thing that signals them), joins all threads and kills all
// children.
#ifndef TPJIT_DAEMON_SLOT_H_
#define TPJIT_DAEMON_SLOT_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "daemon/counters.h"
#include "daemon/scheduler.h"
#include "src/cache/kernel_entry.h"
#include "src/cache/store.h"
#include "src/common/child_process.h"
#include "src/common/clock.h"
#include "src/common/logger.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

struct SlotOptions {
  int index = 0;
  int gpu = -1;  // -1: no GPU, no load check
  int procs = 1;
  std::string worker_binary;
  std::vector<std::string> worker_env;  // extra "K=V" for the children
  bool trace = false;  // a log line per compile (DaemonConfig::trace_compiles)
  absl::Time trace_epoch;  // times in trace lines count from here
};

// What a slot works with; every pointer must outlive the slot.
struct SlotDeps {
  Scheduler* scheduler = nullptr;
  Store* store = nullptr;
  ProcessLauncher* launcher = nullptr;
  DaemonCounters* counters = nullptr;
  Clock* clock = nullptr;  // worker deadlines (see DaemonDeps::clock)
  Logger* logger = nullptr;
};

// Serves `task` from `store` when it holds the key (and the task accepts the
// entry's dependencies): calls task.done with a cache hit and returns true.
// Otherwise (also when the store fails) returns false and leaves the task
// alone. Thread-safe. `load_check` (may be empty) runs on a GPU and sets
// outcome.status on failure.
bool ServeFromCache(
    Store& store, DaemonCounters& counters, Logger& logger, CompileTask& task,
    int slot,
    const std::function<void(const CompileTask&, TaskOutcome&)>& load_check);

// What the store keeps of a compiled `task`'s `outcome`.
KernelEntry ToKernelEntry(const CompileTask& task, const TaskOutcome& outcome);

class Slot {
 public:
  Slot(SlotOptions options, const SlotDeps& deps);
  ~Slot();
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  // Starts the worker processes (and load-checker) and their threads.
  absl::Status Start();
  // Joins the threads (after Scheduler::Shutdown) and kills the children.
  void Stop();

  int index() const { return options_.index; }
  int ProcsAlive() const;
  // True once the load-checker (GPU slots) holds its context and at least
  // one compile worker has run its self-test (the first NVRTC compile of a
  // process loads the compiler), passed or failed. A worker's thread takes
  // tasks only after its self-test, so before this a task (a cache hit
  // too) would wait behind them: ~1-2 s with 16 workers per slot on a
  // 32-core H200 host. Workers still self-testing join as they finish.
  bool Started() const;
  // Why not Started(), for the readiness reason ("" once started).
  std::string Starting() const;
  tpjit::v1::SlotStatus Status() const;
  // The pids of the slot's compile workers (for tests and fault drills).
  std::vector<int> WorkerPids() const;

 private:
  struct Proc {
    std::unique_ptr<ChildProcess> child;
    bool busy = false;
    int64_t max_rss = 0;
  };
  void Run(int proc);
  void Prime(int proc);
  void PrimeChecker();
  // Sends `child` a SELF_TEST (60 s at most); logs a failure naming `who`.
  // False when the call itself failed (died, timed out, garbage): the child
  // is then in an unknown state (a late answer may still come) and must be
  // replaced, never called again.
  bool SelfTest(ChildProcess& child, absl::string_view who);
  // Kills the load-checker and starts a new one (none while stopping).
  void ReplaceChecker() ABSL_EXCLUSIVE_LOCKS_REQUIRED(check_mu_);
  void Execute(CompileTask& task, int proc, std::shared_ptr<CompileTask> self);
  absl::Status Restart(int proc);
  // Worker `proc`'s call failed: counts a restart and restarts it (not while
  // stopping); logs when it cannot.
  void ReplaceWorker(int proc);
  bool FromCache(CompileTask& task, int proc);
  void LoadCheck(const CompileTask& task, TaskOutcome& outcome);
  // With options_.trace: "trace: <s since epoch> slot S proc P <what> <key>
  // <label>: <detail>".
  void Trace(int proc, absl::string_view what, const CompileTask& task,
             absl::string_view detail);

  const SlotOptions options_;
  Scheduler* const scheduler_;
  Store* const store_;
  ProcessLauncher* const launcher_;
  DaemonCounters* const counters_;
  Clock* const clock_;
  Logger* const logger_;
  std::vector<std::thread> threads_;
  std::atomic<int64_t> compiled_{0};
  std::atomic<int64_t> restarts_{0};
  std::atomic<bool> stopping_{false};  // Stop() began: restart no worker
  std::atomic<int> primed_{0};         // workers past their self-test
  std::atomic<bool> checker_primed_{false};
  mutable absl::Mutex mu_;
  std::vector<Proc> procs_ ABSL_GUARDED_BY(mu_);
  absl::Mutex check_mu_;  // one load check at a time on the GPU's process
  // The load-checker; replaced under both mutexes, so Stop() can interrupt a
  // check in flight (which holds check_mu_) through checker_mu_.
  absl::Mutex checker_mu_ ABSL_ACQUIRED_AFTER(check_mu_);
  std::shared_ptr<ChildProcess> checker_ ABSL_GUARDED_BY(checker_mu_);
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SLOT_H_
