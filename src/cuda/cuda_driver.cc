#include "src/cuda/cuda_driver.h"

#include <dlfcn.h>

#include "absl/strings/str_cat.h"

namespace tpjit {
namespace {

// cuGetProcAddress_v2 (CUDA 12.0+): resolves the entry point of `symbol` as
// of CUDA version `version`, whatever its _vN suffix is.
using GetProcAddressFn = CUresult (*)(const char*, void**, int, cuuint64_t,
                                      CUdriverProcAddressQueryResult*);
constexpr int kApiVersion = 12000;

// The driver's entry points, looked up by base name.
struct Table {
  CUresult (*init)(unsigned int);
  CUresult (*driver_get_version)(int*);
  CUresult (*device_get_count)(int*);
  CUresult (*device_get)(CUdevice*, int);
  CUresult (*device_get_name)(char*, int, CUdevice);
  CUresult (*device_get_attribute)(int*, CUdevice_attribute, CUdevice);
  CUresult (*primary_ctx_retain)(CUcontext*, CUdevice);
  CUresult (*primary_ctx_release)(CUdevice);
  CUresult (*ctx_set_current)(CUcontext);
  CUresult (*ctx_synchronize)();
  CUresult (*module_load_data)(CUmodule*, const void*);
  CUresult (*module_unload)(CUmodule);
  CUresult (*module_get_function)(CUfunction*, CUmodule, const char*);
  CUresult (*func_get_attribute)(int*, CUfunction_attribute, CUfunction);
  CUresult (*func_set_attribute)(CUfunction, CUfunction_attribute, int);
  CUresult (*launch_kernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                            unsigned, unsigned, unsigned, CUstream, void**,
                            void**);
  CUresult (*mem_alloc)(CUdeviceptr*, size_t);
  CUresult (*mem_free)(CUdeviceptr);
  CUresult (*memcpy_htod)(CUdeviceptr, const void*, size_t);
  CUresult (*memcpy_dtoh)(void*, CUdeviceptr, size_t);
  CUresult (*memset_d8)(CUdeviceptr, unsigned char, size_t);
  CUresult (*event_create)(CUevent*, unsigned int);
  CUresult (*event_record)(CUevent, CUstream);
  CUresult (*event_synchronize)(CUevent);
  CUresult (*event_elapsed_time)(float*, CUevent, CUevent);
  CUresult (*event_destroy)(CUevent);
  CUresult (*get_error_string)(CUresult, const char**);
};

template <typename F>
absl::Status Resolve(GetProcAddressFn get, const char* name, F* out) {
  void* fn = nullptr;
  CUdriverProcAddressQueryResult found = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
  const CUresult r =
      get(name, &fn, kApiVersion, CU_GET_PROC_ADDRESS_DEFAULT, &found);
  if (r != CUDA_SUCCESS || fn == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("libcuda.so.1 has no entry point ", name));
  }
  *out = reinterpret_cast<F>(fn);
  return absl::OkStatus();
}

absl::StatusOr<Table> LoadTable() {
  void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* err = dlerror();
    return absl::UnavailableError(absl::StrCat(
        "no CUDA driver: dlopen(libcuda.so.1) failed: ", err ? err : "?"));
  }
  auto get =
      reinterpret_cast<GetProcAddressFn>(dlsym(lib, "cuGetProcAddress_v2"));
  if (get == nullptr) {
    return absl::UnavailableError(
        "CUDA driver too old: no cuGetProcAddress_v2 (need CUDA 12+)");
  }
  Table t{};
  absl::Status s;
  auto add = [&](const char* name, auto* fn) {
    if (s.ok()) s = Resolve(get, name, fn);
  };
  add("cuInit", &t.init);
  add("cuDriverGetVersion", &t.driver_get_version);
  add("cuDeviceGetCount", &t.device_get_count);
  add("cuDeviceGet", &t.device_get);
  add("cuDeviceGetName", &t.device_get_name);
  add("cuDeviceGetAttribute", &t.device_get_attribute);
  add("cuDevicePrimaryCtxRetain", &t.primary_ctx_retain);
  add("cuDevicePrimaryCtxRelease", &t.primary_ctx_release);
  add("cuCtxSetCurrent", &t.ctx_set_current);
  add("cuCtxSynchronize", &t.ctx_synchronize);
  add("cuModuleLoadData", &t.module_load_data);
  add("cuModuleUnload", &t.module_unload);
  add("cuModuleGetFunction", &t.module_get_function);
  add("cuFuncGetAttribute", &t.func_get_attribute);
  add("cuFuncSetAttribute", &t.func_set_attribute);
  add("cuLaunchKernel", &t.launch_kernel);
  add("cuMemAlloc", &t.mem_alloc);
  add("cuMemFree", &t.mem_free);
  add("cuMemcpyHtoD", &t.memcpy_htod);
  add("cuMemcpyDtoH", &t.memcpy_dtoh);
  add("cuMemsetD8", &t.memset_d8);
  add("cuEventCreate", &t.event_create);
  add("cuEventRecord", &t.event_record);
  add("cuEventSynchronize", &t.event_synchronize);
  add("cuEventElapsedTime", &t.event_elapsed_time);
  add("cuEventDestroy", &t.event_destroy);
  add("cuGetErrorString", &t.get_error_string);
  if (!s.ok()) return s;
  return t;
}

