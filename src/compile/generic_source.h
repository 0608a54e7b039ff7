// The generic-compile source logic of the Compile RPC, without the daemon:
// include directories checked against the operator's allowlist (every
// symlink and `..` resolved), the #include directives of a source, the
// headers an NVRTC compile needs, and the cache keys of both back ends,
// which never depend on absolute paths:
//  - NVRTC: the source, and every header it includes (found in the include
//    directories, recursively, passed to NVRTC as named headers) by the name
//    it is included with and its content; options; name expressions; NVRTC
//    version; arch; salt.
//  - NVCC: the source, canonical options, output kind, the number of include
//    directories, the toolkit identity, arch and salt. The headers are not
//    read: the sandboxed compile reports every file it read (nvcc -MD) and
//    the cache entry records their hashes (src/compile/nvcc_deps.h).
// Thread-safe; reads files only where a function says so.
#ifndef TPJIT_SRC_COMPILE_GENERIC_SOURCE_H_
#define TPJIT_SRC_COMPILE_GENERIC_SOURCE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

// Resolves `dir` (an absolute path; every symlink and `..` followed) and
// checks it is a directory lying under one of the allowlist roots (also
// resolved). Returns the resolved path; INVALID_ARGUMENT otherwise.
absl::StatusOr<std::string> ResolveAllowedInclude(
    const std::string& dir, const std::vector<std::string>& allowlist);

// The resolved roots of `allowlist` that exist (reads the file system).
std::vector<std::string> ResolvedRoots(const std::vector<std::string>& roots);

// Headers for NVRTC: every file `source` includes that is found in `dirs`
// (resolved include directories), recursively, by the name it is included
// with -> its content. INVALID_ARGUMENT when a header resolves outside
// `roots` (ResolvedRoots of the allowlist), cannot be read, or the includes
// are too deep or too many. Reads the files.
absl::StatusOr<std::map<std::string, std::string>> CollectHeaders(
    absl::string_view source, const std::vector<std::string>& dirs,
    const std::vector<std::string>& roots);

// What keys one NVRTC source (see the file comment).
struct NvrtcKeyInput {
  std::string nvrtc_version;
  std::string salt;
  std::string arch;
  std::string source;
  const std::map<std::string, std::string>* headers = nullptr;
  std::vector<std::string> options;  // canonical
  std::vector<std::string> name_expressions;
};
std::string GenericNvrtcKey(const NvrtcKeyInput& in);

// What keys one NVCC source (see the file comment).
struct NvccKeyInput {
  std::string nvcc_identity;  // NvccIdentity()
  std::string salt;
  std::string arch;
  bool ptx = false;
  int64_t include_dirs = 0;  // how many, never which
  std::string source;
  std::vector<std::string> options;  // canonical
};
std::string GenericNvccKey(const NvccKeyInput& in);

struct IncludeDirective {
  std::string name;     // as written: "cute/tensor.hpp"; empty: computed
  bool quoted = false;  // "x" (also searched beside the includer) or <x>
};
// The `#include`, `#include_next` and `#import` directives in `text`
// (conditionals ignored), as the preprocessor could see the lines with or
// without trigraphs, lone CRs ending lines (see DirectiveView); a superset.
std::vector<IncludeDirective> IncludedNames(absl::string_view text);

// `text` as a conservative view for finding directives: the trigraphs for
// '#' and '\\' and the digraph %: mapped, line splices joined, comments
// replaced by one space (literals kept as written). Never hides a directive the
// compiler would see; may show extra ones (inside raw strings).
std::string DirectiveView(absl::string_view text);
// The same with trigraphs left alone (C++17 and later do not replace them);
// IncludedNames reads both views, so either reading's directives count.
std::string DirectiveViewWith(absl::string_view text, bool trigraphs);

// INVALID_ARGUMENT for a request source that includes by an absolute path,
// with a `..` component, or by a computed (macro) name: sources reach
// headers only through the allowed include directories.
absl::Status CheckSourceIncludes(absl::string_view source);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMPILE_GENERIC_SOURCE_H_
