// The kernel family sources (kernels/*.cu, *.cuh), embedded at build time by
// kernels/embed.cmake. Each file is named by its file name, e.g.
// "fp8_gemm_nt.cu" or "tpjit_gemm.cuh"; family sources include headers by
// these names. Immutable; thread-safe.
#ifndef TPJIT_KERNELS_EMBEDDED_H_
#define TPJIT_KERNELS_EMBEDDED_H_

#include <span>

#include "absl/strings/string_view.h"

namespace tpjit {

struct EmbeddedFile {
  absl::string_view name;
  absl::string_view content;
};

// All embedded files, sorted by name.
std::span<const EmbeddedFile> EmbeddedKernelFiles();

}  // namespace tpjit

#endif  // TPJIT_KERNELS_EMBEDDED_H_
