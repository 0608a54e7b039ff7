// The NVCC back end's building blocks, shared by tpjitd (key computation:
// `nvcc -E`, `nvcc --version`) and tpjit-worker (`nvcc -cubin`):
//  - ScopedTempDir: a private directory (mkdtemp, mode 0700), removed with
//    everything in it when the object goes away.
//  - RunCommand: runs an argv (never through a shell) in a directory, in its
//    own process group, with a time limit; on expiry the whole group is
//    killed (SIGKILL). The child also dies with its parent (PDEATHSIG).
//  - ValidateCompileOptions: refuses options that write files, run programs,
//    read option files, pick another compiler or name include paths.
//  - NvccCompile / NvccPreprocessDigest / NvccVersion.
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

struct CommandResult {
  int exit_code = -1;      // -1 when killed by a signal
  bool timed_out = false;  // killed at the time limit
  std::string output;      // stdout + stderr (the last 1 MiB)
  double wall_seconds = 0;
  double cpu_seconds = 0;  // user + system of the child and its children
};

// Runs argv[0] (an absolute path) with `argv` in `dir`, with TMPDIR=`dir`,
// stdin from /dev/null. Kills its process group after `timeout_seconds`.
// An error status only when the command could not be started at all.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& dir,
                                         double timeout_seconds);

// INVALID_ARGUMENT naming the first refused option. Every option must be
// one argument starting with '-' (values attached: -DN=1, -std=c++17).
// `nvcc` selects the NVCC rules (else NVRTC's).
absl::Status ValidateCompileOptions(const std::vector<std::string>& options,
                                    bool nvcc);

// One nvcc invocation. `options` must have passed ValidateCompileOptions and
// `include_dirs` ResolveAllowedInclude (generic_compile.h).
struct NvccInput {
  std::string nvcc;         // absolute path of the nvcc executable
  std::string source_name;  // file name for the source in the temp dir
  std::string source;
  std::string arch;  // e.g. sm_90a
  std::vector<std::string> options;
  std::vector<std::string> include_dirs;
  double timeout_seconds = 120;
};

struct NvccOutput {
  std::string data;      // the cubin (NvccCompile) or TU digest (preprocess)
  std::string log;       // nvcc's output (warnings)
  int64_t tu_bytes = 0;  // preprocess: size of the stripped TU
  double wall_seconds = 0;
  double cpu_seconds = 0;
};

// The argv NvccCompile runs, without the trailing "-o OUT SOURCE".
std::vector<std::string> NvccArgv(const NvccInput& input,
                                  absl::string_view mode);

// `nvcc -cubin` in a private temp directory. DEADLINE_EXCEEDED ("... time
// limit ...") when killed at the limit; INVALID_ARGUMENT with nvcc's log
// for a compile error; INTERNAL for I/O failures.
absl::StatusOr<NvccOutput> NvccCompile(const NvccInput& input);

// `nvcc -E` (device pass for `arch`) in a private temp directory; `data` is
// the SHA-256 of the preprocessed translation unit with every line marker
// (`# N "file"`, `#line`) removed and each include directory's path (from
// __FILE__) replaced by its index, so no absolute path of the source or its
// headers enters it. Errors as NvccCompile.
absl::StatusOr<NvccOutput> NvccPreprocessDigest(const NvccInput& input);

// The translation unit text with line markers removed.
std::string StripLineMarkers(absl::string_view text);

// `nvcc --version`'s release and build lines, computed once per path.
// FAILED_PRECONDITION when nvcc cannot be run.
absl::StatusOr<std::string> NvccVersion(const std::string& nvcc);

// `name` reduced to a safe file name ([A-Za-z0-9._-], no leading dot),
// ending in ".cu".
std::string SafeSourceFileName(absl::string_view name);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_NVCC_H_
