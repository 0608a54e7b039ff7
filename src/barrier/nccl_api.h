// NcclApi and CudaRuntime: the NCCL and CUDA runtime calls the NCCL barrier
// makes, behind interfaces so tests can inject failures, hangs and wrong
// results. Real() implementations (nccl_api_real.cc, target
// tpjit_barrier_nccl) forward to libnccl and libcudart; both libraries load
// on machines without a GPU and report "no device" when used there.
// Implementations are thread-safe as far as the underlying libraries are.
#ifndef TPJIT_SRC_BARRIER_NCCL_API_H_
#define TPJIT_SRC_BARRIER_NCCL_API_H_

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <cstddef>
#include <string>

namespace tpjit {

class NcclApi {
 public:
  virtual ~NcclApi() = default;
  virtual ncclResult_t GetUniqueId(ncclUniqueId* id) = 0;
  virtual ncclResult_t CommInitRankConfig(ncclComm_t* comm, int nranks,
                                          ncclUniqueId id, int rank,
                                          ncclConfig_t* config) = 0;
  virtual ncclResult_t AllReduce(const void* send, void* recv, size_t count,
                                 ncclDataType_t type, ncclRedOp_t op,
                                 ncclComm_t comm, cudaStream_t stream) = 0;
  virtual ncclResult_t CommGetAsyncError(ncclComm_t comm,
                                         ncclResult_t* error) = 0;
  virtual ncclResult_t CommFinalize(ncclComm_t comm) = 0;
  virtual ncclResult_t CommDestroy(ncclComm_t comm) = 0;
  virtual ncclResult_t CommAbort(ncclComm_t comm) = 0;
  // ncclGetErrorString plus, where set, ncclGetLastError.
  virtual std::string ErrorString(ncclResult_t result) = 0;

  // Forwards to libnccl; never deleted. Defined in tpjit_barrier_nccl.
  static NcclApi* Real();
};

class CudaRuntime {
 public:
  virtual ~CudaRuntime() = default;
  virtual cudaError_t SetDevice(int device) = 0;
  virtual cudaError_t GetDeviceCount(int* count) = 0;
  // cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking).
  virtual cudaError_t StreamCreateNonBlocking(cudaStream_t* stream) = 0;
  virtual cudaError_t StreamQuery(cudaStream_t stream) = 0;
  virtual cudaError_t StreamDestroy(cudaStream_t stream) = 0;
  virtual cudaError_t Malloc(void** ptr, size_t bytes) = 0;
  virtual cudaError_t Free(void* ptr) = 0;
  virtual cudaError_t Memcpy(void* dst, const void* src, size_t bytes,
                             cudaMemcpyKind kind) = 0;
  virtual cudaError_t Memset(void* ptr, int value, size_t bytes) = 0;
  virtual cudaError_t DeviceSynchronize() = 0;
  virtual std::string ErrorString(cudaError_t error) = 0;

  // Forwards to libcudart; never deleted. Defined in tpjit_barrier_nccl.
  static CudaRuntime* Real();
};

}  // namespace tpjit

#endif  // TPJIT_SRC_BARRIER_NCCL_API_H_
