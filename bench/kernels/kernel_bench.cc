// Throughput of the kernel families (tpjit's mma.sync kernels, config from
// ChooseConfig) against cuBLASLt on the same GPU, as a markdown table on
// stdout. Reported, not asserted. Reference per family:
//  - fp8 families: cuBLASLt FP8 e4m3 GEMM with DeepSeek-style block scales
//    (A: 1x128, B: 128x128) when the library offers it, else per-tensor
//    scales (the "ref" column says which);
//  - bf16 families: cuBLASLt bf16 GEMM, fp32 compute (fp32 out for _f32);
//  - grouped families: one dense GEMM of the same total rows (contig: M_total
//    x N x K; masked: G * expected_m rows), i.e. without grouping overhead.
// Times: mean of 20 launches after 3 warm-ups, CUDA events.
#include <cublasLt.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "client/cuda/cuda_loader.h"
#include "client/cuda/gemm_launch.h"
#include "src/common/status_macros.h"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"

namespace tpjit {
namespace {

constexpr int kWarmup = 3;
constexpr int kIters = 20;

struct BenchCase {
  Family family;
  int n, k, groups;
  int64_t m;  // M, M_total (contig) or expected_m (masked)
};

std::vector<BenchCase> Cases() {
  std::vector<BenchCase> c;
  for (int64_t m : {64, 512, 4096}) {
    c.push_back({Family::kFp8GemmNt, 2112, 7168, 1, m});
    c.push_back({Family::kFp8GemmNt, 24576, 1536, 1, m});
    c.push_back({Family::kFp8GemmNt, 7168, 16384, 1, m});
    c.push_back({Family::kBf16GemmNt, 1280, 2048, 1, m});
    c.push_back({Family::kBf16GemmNt, 2048, 1024, 1, m});
    c.push_back({Family::kBf16GemmNtF32, 256, 7168, 1, m});
  }
  for (int64_t m : {4096, 16384}) {
    c.push_back({Family::kFp8GroupedGemmNtContig, 4096, 7168, 32, m});
    c.push_back({Family::kBf16GroupedGemmNtContig, 1536, 2048, 32, m});
  }
  for (int64_t m : {16, 128}) {
    c.push_back({Family::kFp8GroupedGemmNtMasked, 4096, 7168, 32, m});
    c.push_back({Family::kBf16GroupedGemmNtMasked, 1536, 2048, 32, m});
  }
  return c;
}

absl::Status Cu(CudaDriver* d, CUresult r, absl::string_view what) {
  return CuStatus(d, r, what);
}

// Mean milliseconds of `launch` over kIters after kWarmup.
template <typename F>
absl::StatusOr<double> TimeIt(CudaDriver* d, F launch) {
  for (int i = 0; i < kWarmup; ++i) TPJIT_RETURN_IF_ERROR(launch());
  CUevent start, stop;
  TPJIT_RETURN_IF_ERROR(Cu(d, d->EventCreate(&start, 0), "cuEventCreate"));
  TPJIT_RETURN_IF_ERROR(Cu(d, d->EventCreate(&stop, 0), "cuEventCreate"));
  TPJIT_RETURN_IF_ERROR(Cu(d, d->EventRecord(start, nullptr), "record"));
  for (int i = 0; i < kIters; ++i) TPJIT_RETURN_IF_ERROR(launch());
  TPJIT_RETURN_IF_ERROR(Cu(d, d->EventRecord(stop, nullptr), "record"));
  TPJIT_RETURN_IF_ERROR(Cu(d, d->EventSynchronize(stop), "sync"));
  float ms = 0;
  TPJIT_RETURN_IF_ERROR(Cu(d, d->EventElapsedTime(&ms, start, stop), "time"));
  d->EventDestroy(start);
  d->EventDestroy(stop);
  return ms / kIters;
}

absl::Status Lt(cublasStatus_t s, absl::string_view what) {
  if (s == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(
      absl::StrFormat("%s: cublas status %d", what, static_cast<int>(s)));
}

// cuBLASLt D[m,n] = A[m,k] * B[n,k]^T (row-major), i.e. column-major
// D'(n x m) = op_T(Bmem k x n) * Amem (k x m). Returns ms per call and the
// reference's name. fp8: `b_scales` scales cuBLAS's A (our B, n x k: 128x128
// blocks, or one float per tensor), `a_scales` cuBLAS's B (our A, m x k: one
// float per row and 128 columns); CublasScaleFloats() gives their sizes.
absl::StatusOr<std::pair<double, std::string>> CublasLt(
    CudaDriver* d, cublasLtHandle_t lt, bool fp8, bool f32_out, int64_t m,
    int n, int k, CUdeviceptr a, CUdeviceptr b, CUdeviceptr out,
    CUdeviceptr a_scales, CUdeviceptr b_scales, CUdeviceptr workspace,
    size_t ws_bytes) {
  const cudaDataType_t in = fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  const cudaDataType_t dt = f32_out ? CUDA_R_32F : CUDA_R_16BF;
  std::string name = fp8 ? "cuBLASLt fp8" : "cuBLASLt bf16";
  for (int attempt = 0; attempt < (fp8 ? 2 : 1); ++attempt) {
    const bool block = fp8 && attempt == 0;
    cublasLtMatmulDesc_t desc;
    TPJIT_RETURN_IF_ERROR(
        Lt(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
           "desc"));
    const cublasOperation_t t = CUBLAS_OP_T, nn = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t,
                                   sizeof(t));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &nn,
                                   sizeof(nn));
    if (fp8) {
      void* sa = reinterpret_cast<void*>(b_scales);  // cuBLAS A = our B
      void* sb = reinterpret_cast<void*>(a_scales);  // cuBLAS B = our A
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                     &sa, sizeof(sa));
      cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                     &sb, sizeof(sb));
      if (block) {
        const cublasLtMatmulMatrixScale_t blk =
            CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
        const cublasLtMatmulMatrixScale_t vec =
            CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                       &blk, sizeof(blk));
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                       &vec, sizeof(vec));
      }
    }
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatrixLayoutCreate(&la, in, k, n, k);
    cublasLtMatrixLayoutCreate(&lb, in, k, m, k);
    cublasLtMatrixLayoutCreate(&lc, dt, n, m, n);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
        sizeof(ws_bytes));
    cublasLtMatmulHeuristicResult_t heur{};
    int found = 0;
    const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(
        lt, desc, la, lb, lc, lc, pref, 1, &heur, &found);
    absl::StatusOr<double> ms = absl::UnavailableError("no cuBLASLt algo");
    if (hs == CUBLAS_STATUS_SUCCESS && found > 0) {
      const float alpha = 1, beta = 0;
      ms = TimeIt(d, [&]() -> absl::Status {
        return Lt(cublasLtMatmul(lt, desc, &alpha, reinterpret_cast<void*>(b),
                                 la, reinterpret_cast<void*>(a), lb, &beta,
                                 reinterpret_cast<void*>(out), lc,
                                 reinterpret_cast<void*>(out), lc, &heur.algo,
                                 reinterpret_cast<void*>(workspace), ws_bytes,
                                 nullptr),
                  "cublasLtMatmul");
      });
    }
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(desc);
    if (ms.ok()) {
      if (fp8) name += block ? " (block scales)" : " (per-tensor scales)";
      return std::make_pair(*ms, name);
    }
  }
  return absl::UnavailableError("no cuBLASLt algorithm for this shape");
}

