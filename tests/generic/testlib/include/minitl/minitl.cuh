// minitl: an unrolled scaled-accumulate over kUnroll strided elements per
// thread. Needs host headers and --expt-relaxed-constexpr (NVCC only).
#ifndef MINITL_MINITL_CUH_
#define MINITL_MINITL_CUH_

#include <type_traits>
#include <utility>

#include "minitl/detail/math.h"

namespace minitl {

template <typename T, int kUnroll, int kBlock, std::size_t... I>
__device__ void AccumulateUnrolled(T* y, const T* x, int n,
                                   std::index_sequence<I...>) {
  const int base = blockIdx.x * kBlock * kUnroll + threadIdx.x;
  if (n < 0) printf("%s: n < 0\n", __FILE__);  // a path in the TU, as assert
  T acc = T(0);
  ((base + static_cast<int>(I) * kBlock < n
        ? (void)(acc += x[base + I * kBlock] * T(detail::Scale(I)))
        : (void)0),
   ...);
  if (base < n) y[base] = acc;
}

// y[i] = sum_j x[i + j * kBlock] * Scale(j), for the first element of each
// unrolled group. Launch with kBlock threads and CeilDiv(n, kBlock * kUnroll)
// blocks.
template <typename T, int kUnroll, int kBlock>
__device__ void Accumulate(T* y, const T* x, int n) {
  static_assert(std::is_floating_point_v<T>, "minitl: floating point only");
  static_assert(detail::CeilDiv(kBlock, 32) * 32 == kBlock,
                "minitl: kBlock must be a multiple of 32");
  AccumulateUnrolled<T, kUnroll, kBlock>(y, x, n,
                                         std::make_index_sequence<kUnroll>{});
}

template <int kBlock>
constexpr int kWarpsPerBlock = detail::CeilDiv(kBlock, 32);

}  // namespace minitl

#endif  // MINITL_MINITL_CUH_
