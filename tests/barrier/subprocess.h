// Child processes for the multi-process barrier tests: spawn with stdout and
// stderr sent to files, poll for exit, kill on destruction. Not thread-safe.
#ifndef TPJIT_TESTS_BARRIER_SUBPROCESS_H_
#define TPJIT_TESTS_BARRIER_SUBPROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tpjit {

class Subprocess {
 public:
  // Runs argv[0] (a path) with `argv`, stdout/stderr to the given files.
  static absl::StatusOr<Subprocess> Spawn(const std::vector<std::string>& argv,
                                          const std::string& stdout_path,
                                          const std::string& stderr_path);
  Subprocess(Subprocess&& other) noexcept;
  Subprocess& operator=(Subprocess&& other) noexcept;
  ~Subprocess();  // SIGKILL and reap if still running

  // The exit code (128 + signal if killed) once it has exited, else nullopt.
  std::optional<int> Poll();
  // Waits up to `timeout`; nullopt if still running.
  std::optional<int> Wait(absl::Duration timeout);
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

std::string ReadWholeFile(const std::string& path);

}  // namespace tpjit

#endif  // TPJIT_TESTS_BARRIER_SUBPROCESS_H_
