// How many GPUs the node has, asked of the CUDA runtime (which starts and
// reports "no device" on machines without a GPU). Creates no context.
#include "src/cuda/gpu_probe.h"

#include <cuda_runtime_api.h>

namespace tpjit {

int DetectGpuCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

}  // namespace tpjit