class DlopenCudaDriver final : public CudaDriver {
 public:
  explicit DlopenCudaDriver(const Table& t) : t_(t) {}

  CUresult Init(unsigned int flags) override { return t_.init(flags); }
  CUresult DriverGetVersion(int* v) override {
    return t_.driver_get_version(v);
  }
  CUresult DeviceGetCount(int* n) override { return t_.device_get_count(n); }
  CUresult DeviceGet(CUdevice* d, int ordinal) override {
    return t_.device_get(d, ordinal);
  }
  CUresult DeviceGetName(char* name, int len, CUdevice d) override {
    return t_.device_get_name(name, len, d);
  }
  CUresult DeviceGetAttribute(int* v, CUdevice_attribute a,
                              CUdevice d) override {
    return t_.device_get_attribute(v, a, d);
  }
  CUresult DevicePrimaryCtxRetain(CUcontext* c, CUdevice d) override {
    return t_.primary_ctx_retain(c, d);
  }
  CUresult DevicePrimaryCtxRelease(CUdevice d) override {
    return t_.primary_ctx_release(d);
  }
  CUresult CtxSetCurrent(CUcontext c) override { return t_.ctx_set_current(c); }
  CUresult CtxSynchronize() override { return t_.ctx_synchronize(); }
  CUresult ModuleLoadData(CUmodule* m, const void* image) override {
    return t_.module_load_data(m, image);
  }
  CUresult ModuleUnload(CUmodule m) override { return t_.module_unload(m); }
  CUresult ModuleGetFunction(CUfunction* f, CUmodule m,
                             const char* name) override {
    return t_.module_get_function(f, m, name);
  }
  CUresult FuncGetAttribute(int* v, CUfunction_attribute a,
                            CUfunction f) override {
    return t_.func_get_attribute(v, a, f);
  }
  CUresult FuncSetAttribute(CUfunction f, CUfunction_attribute a,
                            int v) override {
    return t_.func_set_attribute(f, a, v);
  }
  CUresult LaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
                        unsigned bx, unsigned by, unsigned bz, unsigned smem,
                        CUstream s, void** params, void** extra) override {
    return t_.launch_kernel(f, gx, gy, gz, bx, by, bz, smem, s, params, extra);
  }
  CUresult MemAlloc(CUdeviceptr* p, size_t n) override {
    return t_.mem_alloc(p, n);
  }
  CUresult MemFree(CUdeviceptr p) override { return t_.mem_free(p); }
  CUresult MemcpyHtoD(CUdeviceptr d, const void* s, size_t n) override {
    return t_.memcpy_htod(d, s, n);
  }
  CUresult MemcpyDtoH(void* d, CUdeviceptr s, size_t n) override {
    return t_.memcpy_dtoh(d, s, n);
  }
  CUresult MemsetD8(CUdeviceptr d, unsigned char v, size_t n) override {
    return t_.memset_d8(d, v, n);
  }
  CUresult EventCreate(CUevent* e, unsigned int flags) override {
    return t_.event_create(e, flags);
  }
  CUresult EventRecord(CUevent e, CUstream s) override {
    return t_.event_record(e, s);
  }
  CUresult EventSynchronize(CUevent e) override {
    return t_.event_synchronize(e);
  }
  CUresult EventElapsedTime(float* ms, CUevent a, CUevent b) override {
    return t_.event_elapsed_time(ms, a, b);
  }
  CUresult EventDestroy(CUevent e) override { return t_.event_destroy(e); }
  CUresult GetErrorString(CUresult r, const char** s) override {
    return t_.get_error_string(r, s);
  }

 private:
  const Table t_;
};

absl::StatusOr<CudaDriver*> MakeReal() {
  absl::StatusOr<Table> table = LoadTable();
  if (!table.ok()) return table.status();
  auto* driver = new DlopenCudaDriver(*table);
  const CUresult r = driver->Init(0);
  if (r != CUDA_SUCCESS) {
    absl::Status s = CuStatus(driver, r, "cuInit");
    return absl::UnavailableError(s.message());
  }
  return driver;
}

}  // namespace

absl::StatusOr<CudaDriver*> CudaDriver::Real() {
  static const auto* driver = new absl::StatusOr<CudaDriver*>(MakeReal());
  return *driver;
}

absl::Status CuStatus(CudaDriver* driver, CUresult result,
                      absl::string_view what) {
  if (result == CUDA_SUCCESS) return absl::OkStatus();
  const char* desc = nullptr;
  if (driver->GetErrorString(result, &desc) != CUDA_SUCCESS) desc = nullptr;
  const std::string msg = absl::StrCat(what, ": CUresult ", result, " (",
                                       desc ? desc : "unknown error", ")");
  switch (result) {
    case CUDA_ERROR_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(msg);
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_NOT_INITIALIZED:
    case CUDA_ERROR_DEINITIALIZED:
      return absl::UnavailableError(msg);
    case CUDA_ERROR_INVALID_VALUE:
    case CUDA_ERROR_INVALID_IMAGE:
    case CUDA_ERROR_NOT_FOUND:
    case CUDA_ERROR_NO_BINARY_FOR_GPU:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

}  // namespace tpjit
