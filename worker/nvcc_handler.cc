// NVCC back end of tpjit-worker: `nvcc -cubin` (or -ptx) with -MD as a
// sandboxed child process in a private temp directory, killed (with its
// process group) at the request's time limit. The request carries the nvcc
// executable as options[0], then the canonical options; include_dirs are
// resolved, allowed directories (see BuildGenericTasks in
// generic_compile.h). The response carries the dependency labels and hashes
// (src/compile/nvcc_deps.h) and nvcc's exit status; a compile error is
// ok=false with the filtered log as the error.
#include "absl/strings/str_cat.h"
#include "src/compile/nvcc.h"
#include "worker/handlers.h"

namespace tpjit {
namespace {

SandboxSpec FromProto(const tpjit::v1::Sandbox& s) {
  SandboxSpec out;
  out.uid = s.uid();
  out.gid = s.gid();
  out.address_space_bytes = s.address_space_bytes();
  out.file_bytes = s.file_bytes();
  out.open_files = s.open_files();
  out.processes = s.processes();
  out.new_network = s.new_network();
  return out;
}

}  // namespace

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
  input.ptx = request.ptx();
  input.timeout_seconds =
      request.timeout_seconds() > 0 ? request.timeout_seconds() : 120;
  input.sandbox = FromProto(request.sandbox());
  if (!request.has_sandbox()) input.sandbox.uid = input.sandbox.gid = -1;
  auto out = NvccCompile(input);
  if (!out.ok()) {  // not nvcc's verdict: exit_code 0 (clients fail open)
    response->set_ok(false);
    response->set_exit_code(0);
    response->set_error(std::string(out.status().message()));
    return;
  }
  response->set_exit_code(out->exit_code);
  response->set_wall_seconds(out->wall_seconds);
  response->set_cpu_seconds(out->cpu_seconds);
  for (auto& d : out->dependencies) response->add_dependencies(d);
  if (out->exit_code != 0) {
    response->set_ok(false);
    response->set_error(std::move(out->log));
    return;
  }
  response->set_ok(true);
  response->set_cubin(std::move(out->data));
  response->set_log(std::move(out->log));
}

}  // namespace tpjit
