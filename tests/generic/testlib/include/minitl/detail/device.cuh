// minitl: helpers usable from device code without relaxed constexpr.
#ifndef MINITL_DETAIL_DEVICE_CUH_
#define MINITL_DETAIL_DEVICE_CUH_

namespace minitl::detail {

__host__ __device__ constexpr int RoundUp(int a, int b) {
  return (a + b - 1) / b * b;
}

}  // namespace minitl::detail

#endif  // MINITL_DETAIL_DEVICE_CUH_
