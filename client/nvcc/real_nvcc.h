// The real nvcc behind tpjit-nvcc: where it is, and handing a call over to
// it. Every call tpjitd does not serve, and every call it cannot serve
// (fail-open), ends in ExecRealNvcc with the original arguments.
// Thread-compatible (reads the environment; exec replaces the process).
#ifndef TPJIT_CLIENT_NVCC_REAL_NVCC_H_
#define TPJIT_CLIENT_NVCC_REAL_NVCC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tpjit {

// The first of $TPJIT_REAL_NVCC, $CUDA_HOME/bin/nvcc, /usr/local/cuda/bin/nvcc
// that is set, executable and not this program itself (compared after
// resolving symlinks, so a tpjit-nvcc installed as "nvcc" never runs
// itself). NOT_FOUND naming the candidates when none is.
absl::StatusOr<std::string> FindRealNvcc();

// Replaces this process with `real_nvcc` run on `args` (argv without
// argv[0]; argv[0] becomes `real_nvcc`), in the same directory and
// environment. Returns only when exec fails: prints why to stderr and exits
// with status 127, like a shell that cannot run a command.
[[noreturn]] void ExecRealNvcc(const std::string& real_nvcc,
                               const std::vector<std::string>& args);

// FindRealNvcc then ExecRealNvcc; when no real nvcc is found prints
// "tpjit-nvcc: error: ..." and exits with status 127.
[[noreturn]] void RunRealNvcc(const std::vector<std::string>& args);

}  // namespace tpjit

#endif  // TPJIT_CLIENT_NVCC_REAL_NVCC_H_
