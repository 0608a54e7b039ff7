// What the daemon checks before it serves a cubin read from the cache. The
// cache's checksum only says the entry is whole, not who wrote it or that it
// is a kernel binary: the metadata of an entry (load_checked, registers,
// ...) is never believed. A hit is served only if its bytes parse as a CUDA
// ELF of the task's SM holding every kernel symbol it claims; the kernel
// attributes come from that ELF, and load_checked only from a load check
// this process runs. Pure and thread-safe.
#ifndef TPJIT_DAEMON_CUBIN_CHECK_H_
#define TPJIT_DAEMON_CUBIN_CHECK_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tpjit/v1/worker.pb.h"

namespace tpjit {

// The SM number of an arch such as "sm_90a" (90); 0 when not of that form.
int ArchSm(absl::string_view arch);

// OK iff `cubin` is a well-formed CUDA ELF whose SM is `arch`'s (when both
// are known) and that holds a function symbol for each of `symbols`. Fills
// `attributes` (one per symbol) from the ELF's static information.
// INVALID_ARGUMENT or NOT_FOUND naming the defect otherwise.
absl::Status CheckCachedCubin(
    absl::string_view cubin, absl::string_view arch,
    const std::vector<std::string>& symbols,
    std::vector<tpjit::v1::KernelAttributes>* attributes);

// OK iff `ptx` looks like PTX text as nvcc -ptx writes it (a `.version`
// and a `.target` directive, no NUL bytes); INVALID_ARGUMENT otherwise.
absl::Status CheckCachedPtx(absl::string_view ptx);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_CUBIN_CHECK_H_
