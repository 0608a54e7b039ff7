// Generic compiles (the Compile RPC): other JIT libraries' CUDA sources with
// the NVRTC or NVCC back end. Turns a request into compile tasks: validates
// it (backend, arch, sizes, options by allow-list (src/compile/
// compile_options.h), include directories under the operator's allowlist)
// and keys each source (src/compile/generic_source.h). NVCC tasks are served
// from the cache only when the request's own include directories hold the
// headers the entry recorded (CompileTask::accept_dependencies). Nothing runs
// nvcc in tpjitd. Thread-safe; never blocks on a compiler.
#ifndef TPJIT_DAEMON_GENERIC_COMPILE_H_
#define TPJIT_DAEMON_GENERIC_COMPILE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/config.h"
#include "daemon/scheduler.h"
#include "src/compile/generic_source.h"
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

// The time limit the worker puts on nvcc for a task limited to
// `task_seconds`: a little less, so the worker reports the time-out itself
// before the slot would kill the worker.
double WorkerTimeLimit(double task_seconds);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_GENERIC_COMPILE_H_
