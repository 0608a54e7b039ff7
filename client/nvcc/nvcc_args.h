// The command line of tpjit-nvcc, read the way nvcc reads it: which calls
// tpjitd can serve (one source compiled to a cubin or PTX for one sm_ arch),
// and what the Compile request carries for them. Everything else runs the
// real nvcc unchanged. Pure functions (no files, no environment): the caller
// passes the working directory. Thread-safe.
#ifndef TPJIT_CLIENT_NVCC_NVCC_ARGS_H_
#define TPJIT_CLIENT_NVCC_NVCC_ARGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

enum class NvccMode { kCubin, kPtx };

// A single-source compile that tpjitd can run in nvcc's place.
struct NvccCompileCall {
  std::string source;      // as given on the command line (for messages)
  std::string source_abs;  // made absolute against the working directory
  NvccMode mode = NvccMode::kCubin;
  // -o as given made absolute; nvcc's default (<stem>.cubin / <stem>.ptx in
  // the working directory) without -o.
  std::string output;
  std::string arch;  // sm_90a: one real architecture
  // -I / --include-path values in order, made absolute (not resolved: the
  // daemon resolves symlinks and checks its allowlist).
  std::vector<std::string> include_dirs;
  // Every other option in order, one argument each: a value given as a
  // separate argument is joined as "-opt=value" (nvcc reads both forms).
  std::vector<std::string> options;
};

// Reads nvcc's arguments (argv without argv[0]). `cwd` is absolute.
// UNIMPLEMENTED (with the reason) for a call tpjitd does not serve and that
// therefore runs the real nvcc silently: not exactly one source and one of
// -cubin / -ptx, no single sm_ arch, preprocessing, dependency output,
// linking, several targets, information requests (--version, --help),
// --dryrun, kept or timed temporaries, options files. Options tpjitd may
// refuse are not judged here: the daemon's allow-list decides.
absl::StatusOr<NvccCompileCall> ParseNvccArgs(
    const std::vector<std::string>& args, const std::string& cwd);

// `path` made absolute against `cwd` (lexically: "." and ".." components are
// kept; the daemon resolves them).
std::string AbsolutePath(const std::string& path, const std::string& cwd);

// The compiler's messages as nvcc would print them for `call`: the daemon
// compiles the source under its base name, so that name, where it stands as
// a file name in `log` (at a line start or after a space or quote, followed
// by '(', ':', '"', ',' a space or the line end), becomes the source as
// given on the command line.
std::string RewriteSourceName(absl::string_view log,
                              absl::string_view daemon_name,
                              absl::string_view as_given);

// The names `source` includes in quotes ("x.h"), in order; the caller checks
// whether they exist beside the source (tpjitd only sees the include dirs).
std::vector<std::string> QuotedIncludes(absl::string_view source);

}  // namespace tpjit

#endif  // TPJIT_CLIENT_NVCC_NVCC_ARGS_H_
