// Generic compiles (the Compile RPC): other JIT libraries' CUDA sources with
// the NVRTC or NVCC back end. Turns a request into compile tasks: validates
// it (backend, arch, sizes, options by allow-list (src/compile/
// compile_options.h), include directories under the operator's allowlist,
// with `..` and symlink escapes refused) and computes each source's key,
// which never depends on absolute paths:
//  - NVRTC: the source, and every header it includes (found in the include
//    directories, recursively, passed to NVRTC as named headers) by the name
//    it is included with and its content; options; name expressions; NVRTC
//    version; arch; salt.
//  - NVCC: the source, canonical options, output kind, the number of include
//    directories, the toolkit identity, arch and salt. The headers are not
//    read here: the sandboxed compile reports every file it read (nvcc -MD),
//    the cache entry records their hashes, and a request is served an entry
//    only when its own include directories hold the same contents
//    (CompileTask::accept_dependencies). Nothing runs nvcc in tpjitd.
// Thread-safe; never blocks on a compiler.
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
// NVCC back end is asked for and nvcc is not an executable file. Reads a few
// files (the include dirs' paths, the toolkit's version.json, once).
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
// The `#include`, `#include_next` and `#import` directives in `text`
// (conditionals ignored), as the preprocessor could see the lines with or
// without trigraphs, lone CRs ending lines (see DirectiveView); a superset.
std::vector<IncludeDirective> IncludedNames(absl::string_view text);

// `text` as a conservative view for finding directives: the trigraphs for
// '#' and '\\' and the digraph %: mapped, line splices joined, comments
// replaced by one space (literals kept as written). Never hides a directive the
// compiler would see; may show extra ones (inside raw strings).
std::string DirectiveView(absl::string_view text);
// The same with trigraphs left alone (C++17 and later do not replace them);
// IncludedNames reads both views, so either reading's directives count.
std::string DirectiveViewWith(absl::string_view text, bool trigraphs);

// INVALID_ARGUMENT for a request source that includes by an absolute path,
// with a `..` component, or by a computed (macro) name: sources reach
// headers only through the allowed include directories.
absl::Status CheckSourceIncludes(absl::string_view source);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_GENERIC_COMPILE_H_
