// Load check of tpjit-worker --load-check GPU: the GPU's one context. Loads
// each cubin with cuModuleLoadData and reports registers, local (spill)
// bytes and static shared memory of each symbol.
#include "absl/strings/str_cat.h"
#include "src/cuda/cuda_driver.h"
#include "worker/handlers.h"

namespace tpjit {

namespace {

absl::StatusOr<CudaDriver*> ContextOn(int gpu) {
  static absl::StatusOr<CudaDriver*> ready =
      [gpu]() -> absl::StatusOr<CudaDriver*> {
    auto driver = CudaDriver::Real();
    if (!driver.ok()) return driver.status();
    CudaDriver* d = *driver;
    CUdevice dev;
    CUcontext ctx;
    if (auto s = CuStatus(d, d->Init(0), "cuInit"); !s.ok()) return s;
    if (auto s = CuStatus(d, d->DeviceGet(&dev, gpu), "cuDeviceGet"); !s.ok()) {
      return s;
    }
    if (auto s = CuStatus(d, d->DevicePrimaryCtxRetain(&ctx, dev),
                          "cuDevicePrimaryCtxRetain");
        !s.ok()) {
      return s;
    }
    if (auto s = CuStatus(d, d->CtxSetCurrent(ctx), "cuCtxSetCurrent");
        !s.ok()) {
      return s;
    }
    return d;
  }();
  return ready;
}

int Attr(CudaDriver* d, CUfunction fn, CUfunction_attribute a) {
  int v = 0;
  d->FuncGetAttribute(&v, a, fn);
  return v;
}

}  // namespace

void HandleLoadCheckSelfTest(int gpu, tpjit::v1::WorkerResponse* response) {
  auto driver = ContextOn(gpu);
  if (!driver.ok()) {
    response->set_error(std::string(driver.status().message()));
    return;
  }
  response->set_ok(true);
}

void HandleLoadCheck(const tpjit::v1::WorkerRequest& request, int gpu,
                     tpjit::v1::WorkerResponse* response) {
  if (gpu < 0) {
    response->set_error("this worker holds no GPU");
    return;
  }
  auto driver = ContextOn(gpu);
  if (!driver.ok()) {
    response->set_error(std::string(driver.status().message()));
    return;
  }
  CudaDriver* d = *driver;
  CUmodule module;
  if (auto s = CuStatus(d, d->ModuleLoadData(&module, request.cubin().data()),
                        "cuModuleLoadData");
      !s.ok()) {
    response->set_error(std::string(s.message()));
    return;
  }
  for (const std::string& symbol : request.symbols()) {
    CUfunction fn;
    if (auto s = CuStatus(d, d->ModuleGetFunction(&fn, module, symbol.c_str()),
                          absl::StrCat("cuModuleGetFunction ", symbol));
        !s.ok()) {
      d->ModuleUnload(module);
      response->set_error(std::string(s.message()));
      return;
    }
    auto* a = response->add_attributes();
    a->set_symbol(symbol);
    a->set_registers(Attr(d, fn, CU_FUNC_ATTRIBUTE_NUM_REGS));
    a->set_local_bytes(Attr(d, fn, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES));
    a->set_static_smem_bytes(Attr(d, fn, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES));
    a->set_max_threads(Attr(d, fn, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK));
  }
  d->ModuleUnload(module);
  response->set_ok(true);
}

}  // namespace tpjit
