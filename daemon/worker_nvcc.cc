// NVCC back end of tpjit-worker: `nvcc -cubin` as a child process in a
// private temp directory, killed (with its process group) at the request's
// time limit. The request carries the nvcc executable as options[0], then
// the validated options; include_dirs are resolved, allowed directories
// (see BuildGenericTasks in generic_compile.h).
#include "absl/strings/str_cat.h"
#include "daemon/nvcc.h"
#include "daemon/worker_handlers.h"

namespace tpjit {

void HandleNvcc(const tpjit::v1::WorkerRequest& request,
                tpjit::v1::WorkerResponse* response) {
  if (request.options().empty()) {
    response->set_ok(false);
    response->set_error("NVCC request without the nvcc executable");
    return;
  }
  NvccInput input;
  input.nvcc = request.options(0);
  input.options.assign(request.options().begin() + 1, request.options().end());
  input.include_dirs.assign(request.include_dirs().begin(),
                            request.include_dirs().end());
  input.source_name = request.source_name();
  input.source = request.source();
  input.arch = request.arch();
  input.timeout_seconds =
      request.timeout_seconds() > 0 ? request.timeout_seconds() : 120;
  auto out = NvccCompile(input);
  if (!out.ok()) {
    response->set_ok(false);
    response->set_error(std::string(out.status().message()));
    return;
  }
  response->set_ok(true);
  response->set_cubin(std::move(out->data));
  response->set_log(std::move(out->log));
  response->set_wall_seconds(out->wall_seconds);
  response->set_cpu_seconds(out->cpu_seconds);
}

}  // namespace tpjit
