// KernelSpec -> what NVRTC compiles: the family's embedded source and the
// headers it includes (kernels/, by file name), the name expression that
// instantiates the kernel template, the canonical options and the family's
// source digest. Pure and thread-safe.
#ifndef TPJIT_SRC_COMPILE_KERNEL_SOURCE_H_
#define TPJIT_SRC_COMPILE_KERNEL_SOURCE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/compile/nvrtc_compiler.h"
#include "src/plan/kernel_spec.h"

namespace tpjit {

struct KernelSource {
  std::string source_name;  // "fp8_gemm_nt.cu"
  std::string source;
  HeaderList headers;           // every file it includes, transitively
  std::string name_expression;  // "tpjit_kernels::fp8_gemm_nt<2112, ...>"
  std::vector<std::string> options;
  std::string family_digest;  // FamilySourceDigest(spec.family)
};

// The options every kernel of `arch` is compiled with, in canonical order:
// {"-arch=<arch>", "-std=c++17"}. Nothing host-specific (no include paths).
std::vector<std::string> CanonicalOptions(absl::string_view arch);

// SHA-256 over the (file name, content) of the family's source and of every
// header it includes, transitively, in a canonical order. Computed once.
const std::string& FamilySourceDigest(Family family);

// OK when the kernel template supports `spec` (tile divisibility, BK of the
// family, K multiple of BK, N multiple of 8, fp8 BN <= 128, shared memory).
absl::Status ValidateKernelSpec(const KernelSpec& spec);

absl::StatusOr<KernelSource> MakeKernelSource(const KernelSpec& spec);

// The NVRTC request for `source` (one name expression).
CompileRequest ToCompileRequest(const KernelSource& source);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_KERNEL_SOURCE_H_
