// Compile options by allow-list: what JIT libraries actually pass to NVCC and
// NVRTC, each option parsed whole (name and value), never matched by prefix.
// Anything not on the list is refused with INVALID_ARGUMENT naming it, so no
// option can make the compiler write or read a file of the client's choosing,
// run a program, or reach a shell (nvcc runs its steps through `sh`: a value
// with `$(...)` would run it). Values follow strict grammars: -D names are C
// identifiers and values a small safe alphabet; ptxas and host compiler
// options come from fixed sets.
//
// Include directories, the target architecture and the output mode are not
// options: they are separate request fields the daemon turns into arguments.
// Thread-safe (pure functions).
#ifndef TPJIT_SRC_COMPILE_COMPILE_OPTIONS_H_
#define TPJIT_SRC_COMPILE_COMPILE_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

enum class CompilerKind { kNvrtc, kNvcc };

// Maximum number of option arguments and bytes per argument.
inline constexpr int kMaxCompileOptions = 128;
inline constexpr size_t kMaxOptionBytes = 512;

// The options in canonical form (one argument each; `-Xptxas V` and
// `-Xptxas=V` become `--ptxas-options=V`, `-Xcompiler V` becomes
// `--compiler-options=V`), or INVALID_ARGUMENT: `options: "<option>" is not
// allowed (<why>)`. The canonical list enters cache keys and argv.
absl::StatusOr<std::vector<std::string>> ParseCompileOptions(
    const std::vector<std::string>& options, CompilerKind kind);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_COMPILE_OPTIONS_H_
