// Host-side helpers for the GEMM kernel tests and benchmarks: bf16 / e4m3
// encoding, random operands in the layouts of kernels/README.md, the
// double-precision reference and the poison checks. Thread-compatible.
#ifndef TPJIT_TESTS_GPU_GEMM_HOST_H_
#define TPJIT_TESTS_GPU_GEMM_HOST_H_

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "src/plan/kernel_spec.h"

namespace tpjit {

uint16_t FloatToBf16(float x);  // round to nearest even; x finite
float Bf16ToFloat(uint16_t x);
float E4m3ToFloat(uint8_t x);  // 0x7f / 0xff are NaN

// B operand(s) of a kernel: [b_mats, N, K] raw bytes, their exact values as
// floats and (fp8) the scales [b_mats, ceil(N/128), K/128]. Shared by all the
// problems a test runs with one kernel.
struct HostOperandB {
  int b_mats = 1;
  std::vector<uint8_t> raw;
  std::vector<float> val;
  std::vector<float> scales;
};

// Random B for `spec` (grouped: G matrices), filled on `threads` threads.
std::shared_ptr<const HostOperandB> MakeHostB(const KernelSpec& spec,
                                              std::mt19937_64& rng,
                                              int threads);

// One GEMM problem with host operands. `decoded_*` hold the exact values the
// kernel sees (after bf16 / e4m3 rounding) as floats.
struct HostGemm {
  KernelSpec spec;
  int64_t m = 0;       // GemmArgs::m: M, M_total (contig) or M_max (masked)
  int64_t a_rows = 0;  // rows of A and D (masked: G * M_max)
  std::shared_ptr<const HostOperandB> b;
  std::vector<uint8_t> a;       // raw operand bytes
  std::vector<float> sa;        // fp8 A scales (empty for bf16)
  std::vector<int32_t> groups;  // contig layout[M] or masked masked_m[G]
  std::vector<float> a_val;
  size_t d_bytes() const;
  int out_bytes() const;  // 2 (bf16) or 4 (fp32)
  // Group of row `r` of A/D, or -1 when the kernel must leave it untouched.
  int RowGroup(int64_t r) const;
};

// Random A operand (fresh from `rng`) for `spec` at `m`, with B `b`. Contig:
// segments of random length per group, each padded with -1 rows to a multiple
// of 128 (plus whole padding tiles); `m` is rounded up to the layout's length.
// Masked: masked_m[g] random in [0, m], including 0, 1 and m.
HostGemm MakeHostGemm(const KernelSpec& spec, int64_t m, std::mt19937_64& rng,
                      std::shared_ptr<const HostOperandB> b, int threads);

struct CheckResult {
  bool ok = false;
  double rel_err = 0;          // ||out - ref|| / ||ref|| over all valid rows
  double worst_ratio = 0;      // max |out - ref| / (atol + rtol * |ref|)
  int64_t rows_checked = 0;    // valid rows, all compared with the reference
  int64_t bad_elements = 0;    // valid elements outside the tolerance
  int64_t nan_valid = 0;       // NaN / inf in rows the kernel must write
  int64_t touched_poison = 0;  // written elements in rows it must not touch
  std::string detail;          // counts plus the first bad elements
};

// The poison byte D is filled with before each launch (0xff: NaN in bf16
// and fp32).
constexpr uint8_t kPoisonByte = 0xff;

// Compares `d` (the kernel's output) against the double-precision reference
// element by element on every valid row: |out - ref| <= atol + rtol * |ref|,
// with atol = rtol * rms(ref over that row) (the accumulation error of an
// element scales with its row's magnitude, not with its own value, which may
// be close to 0). Also checks that no valid element is NaN/inf and that rows
// the kernel must not write still hold the poison. Uses `threads`.
CheckResult CheckGemm(const HostGemm& g, const std::vector<uint8_t>& d,
                      double rtol, int threads);

// rtol for a family's output: 1e-2 for bf16 (8-bit mantissa), 1e-4 for fp32.
double DefaultRtol(const FamilyInfo& info);

// Bytes of `bytes` in [begin, end) that are not kPoisonByte.
int64_t CountUnpoisoned(const std::vector<uint8_t>& bytes, size_t begin,
                        size_t end);

}  // namespace tpjit

#endif  // TPJIT_TESTS_GPU_GEMM_HOST_H_
