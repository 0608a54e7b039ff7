// Stand-ins for tpjit-worker processes behind the ProcessLauncher seam
// (src/common/child_process.h), for daemon, slot and job tests:
//  - ScriptedLauncher launches ScriptedWorkers, which pass the self-test and
//    answer each compile request with the next act of a shared script:
//    compile (a tiny valid cubin), compile error, crash (the process "died"),
//    hang (its time limit passed), garbage (bytes that are not a worker
//    response), or block (until Interrupt(), as a worker stuck in a
//    compile).
//  - It records what the daemon did: launches, kills, interrupts, the
//    deadlines of compile calls, the commands run through Run().
// Thread-safe.
#ifndef TPJIT_TESTS_TESTLIB_FAKE_WORKER_H_
#define TPJIT_TESTS_TESTLIB_FAKE_WORKER_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/child_process.h"

namespace tpjit::testing {

enum class WorkerAct {
  kCompile,       // ok, a TinyCubin of the request's first name expression
  kCompileError,  // ok=false, error "fake: syntax error"
  kCrash,         // UNAVAILABLE: the process died
  kHang,          // DEADLINE_EXCEEDED: the time limit passed
  kGarbage,       // UNAVAILABLE: it answered bytes that are no response
  kBlock,         // waits until Interrupt() or Kill(), then UNAVAILABLE
};

class ScriptedLauncher final : public ProcessLauncher {
 public:
  // The acts of the next compile requests (over all workers, in order);
  // once the script is used up every request compiles.
  void Script(std::vector<WorkerAct> acts);
  // Launches fail with INTERNAL from now on (true) or succeed again.
  void FailLaunches(bool fail);
  // The self-tests of compile workers and of load-checkers (launched with
  // --load-check) wait while held, until released here or interrupted.
  void HoldSelfTests(bool workers, bool load_checkers);
  // The next `n` held self-tests pass all the same.
  void PassSelfTests(int n);
  // The next `n` self-tests' calls fail (DEADLINE_EXCEEDED, as a worker that
  // took too long); the worker's next call then reads that late self-test
  // answer instead of its own, as a real worker's pipe would.
  void FailSelfTests(int n);
  // Compiled cubins are padded to at least `bytes` (a realistic size for
  // memory measurements; the padding follows the ELF's last section).
  void SetCubinBytes(size_t bytes);

  int launches() const;
  // Self-tests answered (passed), of workers and load-checkers.
  int self_tests() const;
  int kills() const;
  int interrupts() const;
  int compile_calls() const;
  // The deadline of each compile call, in order.
  std::vector<absl::Time> deadlines() const;
  // True once a kBlock act is waiting in Call.
  bool blocked() const;

  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& env) override;

 private:
  friend class ScriptedWorker;
  WorkerAct NextAct(absl::Time deadline);
  size_t cubin_bytes() const;

  mutable absl::Mutex mu_;
  std::deque<WorkerAct> script_ ABSL_GUARDED_BY(mu_);
  bool fail_launches_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_worker_self_tests_ ABSL_GUARDED_BY(mu_) = false;
  bool hold_checker_self_tests_ ABSL_GUARDED_BY(mu_) = false;
  int free_self_tests_ ABSL_GUARDED_BY(mu_) = 0;
  int failing_self_tests_ ABSL_GUARDED_BY(mu_) = 0;
  int self_tests_ ABSL_GUARDED_BY(mu_) = 0;
  size_t cubin_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int launches_ ABSL_GUARDED_BY(mu_) = 0;
  int kills_ ABSL_GUARDED_BY(mu_) = 0;
  int interrupts_ ABSL_GUARDED_BY(mu_) = 0;
  int blocked_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<absl::Time> deadlines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_TESTLIB_FAKE_WORKER_H_
