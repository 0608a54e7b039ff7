// The NVCC back end's building blocks. nvcc itself runs only in tpjit-worker
// (`nvcc -cubin -MD`, sandboxed); tpjitd never starts it (NvccIdentity reads
// files):
//  - ScopedTempDir: a private directory (mkdtemp, mode 0700), removed with
//    everything in it when the object goes away.
//  - RunCommand: runs an argv (never through a shell) in a directory, in its
//    own process group, with a time limit; on expiry the whole group is
//    killed (SIGKILL). The child also dies with its parent (PDEATHSIG).
//  - ValidateCompileOptions: the option allow-list.
//  - NvccCompile / NvccIdentity.
// All functions are thread-safe; they block for as long as nvcc runs.
#ifndef TPJIT_DAEMON_NVCC_H_
#define TPJIT_DAEMON_NVCC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

class ScopedTempDir {
 public:
  // A new directory under $TMPDIR (else /tmp) named `prefix`XXXXXX.
  static absl::StatusOr<ScopedTempDir> Create(absl::string_view prefix);
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();  // removes the tree; harmless when moved from

  const std::string& path() const { return path_; }

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}
  void Remove();  // harmless when already removed
  std::string path_;
};

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

// INVALID_ARGUMENT naming the first refused option (the allow-list of
// src/compile/compile_options.h). `nvcc` selects the NVCC rules.
absl::Status ValidateCompileOptions(const std::vector<std::string>& options,
                                    bool nvcc);

// One nvcc invocation. `options` must be canonical (ParseCompileOptions) and
// `include_dirs` resolved allowed directories (ResolveAllowedInclude).
struct NvccInput {
  std::string nvcc;         // absolute path of the nvcc executable
  std::string source_name;  // file name for the source in the temp dir
  std::string source;
  std::string arch;  // e.g. sm_90a
  std::vector<std::string> options;
  std::vector<std::string> include_dirs;
  bool ptx = false;  // -ptx instead of -cubin
  double timeout_seconds = 120;
  SandboxSpec sandbox;
};

struct NvccOutput {
  int exit_code = 0;  // nvcc's; `data` is empty unless 0
  std::string data;   // the cubin or PTX
  std::string log;    // nvcc's messages about the request's own files
  // "<label>\t<sha256>" for every file read besides the source, sorted
  // (src/compile/nvcc_deps.h).
  std::vector<std::string> dependencies;
  double wall_seconds = 0;
  double cpu_seconds = 0;
};

// The argv NvccCompile runs, without the trailing dependency and output
// arguments.
std::vector<std::string> NvccArgv(const NvccInput& input);

// `nvcc -cubin` (or -ptx) with `-MD` in a private temp directory, under
// `input.sandbox`. A compile error is an OK status with a nonzero exit_code
// and nvcc's (filtered) log. INVALID_ARGUMENT, with no compiler output at
// all, when the compile read a file outside the include directories, the
// toolkit and the system headers; DEADLINE_EXCEEDED when killed at the time
// limit; INTERNAL for I/O failures.
absl::StatusOr<NvccOutput> NvccCompile(const NvccInput& input);

// What identifies an nvcc for cache keys, without running it: the SHA-256 of
// the toolkit's version.json (every component's version) beside its bin/,
// else of the nvcc executable. FAILED_PRECONDITION when nvcc is not an
// executable file. Remembered per path.
absl::StatusOr<std::string> NvccIdentity(const std::string& nvcc);

// `name` reduced to a safe file name ([A-Za-z0-9._-], no leading dot),
// ending in ".cu".
std::string SafeSourceFileName(absl::string_view name);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_NVCC_H_
