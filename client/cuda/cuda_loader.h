// Cubin loading through CudaDriver: the primary context of a device, modules
// (RAII: movable, not copyable, unloaded once), functions and their
// attributes, and device buffers. Objects are thread-compatible; the driver
// calls they make are thread-safe. A context must be current on the calling
// thread (CudaContext::MakeCurrent) before modules or buffers are used.
#ifndef TPJIT_CLIENT_CUDA_CUDA_LOADER_H_
#define TPJIT_CLIENT_CUDA_CUDA_LOADER_H_

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/cuda/cuda_driver.h"

namespace tpjit {

// The retained primary context of one device; released on destruction.
class CudaContext {
 public:
  // Retains device `ordinal`'s primary context and makes it current.
  static absl::StatusOr<CudaContext> Open(CudaDriver* driver, int ordinal);

  CudaContext(CudaContext&& other) noexcept;
  CudaContext& operator=(CudaContext&& other) noexcept;
  CudaContext(const CudaContext&) = delete;
  CudaContext& operator=(const CudaContext&) = delete;
  ~CudaContext();

  absl::Status MakeCurrent() const;
  const std::string& device_name() const { return name_; }
  int sm_count() const { return sm_count_; }
  int compute_capability() const { return cc_; }  // e.g. 90

 private:
  CudaContext() = default;
  void Release();

  CudaDriver* driver_ = nullptr;
  CUdevice device_ = 0;
  CUcontext context_ = nullptr;
  std::string name_;
  int sm_count_ = 0;
  int cc_ = 0;
};

// A loaded cubin; unloaded on destruction (a second release is a no-op).
class CudaModule {
 public:
  // INVALID_ARGUMENT when the driver rejects the image.
  static absl::StatusOr<CudaModule> Load(CudaDriver* driver,
                                         absl::string_view cubin);

  CudaModule(CudaModule&& other) noexcept;
  CudaModule& operator=(CudaModule&& other) noexcept;
  CudaModule(const CudaModule&) = delete;
  CudaModule& operator=(const CudaModule&) = delete;
  ~CudaModule();

  // NOT_FOUND-like error when the module has no such (lowered) name.
  absl::StatusOr<CUfunction> Function(const std::string& lowered_name) const;
  void Reset();

 private:
  CudaModule(CudaDriver* driver, CUmodule module)
      : driver_(driver), module_(module) {}

  CudaDriver* driver_ = nullptr;
  CUmodule module_ = nullptr;
};

struct FunctionAttributes {
  int registers = 0;
  int local_bytes = 0;  // per thread: spills and local arrays
  int static_shared_bytes = 0;
  int const_bytes = 0;
  int max_threads = 0;
};

absl::StatusOr<FunctionAttributes> QueryAttributes(CudaDriver* driver,
                                                   CUfunction fn);

// Device memory; freed on destruction.
class DeviceBuffer {
 public:
  static absl::StatusOr<DeviceBuffer> Allocate(CudaDriver* driver,
                                               size_t bytes);

  DeviceBuffer() = default;
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  CUdeviceptr ptr() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  // REQUIRES: bytes <= this->bytes().
  absl::Status Upload(const void* host, size_t bytes) const;
  absl::Status Download(void* host, size_t bytes) const;
  absl::Status Fill(unsigned char value) const;
  void Reset();

 private:
  CudaDriver* driver_ = nullptr;
  CUdeviceptr ptr_ = 0;
  size_t bytes_ = 0;
};

}  // namespace tpjit

#endif  // TPJIT_CLIENT_CUDA_CUDA_LOADER_H_
