// The cache key of a compiled kernel: SHA-256 over a canonical encoding of
// everything that determines the cubin (docs/design.md "Kernel key"). Nothing
// host-specific enters it. Pure and thread-safe.
#ifndef TPJIT_SRC_COMPILE_KERNEL_KEY_H_
#define TPJIT_SRC_COMPILE_KERNEL_KEY_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "src/plan/kernel_spec.h"

namespace tpjit {

struct Toolchain {
  std::string nvrtc_version;         // NvrtcCompiler::Version(), e.g. "13.0"
  std::string salt;                  // operator-chosen; bump to disown a cache
  std::vector<std::string> options;  // CanonicalOptions(arch)
};

// Lower-case hex SHA-256 over: family id, family source digest, N, K,
// groups, the config fields, arch, NVRTC version, options (in order), salt.
std::string KernelKey(const KernelSpec& spec, const Toolchain& toolchain);

// As above with an explicit family source digest (for tests).
std::string KernelKey(const KernelSpec& spec, absl::string_view family_digest,
                      const Toolchain& toolchain);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_KERNEL_KEY_H_
