// Child processes that speak the worker protocol (proto/tpjit/v1/worker.proto)
// over a pair of pipes. ProcessLauncher is the seam tests replace to inject
// crashes and hangs. A ChildProcess is used by one thread at a time.
#ifndef TPJIT_SRC_COMMON_CHILD_PROCESS_H_
#define TPJIT_SRC_COMMON_CHILD_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
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
  // SIGKILL and reap; harmless when already dead.
  virtual void Kill() = 0;
  virtual int pid() const = 0;
};

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  // Starts argv[0] with `argv` and extra environment entries ("K=V").
  virtual absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& env) = 0;
  static ProcessLauncher* Real();
};

// Framing helpers shared with the worker side: a little-endian uint32 length,
// then the bytes. Return false at EOF or on error.
bool WriteFrame(int fd, const std::string& bytes);
bool ReadFrame(int fd, std::string* bytes);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_CHILD_PROCESS_H_