int64_t RoundUp(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Floats of cuBLASLt's scale tensors for an (outer x k) operand: 128x128
// blocks (`block`) or one per row and 128 columns; dimensions rounded up to
// multiples of 4, more than cuBLASLt reads under either layout.
int64_t CublasScaleFloats(int64_t outer, int k, bool block) {
  const int64_t kb = RoundUp((k + 127) / 128, 4);
  return RoundUp(block ? (outer + 127) / 128 : outer, 4) * kb;
}

absl::StatusOr<DeviceBuffer> Ones(CudaDriver* d, size_t floats) {
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer b, DeviceBuffer::Allocate(d, floats * 4));
  std::vector<float> ones(floats, 1.0f);
  TPJIT_RETURN_IF_ERROR(b.Upload(ones.data(), floats * 4));
  return b;
}

absl::Status RunCase(CudaDriver* d, const CudaContext& ctx, cublasLtHandle_t lt,
                     const BenchCase& bc) {
  const FamilyInfo& info = Info(bc.family);
  Problem p;
  p.m = bc.m;
  p.n = bc.n;
  p.k = bc.k;
  p.groups = bc.groups;
  p.num_sms = ctx.sm_count();
  KernelSpec spec;
  spec.family = bc.family;
  spec.n = bc.n;
  spec.k = bc.k;
  spec.groups = bc.groups;
  spec.config = ChooseConfig(info, p);
  TPJIT_ASSIGN_OR_RETURN(KernelSource src, MakeKernelSource(spec));
  NvrtcCompiler compiler;
  TPJIT_ASSIGN_OR_RETURN(CompileOutput co,
                         compiler.Compile(ToCompileRequest(src)));
  TPJIT_ASSIGN_OR_RETURN(CudaModule module, CudaModule::Load(d, co.cubin));
  TPJIT_ASSIGN_OR_RETURN(CUfunction fn, module.Function(co.lowered_names[0]));
  TPJIT_ASSIGN_OR_RETURN(GemmKernel kernel, GemmKernel::Create(d, fn, spec));

  // Rows of A / D: masked G * M_max with M_max = expected_m, all valid.
  const bool masked = info.group == GroupKind::kMasked;
  const int64_t rows = masked ? bc.m * bc.groups : bc.m;
  const int b_mats = info.group == GroupKind::kNone ? 1 : bc.groups;
  const int eb = info.operand_bytes;
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer a,
                         DeviceBuffer::Allocate(d, rows * bc.k * eb));
  TPJIT_ASSIGN_OR_RETURN(
      DeviceBuffer b,
      DeviceBuffer::Allocate(d, int64_t{b_mats} * bc.n * bc.k * eb));
  TPJIT_ASSIGN_OR_RETURN(
      DeviceBuffer out,
      DeviceBuffer::Allocate(d, rows * bc.n * (info.f32_out ? 4 : 2)));
  TPJIT_RETURN_IF_ERROR(a.Fill(0x38));  // 1.0 in e4m3; small bf16 values
  TPJIT_RETURN_IF_ERROR(b.Fill(0x38));
  const int kb = bc.k / 128;
  // Our kernel's scales: exactly what kernels/README.md lays out.
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer sa, Ones(d, rows * kb));
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer sb,
                         Ones(d, int64_t{b_mats} * ((bc.n + 127) / 128) * kb));
  // cuBLASLt's, sized for its layouts (block scales for B need
  // ceil(N/128) * ceil(K/128) floats: more than rows * K/128 when M is small,
  // e.g. N=24576, K=1536, M=64).
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer lt_sa,
                         Ones(d, CublasScaleFloats(rows, bc.k, false)));
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer lt_sb,
                         Ones(d, CublasScaleFloats(bc.n, bc.k, true)));
  std::vector<int32_t> groups;
  if (info.group == GroupKind::kContig) {
    for (int64_t r = 0; r < rows; ++r) {
      groups.push_back(static_cast<int32_t>(r * bc.groups / rows));
    }
  } else if (masked) {
    groups.assign(bc.groups, static_cast<int32_t>(bc.m));
  }
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer g,
                         DeviceBuffer::Allocate(d, groups.size() * 4 + 4));
  if (!groups.empty()) {
    TPJIT_RETURN_IF_ERROR(g.Upload(groups.data(), groups.size() * 4));
  }
  GemmArgs args;
  args.a = a.ptr();
  args.b = b.ptr();
  args.sa = info.fp8 ? sa.ptr() : 0;
  args.sb = info.fp8 ? sb.ptr() : 0;
  args.d = out.ptr();
  args.groups = info.group == GroupKind::kNone ? 0 : g.ptr();
  args.m = static_cast<int32_t>(bc.m);
  TPJIT_ASSIGN_OR_RETURN(double ms,
                         TimeIt(d, [&] { return kernel.Launch(args); }));
  const double flops = 2.0 * rows * bc.n * bc.k;
  constexpr size_t kWs = 64 << 20;
  TPJIT_ASSIGN_OR_RETURN(DeviceBuffer ws, DeviceBuffer::Allocate(d, kWs));
  auto ref =
      CublasLt(d, lt, info.fp8, info.f32_out, rows, bc.n, bc.k, a.ptr(),
               b.ptr(), out.ptr(), lt_sa.ptr(), lt_sb.ptr(), ws.ptr(), kWs);
  const std::string ref_cell =
      ref.ok() ? absl::StrFormat("%.1f | %.3f | %.2f", flops / ref->first / 1e9,
                                 ref->first * 1e3, ms > 0 ? ref->first / ms : 0)
               : "n/a | n/a | n/a";
  std::printf("| %s | %d | %d | %d | %d | %s | %.3f | %.1f | %s | %s |\n",
              std::string(info.id).c_str(), bc.n, bc.k, bc.groups,
              static_cast<int>(bc.m), ToString(spec.config).c_str(), ms * 1e3,
              flops / ms / 1e9, ref_cell.c_str(),
              ref.ok() ? ref->second.c_str()
                       : std::string(ref.status().message()).c_str());
  std::fflush(stdout);
  return absl::OkStatus();
}

