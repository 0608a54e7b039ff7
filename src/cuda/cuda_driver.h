// CudaDriver: the CUDA driver API calls tpjit makes, behind an interface so
// tests can inject failures. The real driver is reached lazily through
// dlopen("libcuda.so.1") + cuGetProcAddress, so binaries linking this start on
// machines without a GPU (where only the link stub exists) and report
// UNAVAILABLE when asked for the driver. Uses only types from <cuda.h>; never
// links libcuda. Implementations are thread-safe (the driver API is).
#ifndef TPJIT_SRC_CUDA_CUDA_DRIVER_H_
#define TPJIT_SRC_CUDA_CUDA_DRIVER_H_

#include <cuda.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

class CudaDriver {
 public:
  virtual ~CudaDriver() = default;

  virtual CUresult Init(unsigned int flags) = 0;
  virtual CUresult DriverGetVersion(int* version) = 0;
  virtual CUresult DeviceGetCount(int* count) = 0;
  virtual CUresult DeviceGet(CUdevice* device, int ordinal) = 0;
  virtual CUresult DeviceGetName(char* name, int len, CUdevice device) = 0;
  virtual CUresult DeviceGetAttribute(int* value, CUdevice_attribute attr,
                                      CUdevice device) = 0;
  virtual CUresult DevicePrimaryCtxRetain(CUcontext* ctx, CUdevice dev) = 0;
  virtual CUresult DevicePrimaryCtxRelease(CUdevice dev) = 0;
  virtual CUresult CtxSetCurrent(CUcontext ctx) = 0;
  virtual CUresult CtxSynchronize() = 0;
  virtual CUresult ModuleLoadData(CUmodule* module, const void* image) = 0;
  virtual CUresult ModuleUnload(CUmodule module) = 0;
  virtual CUresult ModuleGetFunction(CUfunction* fn, CUmodule module,
                                     const char* name) = 0;
  virtual CUresult FuncGetAttribute(int* value, CUfunction_attribute attr,
                                    CUfunction fn) = 0;
  virtual CUresult FuncSetAttribute(CUfunction fn, CUfunction_attribute attr,
                                    int value) = 0;
  virtual CUresult LaunchKernel(CUfunction fn, unsigned grid_x, unsigned grid_y,
                                unsigned grid_z, unsigned block_x,
                                unsigned block_y, unsigned block_z,
                                unsigned shared_bytes, CUstream stream,
                                void** params, void** extra) = 0;
  virtual CUresult MemAlloc(CUdeviceptr* ptr, size_t bytes) = 0;
  virtual CUresult MemFree(CUdeviceptr ptr) = 0;
  virtual CUresult MemcpyHtoD(CUdeviceptr dst, const void* src,
                              size_t bytes) = 0;
  virtual CUresult MemcpyDtoH(void* dst, CUdeviceptr src, size_t bytes) = 0;
  virtual CUresult MemsetD8(CUdeviceptr dst, unsigned char value,
                            size_t bytes) = 0;
  virtual CUresult EventCreate(CUevent* event, unsigned int flags) = 0;
  virtual CUresult EventRecord(CUevent event, CUstream stream) = 0;
  virtual CUresult EventSynchronize(CUevent event) = 0;
  virtual CUresult EventElapsedTime(float* ms, CUevent start, CUevent end) = 0;
  virtual CUresult EventDestroy(CUevent event) = 0;
  virtual CUresult GetErrorString(CUresult result, const char** str) = 0;

  // The process-wide real driver: dlopen("libcuda.so.1") on first use, then
  // cuInit(0). UNAVAILABLE (with the reason) when there is no driver or no
  // device; the outcome is remembered. The driver is never deleted.
  static absl::StatusOr<CudaDriver*> Real();
};

// OK, or an error "<what>: CUDA_ERROR_... (<description>)".
absl::Status CuStatus(CudaDriver* driver, CUresult result,
                      absl::string_view what);

}  // namespace tpjit

#endif  // TPJIT_SRC_CUDA_CUDA_DRIVER_H_
