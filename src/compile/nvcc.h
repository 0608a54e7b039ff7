// The NVCC back end: what tpjit-worker runs for an NVCC compile and what
// tpjitd needs to key one. nvcc itself runs only in tpjit-worker
// (`nvcc -cubin -MD`, sandboxed, started through ProcessLauncher::Run);
// tpjitd never starts it (NvccIdentity reads files):
//  - ValidateCompileOptions: the option allow-list.
//  - NvccCompile / NvccIdentity / NvccArgv.
// All functions are thread-safe; NvccCompile blocks for as long as nvcc runs.
#ifndef TPJIT_SRC_COMPILE_NVCC_H_
#define TPJIT_SRC_COMPILE_NVCC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/common/child_process.h"
#include "src/common/command.h"

namespace tpjit {

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
  // Starts nvcc (ProcessLauncher::Run); null: ProcessLauncher::Real().
  ProcessLauncher* launcher = nullptr;
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

#endif  // TPJIT_SRC_COMPILE_NVCC_H_