int Main() {
  absl::StatusOr<CudaDriver*> driver = CudaDriver::Real();
  if (!driver.ok()) {
    std::printf("SKIP: %s\n", std::string(driver.status().message()).c_str());
    return 0;
  }
  absl::StatusOr<CudaContext> ctx = CudaContext::Open(*driver, 0);
  if (!ctx.ok()) {
    std::printf("SKIP: %s\n", std::string(ctx.status().message()).c_str());
    return 0;
  }
  cublasLtHandle_t lt;
  if (cublasLtCreate(&lt) != CUBLAS_STATUS_SUCCESS) {
    std::printf("cublasLtCreate failed\n");
    return 1;
  }
  std::printf("device: %s (%d SMs), cuBLASLt %zu\n\n",
              ctx->device_name().c_str(), ctx->sm_count(),
              cublasLtGetVersion());
  std::printf(
      "| family | N | K | G | M | config | tpjit us | tpjit TFLOP/s | "
      "ref TFLOP/s | ref us | ref/tpjit time | ref |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  int failures = 0;
  for (const BenchCase& bc : Cases()) {
    const absl::Status s = RunCase(*driver, *ctx, lt, bc);
    if (!s.ok()) {
      ++failures;
      std::printf("| %s | %d | %d | %d | %d | error: %s |\n",
                  std::string(Info(bc.family).id).c_str(), bc.n, bc.k,
                  bc.groups, static_cast<int>(bc.m),
                  std::string(s.message()).c_str());
    }
  }
  cublasLtDestroy(lt);
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace tpjit

int main() { return tpjit::Main(); }
