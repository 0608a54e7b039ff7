// Launching the kernel families of kernels/: the host mirror of the kernels'
// one parameter (GemmArgs) and a launcher that derives grid, block and
// dynamic shared memory from the KernelSpec's config. Thread-compatible.
#ifndef TPJIT_CLIENT_CUDA_GEMM_LAUNCH_H_
#define TPJIT_CLIENT_CUDA_GEMM_LAUNCH_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "src/cuda/cuda_driver.h"
#include "src/plan/kernel_spec.h"

namespace tpjit {

// Mirrors tpjit_kernels::GemmArgs in kernels/tpjit_gemm.cuh (device pointers;
// unused ones 0). See kernels/README.md for shapes per family.
struct GemmArgs {
  CUdeviceptr a = 0;       // A: [M, K] (masked: [G, M_max, K])
  CUdeviceptr sa = 0;      // fp8: float [M, K/128] (masked: [G, M_max, K/128])
  CUdeviceptr b = 0;       // B: [N, K] (grouped: [G, N, K])
  CUdeviceptr sb = 0;      // fp8: float [ceil(N/128), K/128] (grouped: [G,...])
  CUdeviceptr d = 0;       // D: [M, N] (masked: [G, M_max, N])
  CUdeviceptr groups = 0;  // contig: int layout[M]; masked: int masked_m[G]
  int32_t m = 0;           // M (contig: M_total; masked: M_max)
  int32_t reserved = 0;
};
static_assert(sizeof(GemmArgs) == 56, "must match the device struct");

struct LaunchDims {
  unsigned grid_x = 0, grid_y = 0, grid_z = 0;
  unsigned block = 0;
  unsigned shared_bytes = 0;  // dynamic
};

// grid = (ceil(N/BN), ceil(m/BM), masked ? G : 1), block = 32*WM*WN threads,
// dynamic shared memory = SharedMemoryBytes(). `m` as in GemmArgs::m.
LaunchDims GemmLaunchDims(const KernelSpec& spec, int64_t m);

// A function of the family's kernel for `spec`, ready to launch.
class GemmKernel {
 public:
  // Raises the function's dynamic shared-memory limit when it needs more
  // than 48 KiB. `driver` must outlive the kernel.
  static absl::StatusOr<GemmKernel> Create(CudaDriver* driver, CUfunction fn,
                                           const KernelSpec& spec);

  // Enqueues one launch on `stream`; nothing when args.m == 0.
  // INVALID_ARGUMENT when m does not fit the grid.
  absl::Status Launch(const GemmArgs& args, CUstream stream = nullptr) const;

  const KernelSpec& spec() const { return spec_; }

 private:
  GemmKernel(CudaDriver* driver, CUfunction fn, const KernelSpec& spec)
      : driver_(driver), fn_(fn), spec_(spec) {}

  CudaDriver* driver_;
  CUfunction fn_;
  KernelSpec spec_;
};

}  // namespace tpjit

#endif  // TPJIT_CLIENT_CUDA_GEMM_LAUNCH_H_
