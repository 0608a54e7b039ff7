// Kernel family fp8_grouped_gemm_nt_contig (see kernels/README.md for its
// operands). Template parameters: compiled N, K, groups G, then the
// KernelConfig fields.
#include "tpjit_gemm.cuh"

namespace tpjit_kernels {

template <int N, int K, int G, int BM, int BN, int BK, int STAGES, int WM,
          int WN>
__global__ void __launch_bounds__(WM* WN * 32, 1)
    fp8_grouped_gemm_nt_contig(GemmArgs args) {
  Gemm<true, false, kModeContig, N, K, G, BM, BN, BK, STAGES, WM, WN>::Run(
      args);
}

}  // namespace tpjit_kernels
