#include "src/compile/generic_source.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "src/common/digest.h"

namespace tpjit {
namespace {

constexpr int kMaxHeaders = 4096;
constexpr size_t kMaxHeaderBytes = 256 << 20;
constexpr int kMaxIncludeDepth = 64;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

// Resolved allowlist roots (those that exist).
}  // namespace

std::vector<std::string> ResolvedRoots(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const std::string& root : roots) {
    char buf[PATH_MAX];
    if (realpath(root.c_str(), buf) != nullptr) out.emplace_back(buf);
  }
  return out;
}

namespace {

bool UnderAny(const std::string& resolved,
              const std::vector<std::string>& roots) {
  for (const std::string& r : roots) {
    if (r == "/" || resolved == r || absl::StartsWith(resolved, r + "/")) {
      return true;
    }
  }
  return false;
}

bool IsRegularFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// Headers for NVRTC: every file the source includes that is found in the
// include directories, recursively, by the name it is included with.
class HeaderCollector {
 public:
  HeaderCollector(const std::vector<std::string>& dirs,
                  const std::vector<std::string>& roots)
      : dirs_(dirs), roots_(roots) {}

  absl::Status Collect(absl::string_view text, const std::string& self_dir,
                       int depth) {
    if (depth > kMaxIncludeDepth) return Bad("include_dirs: includes too deep");
    for (const IncludeDirective& inc : IncludedNames(text)) {
      if (inc.name.empty() || headers_.count(inc.name)) continue;
      std::string found;
      if (inc.quoted && !self_dir.empty() &&
          IsRegularFile(self_dir + "/" + inc.name)) {
        found = self_dir + "/" + inc.name;
      }
      for (size_t i = 0; found.empty() && i < dirs_.size(); ++i) {
        if (IsRegularFile(dirs_[i] + "/" + inc.name)) {
          found = dirs_[i] + "/" + inc.name;
        }
      }
      if (found.empty()) continue;  // NVRTC's own, or an error NVRTC reports
      absl::StatusOr<std::string> content = Read(inc.name, found);
      if (!content.ok()) return content.status();
      headers_[inc.name] = *content;
      if (absl::Status s = Collect(*content, DirName(found), depth + 1);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

  const std::map<std::string, std::string>& headers() const { return headers_; }

 private:
  absl::StatusOr<std::string> Read(const std::string& name,
                                   const std::string& path) {
    char buf[PATH_MAX];
    if (realpath(path.c_str(), buf) == nullptr || !UnderAny(buf, roots_)) {
      return Bad(absl::StrCat("include \"", name, "\" (", path,
                              ") resolves outside the include allowlist"));
    }
    std::ifstream in(buf, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    if (!in && !in.eof()) {
      return Bad(absl::StrCat("include \"", name, "\": cannot read ", path));
    }
    bytes_ += s.str().size();
    if (headers_.size() >= kMaxHeaders || bytes_ > kMaxHeaderBytes) {
      return Bad("include_dirs: the sources include too many headers");
    }
    return s.str();
  }

  const std::vector<std::string>& dirs_;
  const std::vector<std::string>& roots_;
  std::map<std::string, std::string> headers_;  // by included name
  size_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> CollectHeaders(
    absl::string_view source, const std::vector<std::string>& dirs,
    const std::vector<std::string>& roots) {
  HeaderCollector collector(dirs, roots);
  if (absl::Status s = collector.Collect(source, "", 0); !s.ok()) return s;
  return collector.headers();
}

std::string GenericNvrtcKey(const NvrtcKeyInput& in) {
  CanonicalEncoder enc;
  enc.Add("generic", int64_t{2})
      .Add("backend", "nvrtc")
      .Add("nvrtc", in.nvrtc_version)
      .Add("salt", in.salt)
      .Add("arch", in.arch)
      .Add("source", in.source);
  if (in.headers != nullptr) {
    for (const auto& [name, content] : *in.headers) {
      enc.Add("header_name", name).Add("header", content);
    }
  }
  for (const auto& o : in.options) enc.Add("option", o);
  for (const auto& e : in.name_expressions) enc.Add("name_expression", e);
  return enc.Sha256();
}

std::string GenericNvccKey(const NvccKeyInput& in) {
  CanonicalEncoder enc;
  enc.Add("generic", int64_t{3})
      .Add("backend", "nvcc")
      .Add("nvcc", in.nvcc_identity)
      .Add("salt", in.salt)
      .Add("arch", in.arch)
      .Add("output", in.ptx ? "ptx" : "cubin")
      .Add("include_dirs", in.include_dirs)
      .Add("source", in.source);
  for (const auto& o : in.options) enc.Add("option", o);
  return enc.Sha256();
}

absl::StatusOr<std::string> ResolveAllowedInclude(
    const std::string& dir, const std::vector<std::string>& allowlist) {
  const std::string quoted =
      absl::StrCat("include_dirs: \"", absl::CEscape(dir), "\"");
  if (dir.empty() || dir[0] != '/' || dir.find('\0') != std::string::npos) {
    return Bad(absl::StrCat(quoted, " is not an absolute path"));
  }
  if (allowlist.empty()) {
    return Bad(absl::StrCat(quoted,
                            " is refused: no include allowlist is configured "
                            "(--include-allowlist)"));
  }
  char buf[PATH_MAX];
  if (realpath(dir.c_str(), buf) == nullptr) {
    return Bad(absl::StrCat(quoted, " does not exist"));
  }
  std::string resolved = buf;
  struct stat st;
  if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Bad(absl::StrCat(quoted, " is not a directory"));
  }
  if (UnderAny(resolved, ResolvedRoots(allowlist))) return resolved;
  return Bad(absl::StrCat(quoted, " (resolved to \"", resolved,
                          "\") is outside the include allowlist"));
}

std::vector<IncludeDirective> IncludedNames(absl::string_view text) {
  std::vector<IncludeDirective> out;
  std::set<std::pair<std::string, bool>> seen;  // both views repeat lines
  // Both readings: with trigraphs (before C++17) and without (C++17 on).
  const std::string view =
      absl::StrCat(DirectiveView(text), "\n", DirectiveViewWith(text, false));
  for (absl::string_view line : absl::StrSplit(view, '\n')) {
    absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (!absl::ConsumePrefix(&t, "#")) continue;
    t = absl::StripLeadingAsciiWhitespace(t);
    if (!absl::ConsumePrefix(&t, "include_next") &&
        !absl::ConsumePrefix(&t, "include") &&
        !absl::ConsumePrefix(&t, "import")) {
      continue;
    }
    t = absl::StripLeadingAsciiWhitespace(t);
    const char close = t.empty()     ? 0
                       : t[0] == '"' ? '"'
                       : t[0] == '<' ? '>'
                                     : 0;
    size_t end = close ? t.find(close, 1) : absl::string_view::npos;
    if (end == absl::string_view::npos || end == 1) {
      if (seen.insert({"", false}).second) {
        out.push_back({"", false});  // computed, or malformed
      }
      continue;
    }
    IncludeDirective d{std::string(t.substr(1, end - 1)), close == '"'};
    if (seen.insert({d.name, d.quoted}).second) out.push_back(std::move(d));
  }
  return out;
}

namespace {

// Whether the R at `i` (followed by '"') starts a raw string literal: the
// token before it is empty or one of the encoding prefixes.
bool RawStringPrefix(const std::string& in, size_t i) {
  size_t b = i;
  while (b > 0 && (absl::ascii_isalnum(in[b - 1]) || in[b - 1] == '_')) --b;
  absl::string_view prefix(in.data() + b, i - b);
  return prefix.empty() || prefix == "L" || prefix == "u" || prefix == "U" ||
         prefix == "u8";
}

}  // namespace

std::string DirectiveView(absl::string_view text) {
  return DirectiveViewWith(text, true);
}

std::string DirectiveViewWith(absl::string_view text, bool trigraphs) {
  std::string in = absl::StrReplaceAll(text, {{"\r\n", "\n"}});
  in = absl::StrReplaceAll(in, {{"\r", "\n"}, {"\f", " "}, {"\v", " "}});
  if (trigraphs) in = absl::StrReplaceAll(in, {{"?\?=", "#"}, {"?\?/", "\\"}});
  in = absl::StrReplaceAll(in, {{"%:", "#"}});
  in = absl::StrReplaceAll(in, {{"\\\n", ""}});
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size();) {
    const char c = in[i];
    if (c == '/' && i + 1 < in.size() && in[i + 1] == '/') {
      i = std::min(in.find('\n', i), in.size());
    } else if (c == '/' && i + 1 < in.size() && in[i + 1] == '*') {
      size_t end = in.find("*/", i + 2);
      i = end == std::string::npos ? in.size() : end + 2;
      out.push_back(' ');
    } else if (c == 'R' && i + 1 < in.size() && in[i + 1] == '"' &&
               RawStringPrefix(in, i)) {
      size_t open = in.find('(', i + 2);
      if (open == std::string::npos) open = in.size() - 1;
      const std::string close =
          absl::StrCat(")", in.substr(i + 2, open - i - 2), "\"");
      size_t end = in.find(close, open);
      end = end == std::string::npos ? in.size() : end + close.size();
      out.append(in, i, end - i);  // kept: may show extra directives
      i = end;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;  // a literal ends at its quote or the line's end
      while (j < in.size() && in[j] != c && in[j] != '\n') {
        j += in[j] == '\\' ? 2 : 1;
      }
      j = std::min(j + (j < in.size() && in[j] == c ? 1 : 0), in.size());
      out.append(in, i, j - i);
      i = j;
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

absl::Status CheckSourceIncludes(absl::string_view source) {
  for (const IncludeDirective& inc : IncludedNames(source)) {
    if (inc.name.empty()) {
      return Bad("#include with a computed or malformed name is not allowed");
    }
    bool dotdot = false;
    for (absl::string_view part : absl::StrSplit(inc.name, '/')) {
      dotdot |= part == "..";
    }
    if (inc.name[0] == '/' || dotdot) {
      return Bad(absl::StrCat("#include \"", inc.name,
                              "\": sources include only by names relative "
                              "to the include_dirs, without \"..\""));
    }
  }
  return absl::OkStatus();
}

}  // namespace tpjit
