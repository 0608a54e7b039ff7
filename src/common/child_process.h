// The daemon's child processes, behind one seam (ProcessLauncher) that tests
// replace to inject crashes, hangs and garbage:
//  - ChildProcess: a long-lived tpjit-worker speaking the worker protocol
//    (proto/tpjit/v1/worker.proto) over a pair of pipes. Used by one thread
//    at a time, except Interrupt(), which any thread may call.
//  - ProcessLauncher::Run: a one-shot command (nvcc in the worker), run to
//    completion under a time limit and a sandbox (command.h).
// This file's implementation is the only place tpjit signals its children:
// other code asks a ChildProcess to Kill() or Interrupt() itself.
#ifndef TPJIT_SRC_COMMON_CHILD_PROCESS_H_
#define TPJIT_SRC_COMMON_CHILD_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "src/common/command.h"
#include "tpjit/v1/worker.pb.h"

namespace tpjit {

class ChildProcess {
 public:
  virtual ~ChildProcess() = default;
  // Sends `request` and waits for the reply until `deadline` (monotonic
  // absl::Now()-based). DEADLINE_EXCEEDED when it does not answer in time;
  // UNAVAILABLE when the process died or closed its pipe.
  virtual absl::StatusOr<tpjit::v1::WorkerResponse> Call(
      const tpjit::v1::WorkerRequest& request, absl::Time deadline) = 0;
  // SIGKILL and reap; harmless when already dead. Owner thread only. Real
  // children: the process groups of its own children (a worker's compiler
  // and what that started) are killed first.
  virtual void Kill() = 0;
  // SIGKILL (as Kill()) without reaping, from any thread (e.g. Stop() while the
  // owner thread waits in Call, which then returns UNAVAILABLE); the owner
  // still calls Kill() to reap. Harmless when already dead.
  virtual void Interrupt() = 0;
  virtual int pid() const = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts argv[0] with `argv` and extra environment entries ("K=V").
  virtual absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& env) = 0;
  // Runs argv to completion in `dir` under `timeout_seconds` and `sandbox`
  // (RunCommand, command.h). The default runs it for real, so a test
  // launcher overrides only what it fakes.
  virtual absl::StatusOr<CommandResult> Run(
      const std::vector<std::string>& argv, const std::string& dir,
      double timeout_seconds, const SandboxSpec& sandbox);
  static ProcessLauncher* Real();
};

// SIGKILLs every child process of this process (workers, load checkers)
// and the process groups of their children (compilers), without reaping: the
// shutdown watchdog's last resort before _exit.
void KillChildProcesses();

// Framing helpers shared with the worker side: a little-endian uint32 length,
// then the bytes. Return false at EOF or on error.
bool WriteFrame(int fd, const std::string& bytes);
bool ReadFrame(int fd, std::string* bytes);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_CHILD_PROCESS_H_
