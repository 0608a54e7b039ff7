// What an NVCC compile read, and whether a cached result still matches it.
//
// nvcc writes the files a compile read (`-MD -MF deps.d`, from the device
// pass itself, with the same macros and arch flags as the compile). Each path
// is turned into a *label* that does not depend on where things are
// installed:
//   I<i>/<rel>  under the request's i-th include directory
//   T/<rel>     under the CUDA toolkit root (the directory above nvcc's bin/)
//   S<abs>      under a system header root (/usr/include, /usr/lib/gcc, ...)
// A path under none of these (e.g. `#include "/etc/passwd"`) has no label:
// the compile is refused and nothing it printed is returned.
//
// A cached NVCC result records "<label>\t<sha256>" for every dependency; a
// later request hits only when each label, resolved against *its* include
// directories, still has that content. So two installs in different paths
// share entries, and an edited header is never served an old cubin.
// Thread-safe.
#ifndef TPJIT_SRC_COMPILE_NVCC_DEPS_H_
#define TPJIT_SRC_COMPILE_NVCC_DEPS_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tpjit {

struct DependencyRoots {
  std::vector<std::string> include_dirs;  // resolved, as passed to nvcc -I
  std::string toolkit;                    // e.g. /usr/local/cuda
  std::vector<std::string> system = {"/usr/include", "/usr/lib/gcc",
                                     "/usr/local/include"};
};

// The toolkit root of an nvcc executable path: ".../bin/nvcc" -> "...".
std::string ToolkitRoot(absl::string_view nvcc);

// The toolkit an nvcc belongs to: ToolkitRoot(nvcc) when it holds a
// version.json (a real nvcc), else $CUDA_HOME, else /usr/local/cuda (an nvcc
// wrapper script somewhere else).
std::string ToolkitRootFor(absl::string_view nvcc);

// `path` with "." and ".." components and repeated slashes removed
// lexically (symlinks are not followed).
std::string NormalizePath(absl::string_view path);

// The prerequisites of a Makefile dependency file as nvcc writes it (one
// target; "\\\n" continuations; "\\ " escaped spaces).
std::vector<std::string> ParseDependencyFile(absl::string_view text);

// The label of `path` (absolute, or relative to `cwd`); INVALID_ARGUMENT
// naming the path when it lies under none of the roots.
absl::StatusOr<std::string> LabelDependency(absl::string_view path,
                                            absl::string_view cwd,
                                            const DependencyRoots& roots);

// The path a label stands for under `roots`; empty for a malformed label or
// an include index the roots do not have.
std::string ResolveLabel(absl::string_view label, const DependencyRoots& roots);

// Compiler messages about files outside the roots removed: a message line
// "<file>(<line>): ..." or "<file>:<line>:..." whose file is neither
// `source_name` nor under a root is dropped with the indented lines (source
// excerpt, caret) that follow it.
std::string FilterCompilerLog(absl::string_view log,
                              absl::string_view source_name,
                              absl::string_view cwd,
                              const DependencyRoots& roots);

// SHA-256 of files, remembered by (device, inode, size, mtime, ctime) so a
// cache hit re-hashes nothing that did not change. Thread-safe.
class FileHasher {
 public:
  // NOT_FOUND when the file cannot be read.
  absl::StatusOr<std::string> Hash(const std::string& path);

  // Whether every "<label>\t<sha256>" line of `deps` resolves under `roots`
  // to a file with that content.
  bool Matches(const std::vector<std::string>& deps,
               const DependencyRoots& roots);

  static FileHasher& Global();

 private:
  struct Entry {
    uint64_t dev = 0, ino = 0;
    int64_t size = 0, mtime_ns = 0, ctime_ns = 0;
    std::string sha256;
  };
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_NVCC_DEPS_H_
