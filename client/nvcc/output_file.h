// Writing the compiler's output file the way a reader never sees half of it:
// a temp file beside the target, renamed over it. Thread-safe (no shared
// state).
#ifndef TPJIT_CLIENT_NVCC_OUTPUT_FILE_H_
#define TPJIT_CLIENT_NVCC_OUTPUT_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

// Writes `data` to `path` through a temp file in the same directory, then
// renames it into place, with the mode a new file of nvcc's would have
// (0666 less the umask). The temp file is removed on every failure, and an
// existing `path` is left as it was. Not synced (nvcc does not sync either):
// after a crash the file may be missing, never partial to a reader that
// opens it before the crash.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data);

// The whole content of `path`.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace tpjit

#endif  // TPJIT_CLIENT_NVCC_OUTPUT_FILE_H_
