// minitl's NVRTC-friendly part: no host headers; includes its helper by a
// path relative to itself.
#ifndef MINITL_PLAIN_CUH_
#define MINITL_PLAIN_CUH_

#include "detail/device.cuh"

namespace minitl {

template <int kFactor>
__device__ void ScaleInPlace(float* p, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < detail::RoundUp(n, 1) && i < n) p[i] *= static_cast<float>(kFactor);
}

}  // namespace minitl

#endif  // MINITL_PLAIN_CUH_
