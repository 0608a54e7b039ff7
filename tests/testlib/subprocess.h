// Subprocess: a child process for tests (the programs an integration test
// starts: tpjitd, ranks, the CLI, a browser), spawned in its own process
// group with stdout and stderr sent to files, polled or waited for with a
// deadline; on destruction its process group is SIGKILLed and it is reaped
// when still running. Movable, not copyable; not thread-safe.
#ifndef TPJIT_TESTS_TESTLIB_SUBPROCESS_H_
#define TPJIT_TESTS_TESTLIB_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tpjit::testing {

class Subprocess {
 public:
  // Runs argv[0] (a path) with `argv` and this process's environment;
  // stdout to `stdout_path`, stderr to `stderr_path` ("" = the same file).
  static absl::StatusOr<Subprocess> Spawn(const std::vector<std::string>& argv,
                                          const std::string& stdout_path,
                                          const std::string& stderr_path = "");
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();  // SIGKILL and reap if still running

  // The exit code (128 + signal if killed) once it has exited, else nullopt.
  std::optional<int> Poll();
  // Waits up to `timeout`; nullopt if still running.
  std::optional<int> Wait(absl::Duration timeout);
  // Waits without a limit (for processes that end by themselves).
  int WaitForever();
  void Signal(int sig);
  pid_t pid() const { return pid_; }
  absl::Time started() const { return started_; }
  absl::Time exited() const { return exited_; }

 private:
  Subprocess() = default;
  pid_t pid_ = -1;
  std::optional<int> code_;
  absl::Time started_;
  absl::Time exited_;
};

// Runs argv to completion (at most `timeout`, then SIGKILL): the exit code,
// or -1 when it was killed at the time limit or could not start.
int RunToCompletion(const std::vector<std::string>& argv,
                    const std::string& stdout_path,
                    const std::string& stderr_path = "",
                    absl::Duration timeout = absl::Minutes(5));

// The whole content of `path` ("" when it cannot be read).
std::string ReadWholeFile(const std::string& path);

// The state of process `pid` (ProcStat::state from /proc/<pid>/stat: R, S,
// Z for a zombie, ...), or 0 when there is no such process.
char ProcessState(pid_t pid);
// Alive and not a zombie (a killed orphan may wait a while for its reaper).
bool Running(pid_t pid);

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_TESTLIB_SUBPROCESS_H_
