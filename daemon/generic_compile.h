// Generic compiles (the Compile RPC): other JIT libraries' CUDA sources with
// the NVRTC or NVCC back end. Turns a request into compile tasks: validates
// it (backend, arch, sizes, options (daemon/nvcc.h), include directories
// under the operator's allowlist, with `..` and symlink escapes refused) and
// computes each source's content key, which never depends on absolute paths:
//  - NVRTC: the source, and every header it includes (found in the include
//    directories, recursively, passed to NVRTC as named headers) by the name
//    it is included with and its content; options; name expressions; NVRTC
//    version; arch; salt.
//  - NVCC: the SHA-256 of the preprocessed translation unit (`nvcc -E` for
//    the arch, same options and include directories, line markers removed);
//    the options (include paths never among them); the nvcc version; arch;
//    salt. A source that does not preprocess gets a key over its text,
//    options and include paths, and fails in the compile with nvcc's log.
// Thread-safe.
#ifndef TPJIT_DAEMON_GENERIC_COMPILE_H_
#define TPJIT_DAEMON_GENERIC_COMPILE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/config.h"
#include "daemon/scheduler.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

struct GenericToolchain {
  std::string nvrtc_version;
  std::string nvcc_version;  // empty: asked from config.nvcc (once)
  std::string salt;
};

// One task per source, in order; `done` of each is left for the caller to
// set. INVALID_ARGUMENT names what is wrong; FAILED_PRECONDITION when the
// NVCC back end is asked for and nvcc cannot be run. Runs `nvcc -E` for NVCC
// sources (a few in parallel; blocking): call it off the gRPC threads.
absl::StatusOr<std::vector<std::shared_ptr<CompileTask>>> BuildGenericTasks(
    const tpjit::v1::CompileRequest& request, const DaemonConfig& config,
    const GenericToolchain& toolchain);

// Resolves `dir` (an absolute path; every symlink and `..` followed) and
// checks it is a directory lying under one of the allowlist roots (also
// resolved). Returns the resolved path; INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> ResolveAllowedInclude(
    const std::string& dir, const std::vector<std::string>& allowlist);

// The time limit the worker puts on nvcc for a task limited to
// `task_seconds`: a little less, so the worker reports the time-out itself
// before the slot would kill the worker.
double WorkerTimeLimit(double task_seconds);

struct IncludeDirective {
  std::string name;     // as written: "cute/tensor.hpp"; empty: computed
  bool quoted = false;  // "x" (also searched beside the includer) or <x>
};
// The `#include` directives in `text`, in order (conditionals ignored), as
// the preprocessor sees the lines (see DirectiveView).
std::vector<IncludeDirective> IncludedNames(absl::string_view text);

// `text` as a conservative view for finding directives: the trigraphs for
// '#' and '\\' and the digraph %: mapped, line splices joined, comments
// replaced by one space (literals kept as written). Never hides a directive the
// compiler would see; may show extra ones (inside raw strings).
std::string DirectiveView(absl::string_view text);

// INVALID_ARGUMENT for a request source that includes by an absolute path,
// with a `..` component, or by a computed (macro) name: sources reach
// headers only through the allowed include directories.
absl::Status CheckSourceIncludes(absl::string_view source);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_GENERIC_COMPILE_H_
