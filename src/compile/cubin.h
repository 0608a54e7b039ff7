// Static checks of a cubin: a well-formed 64-bit ELF for EM_CUDA (190) whose
// symbol table holds a given kernel, plus what the ELF says statically about
// that kernel. Pure and thread-safe; never reads past the buffer.
#ifndef TPJIT_SRC_COMPILE_CUBIN_H_
#define TPJIT_SRC_COMPILE_CUBIN_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

struct CubinKernelInfo {
  std::string symbol;
  int sm = 0;                 // e_flags' SM (e.g. 90), 0 if unknown
  int registers = -1;         // EIATTR_REGCOUNT in .nv.info, -1 if absent
  int frame_bytes = -1;       // EIATTR_FRAME_SIZE (stack: spills, arrays)
  int64_t static_shared = 0;  // size of .nv.shared.<symbol> (incl. reserved)
  int64_t code_bytes = 0;     // size of .text.<symbol>
};

// OK iff `cubin` is a well-formed 64-bit little-endian ELF for EM_CUDA
// whose section headers lie inside it; INVALID_ARGUMENT naming the defect.
absl::Status ValidateCubin(absl::string_view cubin);

// INVALID_ARGUMENT naming the defect when `cubin` is not a well-formed CUDA
// ELF; NOT_FOUND when it holds no function symbol `symbol`.
absl::StatusOr<CubinKernelInfo> InspectCubin(absl::string_view cubin,
                                             absl::string_view symbol);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_CUBIN_H_
