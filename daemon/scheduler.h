// The scheduler: compile tasks in per-slot queues. A batch (a warm-up's cache
// misses, or a generic compile batch) is split into disjoint shards, one per
// worker slot, balanced by estimated cost (LPT, src/plan/sharder.h). A slot
// takes from the front of its own queue; a slot whose queue is empty steals
// from the back of the longest queue. Thread-safe.
#ifndef TPJIT_DAEMON_SCHEDULER_H_
#define TPJIT_DAEMON_SCHEDULER_H_

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "tpjit/v1/tpjit.pb.h"
#include "tpjit/v1/worker.pb.h"

namespace tpjit {

// What became of one task.
struct TaskOutcome {
  absl::Status status;  // compile error / crash / time-out; log in `log`
  bool cache_hit = false;
  std::string cubin;
  std::vector<std::string> lowered_names;
  std::string log;
  double compile_seconds = 0;
  double cpu_seconds = 0;
  int slot = -1;
  // From the load check (registers == 0 and checked == false without GPU).
  bool load_checked = false;
  std::vector<tpjit::v1::KernelAttributes> attributes;
  // NVCC: what the compile read ("<label>\t<sha256>") and nvcc's status.
  std::vector<std::string> dependencies;
  int exit_code = 0;
};

struct CompileTask {
  std::string key;    // cache key (hex SHA-256)
  std::string label;  // for logs: kernel name or source name
  tpjit::v1::WorkerRequest request;
  std::vector<std::string> symbols_to_check;  // load-check these (if GPU)
  double cost = 1.0;                          // estimated compile seconds
  double timeout_seconds = 120;
  int attempts = 0;   // crashes / time-outs so far
  int deferrals = 0;  // put back because another node was compiling it
  int last_slot = -1;
  absl::Time created;  // when the request made it (traces)
  // When set, a cached entry is served only if this accepts the entry's
  // recorded dependencies (NVCC: the request's headers still match).
  std::function<bool(const std::vector<std::string>&)> accept_dependencies;
  // Called exactly once, from a slot thread. Must not block for long.
  std::function<void(TaskOutcome)> done;
};

class Scheduler {
 public:
  explicit Scheduler(int slots);

  // Shards `tasks` over the slots by LPT and wakes them.
  void Submit(std::vector<std::shared_ptr<CompileTask>> tasks);
  // A retry: to the front of the least-loaded queue other than `avoid_slot`
  // (when there is another slot).
  void Requeue(std::shared_ptr<CompileTask> task, int avoid_slot);
  // Blocks until a task is available for `slot` (own queue, else stolen) or
  // Shutdown(); returns nullptr after Shutdown().
  std::shared_ptr<CompileTask> Take(int slot);
  // Takes without blocking; nullptr when nothing is queued.
  std::shared_ptr<CompileTask> TryTake(int slot);
  // Stops handing out tasks and fails every queued task (done() with
  // UNAVAILABLE, outside the lock). Tasks submitted or requeued afterwards
  // are failed the same way at once, so every task's done() still runs.
  void Shutdown();

  int slots() const { return static_cast<int>(queues_.size()); }
  int64_t Depth() const;
  int64_t Queued(int slot) const;
  int64_t steals() const;

 private:
  std::shared_ptr<CompileTask> TakeLocked(int slot)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::vector<std::deque<std::shared_ptr<CompileTask>>> queues_
      ABSL_GUARDED_BY(mu_);
  std::vector<double> queued_cost_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  int64_t steals_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SCHEDULER_H_
