#include "client/cuda/gemm_launch.h"

#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

constexpr int kDefaultSharedLimit = 48 * 1024;
constexpr int64_t kMaxGridY = 65535;

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

LaunchDims GemmLaunchDims(const KernelSpec& spec, int64_t m) {
  const FamilyInfo& info = Info(spec.family);
  const KernelConfig& c = spec.config;
  LaunchDims d;
  d.grid_x = static_cast<unsigned>(CeilDiv(spec.n, c.block_n));
  d.grid_y = static_cast<unsigned>(CeilDiv(m, c.block_m));
  d.grid_z = info.group == GroupKind::kMasked ? spec.groups : 1;
  d.block = static_cast<unsigned>(c.threads());
  d.shared_bytes = static_cast<unsigned>(SharedMemoryBytes(info, c));
  return d;
}

absl::StatusOr<GemmKernel> GemmKernel::Create(CudaDriver* driver, CUfunction fn,
                                              const KernelSpec& spec) {
  const int smem = SharedMemoryBytes(Info(spec.family), spec.config);
  if (smem > kDefaultSharedLimit) {
    TPJIT_RETURN_IF_ERROR(CuStatus(
        driver,
        driver->FuncSetAttribute(
            fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem),
        absl::StrCat("cuFuncSetAttribute(max dynamic shared = ", smem, ")")));
  }
  return GemmKernel(driver, fn, spec);
}

absl::Status GemmKernel::Launch(const GemmArgs& args, CUstream stream) const {
  if (args.m < 0) return absl::InvalidArgumentError("negative m");
  if (args.m == 0) return absl::OkStatus();
  const LaunchDims d = GemmLaunchDims(spec_, args.m);
  if (d.grid_y > kMaxGridY) {
    return absl::InvalidArgumentError(absl::StrCat(
        "m = ", args.m, " needs ", d.grid_y, " > ", kMaxGridY, " row tiles"));
  }
  GemmArgs copy = args;
  void* params[] = {&copy};
  return CuStatus(
      driver_,
      driver_->LaunchKernel(fn_, d.grid_x, d.grid_y, d.grid_z, d.block, 1, 1,
                            d.shared_bytes, stream, params, nullptr),
      absl::StrCat("cuLaunchKernel(", ToString(spec_), ")"));
}

}  // namespace tpjit
