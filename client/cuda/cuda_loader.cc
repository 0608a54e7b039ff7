#include "client/cuda/cuda_loader.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace tpjit {

absl::StatusOr<CudaContext> CudaContext::Open(CudaDriver* driver, int ordinal) {
  CudaContext c;
  c.driver_ = driver;
  int count = 0;
  TPJIT_RETURN_IF_ERROR(
      CuStatus(driver, driver->DeviceGetCount(&count), "cuDeviceGetCount"));
  if (ordinal < 0 || ordinal >= count) {
    return absl::UnavailableError(
        absl::StrCat("no CUDA device ", ordinal, " (", count, " present)"));
  }
  TPJIT_RETURN_IF_ERROR(
      CuStatus(driver, driver->DeviceGet(&c.device_, ordinal), "cuDeviceGet"));
  char name[256] = {};
  TPJIT_RETURN_IF_ERROR(
      CuStatus(driver, driver->DeviceGetName(name, sizeof(name) - 1, c.device_),
               "cuDeviceGetName"));
  c.name_ = name;
  int major = 0, minor = 0;
  TPJIT_RETURN_IF_ERROR(CuStatus(
      driver,
      driver->DeviceGetAttribute(
          &c.sm_count_, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, c.device_),
      "cuDeviceGetAttribute(SM count)"));
  TPJIT_RETURN_IF_ERROR(CuStatus(
      driver,
      driver->DeviceGetAttribute(
          &major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, c.device_),
      "cuDeviceGetAttribute(CC major)"));
  TPJIT_RETURN_IF_ERROR(CuStatus(
      driver,
      driver->DeviceGetAttribute(
          &minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, c.device_),
      "cuDeviceGetAttribute(CC minor)"));
  c.cc_ = major * 10 + minor;
  TPJIT_RETURN_IF_ERROR(
      CuStatus(driver, driver->DevicePrimaryCtxRetain(&c.context_, c.device_),
               "cuDevicePrimaryCtxRetain"));
  TPJIT_RETURN_IF_ERROR(c.MakeCurrent());
  return c;
}

CudaContext::CudaContext(CudaContext&& o) noexcept { *this = std::move(o); }

CudaContext& CudaContext::operator=(CudaContext&& o) noexcept {
  if (this != &o) {
    Release();
    driver_ = o.driver_;
    device_ = o.device_;
    context_ = std::exchange(o.context_, nullptr);
    name_ = std::move(o.name_);
    sm_count_ = o.sm_count_;
    cc_ = o.cc_;
  }
  return *this;
}

CudaContext::~CudaContext() { Release(); }

void CudaContext::Release() {
  if (context_ == nullptr) return;
  driver_->DevicePrimaryCtxRelease(device_);
  context_ = nullptr;
}

absl::Status CudaContext::MakeCurrent() const {
  return CuStatus(driver_, driver_->CtxSetCurrent(context_), "cuCtxSetCurrent");
}

absl::StatusOr<CudaModule> CudaModule::Load(CudaDriver* driver,
                                            absl::string_view cubin) {
  CUmodule module = nullptr;
  TPJIT_RETURN_IF_ERROR(
      CuStatus(driver, driver->ModuleLoadData(&module, cubin.data()),
               absl::StrCat("cuModuleLoadData (", cubin.size(), " bytes)")));
  return CudaModule(driver, module);
}

CudaModule::CudaModule(CudaModule&& o) noexcept { *this = std::move(o); }

CudaModule& CudaModule::operator=(CudaModule&& o) noexcept {
  if (this != &o) {
    Reset();
    driver_ = o.driver_;
    module_ = std::exchange(o.module_, nullptr);
  }
  return *this;
}

CudaModule::~CudaModule() { Reset(); }

void CudaModule::Reset() {
  if (module_ == nullptr) return;
  driver_->ModuleUnload(module_);
  module_ = nullptr;
}

absl::StatusOr<CUfunction> CudaModule::Function(
    const std::string& lowered_name) const {
  if (module_ == nullptr) return absl::FailedPreconditionError("no module");
  CUfunction fn = nullptr;
  TPJIT_RETURN_IF_ERROR(CuStatus(
      driver_, driver_->ModuleGetFunction(&fn, module_, lowered_name.c_str()),
      absl::StrCat("cuModuleGetFunction(", lowered_name, ")")));
  return fn;
}

absl::StatusOr<FunctionAttributes> QueryAttributes(CudaDriver* driver,
                                                   CUfunction fn) {
  FunctionAttributes a;
  const std::pair<int*, CUfunction_attribute> queries[] = {
      {&a.registers, CU_FUNC_ATTRIBUTE_NUM_REGS},
      {&a.local_bytes, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES},
      {&a.static_shared_bytes, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES},
      {&a.const_bytes, CU_FUNC_ATTRIBUTE_CONST_SIZE_BYTES},
      {&a.max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK},
  };
  for (const auto& [value, attr] : queries) {
    TPJIT_RETURN_IF_ERROR(CuStatus(driver,
                                   driver->FuncGetAttribute(value, attr, fn),
                                   "cuFuncGetAttribute"));
  }
  return a;
}

absl::StatusOr<DeviceBuffer> DeviceBuffer::Allocate(CudaDriver* driver,
                                                    size_t bytes) {
  DeviceBuffer b;
  b.driver_ = driver;
  b.bytes_ = bytes;
  TPJIT_RETURN_IF_ERROR(
      CuStatus(driver, driver->MemAlloc(&b.ptr_, bytes == 0 ? 1 : bytes),
               absl::StrCat("cuMemAlloc(", bytes, ")")));
  return b;
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    Reset();
    driver_ = o.driver_;
    ptr_ = std::exchange(o.ptr_, 0);
    bytes_ = std::exchange(o.bytes_, 0);
  }
  return *this;
}

DeviceBuffer::~DeviceBuffer() { Reset(); }

void DeviceBuffer::Reset() {
  if (ptr_ == 0) return;
  driver_->MemFree(ptr_);
  ptr_ = 0;
  bytes_ = 0;
}

absl::Status DeviceBuffer::Upload(const void* host, size_t bytes) const {
  if (bytes > bytes_) return absl::OutOfRangeError("upload past buffer end");
  return CuStatus(driver_, driver_->MemcpyHtoD(ptr_, host, bytes),
                  "cuMemcpyHtoD");
}

absl::Status DeviceBuffer::Download(void* host, size_t bytes) const {
  if (bytes > bytes_) return absl::OutOfRangeError("download past buffer end");
  return CuStatus(driver_, driver_->MemcpyDtoH(host, ptr_, bytes),
                  "cuMemcpyDtoH");
}

absl::Status DeviceBuffer::Fill(unsigned char value) const {
  return CuStatus(driver_, driver_->MemsetD8(ptr_, value, bytes_),
                  "cuMemsetD8");
}

}  // namespace tpjit
