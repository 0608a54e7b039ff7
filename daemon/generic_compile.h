// Generic compiles (the Compile RPC): other JIT libraries' CUDA sources with
// the NVRTC or NVCC back end. Turns a request into compile tasks: validates
// it (backend, arch, sizes, include directories under the operator's
// allowlist, with `..` and symlink escapes refused) and computes each
// source's content key, which never depends on absolute paths.
#ifndef TPJIT_DAEMON_GENERIC_COMPILE_H_
#define TPJIT_DAEMON_GENERIC_COMPILE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/config.h"
#include "daemon/scheduler.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

struct GenericToolchain {
  std::string nvrtc_version;
  std::string nvcc_version;  // empty when nvcc is unavailable
  std::string salt;
};

// One task per source; `done` of each is left for the caller to set.
// INVALID_ARGUMENT names what is wrong. May run the preprocessor (blocking):
// call it off the gRPC threads.
absl::StatusOr<std::vector<std::shared_ptr<CompileTask>>> BuildGenericTasks(
    const tpjit::v1::CompileRequest& request, const DaemonConfig& config,
    const GenericToolchain& toolchain);

// Resolves `dir` (following symlinks) and checks it lies under one of the
// allowlist roots (also resolved). Returns the resolved path.
absl::StatusOr<std::string> ResolveAllowedInclude(
    const std::string& dir, const std::vector<std::string>& allowlist);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_GENERIC_COMPILE_H_
