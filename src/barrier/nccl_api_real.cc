// The real NcclApi and CudaRuntime: thin forwarding to libnccl / libcudart.
#include <string>

#include "absl/strings/str_cat.h"
#include "src/barrier/nccl_api.h"

namespace tpjit {
namespace {

class RealNcclApi final : public NcclApi {
 public:
  ncclResult_t GetUniqueId(ncclUniqueId* id) override {
    return ncclGetUniqueId(id);
  }
  ncclResult_t CommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id,
                                  int rank, ncclConfig_t* config) override {
    return ncclCommInitRankConfig(comm, nranks, id, rank, config);
  }
  ncclResult_t AllReduce(const void* send, void* recv, size_t count,
                         ncclDataType_t type, ncclRedOp_t op, ncclComm_t comm,
                         cudaStream_t stream) override {
    return ncclAllReduce(send, recv, count, type, op, comm, stream);
  }
  ncclResult_t CommGetAsyncError(ncclComm_t comm,
                                 ncclResult_t* error) override {
    return ncclCommGetAsyncError(comm, error);
  }
  ncclResult_t CommFinalize(ncclComm_t comm) override {
    return ncclCommFinalize(comm);
  }
  ncclResult_t CommDestroy(ncclComm_t comm) override {
    return ncclCommDestroy(comm);
  }
  ncclResult_t CommAbort(ncclComm_t comm) override {
    return ncclCommAbort(comm);
  }
  std::string ErrorString(ncclResult_t result) override {
    std::string text = ncclGetErrorString(result);
    const char* last = ncclGetLastError(nullptr);
    if (last != nullptr && *last != '\0')
      absl::StrAppend(&text, " (", last, ")");
    return text;
  }
};

class RealCudaRuntime final : public CudaRuntime {
 public:
  cudaError_t SetDevice(int device) override { return cudaSetDevice(device); }
  cudaError_t GetDeviceCount(int* count) override {
    return cudaGetDeviceCount(count);
  }
  cudaError_t StreamCreateNonBlocking(cudaStream_t* stream) override {
    return cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking);
  }
  cudaError_t StreamQuery(cudaStream_t stream) override {
    return cudaStreamQuery(stream);
  }
  cudaError_t StreamDestroy(cudaStream_t stream) override {
    return cudaStreamDestroy(stream);
  }
  cudaError_t Malloc(void** ptr, size_t bytes) override {
    return cudaMalloc(ptr, bytes);
  }
  cudaError_t Free(void* ptr) override { return cudaFree(ptr); }
  cudaError_t Memcpy(void* dst, const void* src, size_t bytes,
                     cudaMemcpyKind kind) override {
    return cudaMemcpy(dst, src, bytes, kind);
  }
  cudaError_t Memset(void* ptr, int value, size_t bytes) override {
    return cudaMemset(ptr, value, bytes);
  }
  cudaError_t DeviceSynchronize() override { return cudaDeviceSynchronize(); }
  std::string ErrorString(cudaError_t error) override {
    return absl::StrCat(cudaGetErrorName(error), ": ",
                        cudaGetErrorString(error));
  }
};

}  // namespace

NcclApi* NcclApi::Real() {
  static NcclApi* api = new RealNcclApi();
  return api;
}

CudaRuntime* CudaRuntime::Real() {
  static CudaRuntime* runtime = new RealCudaRuntime();
  return runtime;
}

}  // namespace tpjit
