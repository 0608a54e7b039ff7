// RunCommand: runs an argv (never through a shell) in a directory, in its own
// process group, with a time limit; on expiry the whole group is killed
// (SIGKILL). The child also dies with its parent (PDEATHSIG). Thread-safe;
// blocks for as long as the command runs. Used by the worker's NVCC back end
// (src/compile/nvcc.h) through ProcessLauncher::Run (child_process.h).
#ifndef TPJIT_SRC_COMMON_COMMAND_H_
#define TPJIT_SRC_COMMON_COMMAND_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tpjit {

// How a compiler process runs (see docs/security.md). RunCommand always gives
// the child a clean environment (PATH, HOME and TMPDIR only), stdin from
// /dev/null, its own process group and PR_SET_NO_NEW_PRIVS; a SandboxSpec
// adds an unprivileged identity, resource limits and an empty network
// namespace.
struct SandboxSpec {
  int uid = -1;  // -1: keep ours; otherwise setgroups({}), setgid, setuid
  int gid = -1;
  int64_t address_space_bytes = 0;  // RLIMIT_AS; 0 = unchanged
  int64_t file_bytes = 0;           // RLIMIT_FSIZE
  int64_t open_files = 0;           // RLIMIT_NOFILE
  int64_t processes = 0;            // RLIMIT_NPROC
  int64_t cpu_seconds = 0;          // RLIMIT_CPU
  bool new_network = false;         // unshare(CLONE_NEWNET), when allowed
  std::string path = "/usr/bin:/bin";
};

struct CommandResult {
  int exit_code = -1;      // -1 when killed by a signal
  bool timed_out = false;  // killed at the time limit
  std::string output;      // stdout + stderr (the last 1 MiB)
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system of the child and its children
};

// Runs argv[0] (an absolute path) with `argv` in `dir` (which the sandbox
// user must be able to write: the caller chowns it). Kills its process group
// after `timeout_seconds`. An error status only when the command could not be
// started at all.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& dir,
                                         double timeout_seconds,
                                         const SandboxSpec& sandbox = {});

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_COMMAND_H_
