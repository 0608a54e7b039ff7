// KernelSpec: everything that determines one compiled kernel except the
// toolchain (source digest, NVRTC version, options, salt), which the compile
// part adds when it forms the cache key (src/compile/kernel_key.h).
#ifndef TPJIT_SRC_PLAN_KERNEL_SPEC_H_
#define TPJIT_SRC_PLAN_KERNEL_SPEC_H_

#include <string>

#include "src/plan/family.h"

namespace tpjit {

struct KernelSpec {
  Family family = Family::kFp8GemmNt;
  int n = 0;
  int k = 0;
  int groups = 1;  // 1 for non-grouped families
  KernelConfig config;
  std::string arch = "sm_90a";

  friend bool operator==(const KernelSpec&, const KernelSpec&) = default;
};

// "fp8_gemm_nt n=2112 k=7168 g=1 bm64_bn64_bk128_s4_w2x2 sm_90a"
std::string ToString(const KernelSpec& spec);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_KERNEL_SPEC_H_
