// NVRTC handlers of tpjit-worker.
#include "absl/strings/str_cat.h"
#include "src/compile/nvrtc_compiler.h"
#include "worker/handlers.h"

namespace tpjit {
namespace {

constexpr char kSelfTestSource[] = R"(
template <int N> __global__ void tpjit_self_test(float* out) {
  out[threadIdx.x] = static_cast<float>(N) * threadIdx.x;
}
)";

}  // namespace

void HandleNvrtc(const tpjit::v1::WorkerRequest& request,
                 tpjit::v1::WorkerResponse* response) {
  CompileRequest compile;
  compile.source_name = request.source_name();
  compile.source = request.source();
  for (const auto& h : request.headers()) {
    compile.headers.emplace_back(h.name(), h.content());
  }
  compile.name_expressions.assign(request.name_expressions().begin(),
                                  request.name_expressions().end());
  compile.options.assign(request.options().begin(), request.options().end());
  static NvrtcCompiler* compiler = new NvrtcCompiler();
  auto out = compiler->Compile(compile);
  if (!out.ok()) {
    response->set_ok(false);
    response->set_error(std::string(out.status().message()));
    return;
  }
  response->set_ok(true);
  response->set_cubin(std::move(out->cubin));
  for (auto& name : out->lowered_names) response->add_lowered_names(name);
  response->set_log(out->log);
  response->set_wall_seconds(out->wall_seconds);
  response->set_cpu_seconds(out->cpu_seconds);
}

void HandleSelfTest(tpjit::v1::WorkerResponse* response) {
  tpjit::v1::WorkerRequest request;
  request.set_source_name("tpjit_self_test.cu");
  request.set_source(kSelfTestSource);
  request.add_name_expressions("tpjit_self_test<3>");
  request.add_options("-arch=sm_90a");
  HandleNvrtc(request, response);
  auto version = NvrtcCompiler().Version();
  if (response->ok() && response->cubin().size() < 64) {
    response->set_ok(false);
    response->set_error("self-test produced no cubin");
  }
  response->clear_cubin();
  if (version.ok()) response->set_version(*version);
}

}  // namespace tpjit
