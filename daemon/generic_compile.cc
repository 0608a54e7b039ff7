#include "daemon/generic_compile.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "daemon/nvcc.h"
#include "src/common/digest.h"
#include "src/common/status_macros.h"
#include "src/compile/compile_options.h"
#include "src/compile/nvcc_deps.h"

namespace tpjit {
namespace {

using tpjit::v1::CompileRequest;

constexpr int kMaxSources = 4096;
constexpr size_t kMaxSourceBytes = 8 << 20;
constexpr int kMaxHeaders = 4096;
constexpr size_t kMaxHeaderBytes = 256 << 20;
constexpr int kMaxIncludeDepth = 64;
constexpr int kMaxIncludeDirs = 64;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

absl::Status ValidateArch(const std::string& arch) {
  bool ok = absl::StartsWith(arch, "sm_") && arch.size() >= 5 &&
            arch.size() <= 7 && absl::ascii_isdigit(arch[3]) &&
            absl::ascii_isdigit(arch[4]) &&
            std::all_of(arch.begin() + 3, arch.end(),
                        [](char c) { return absl::ascii_isalnum(c); });
  if (!ok) return Bad(absl::StrCat("arch: \"", arch, "\" is not like sm_90a"));
  return absl::OkStatus();
}

bool IsNvcc(const CompileRequest& request) {
  return request.backend() == tpjit::v1::NVCC;
}

absl::Status ValidateRequest(const CompileRequest& request) {
  if (request.sources().empty()) return Bad("sources: at least one is needed");
  if (request.sources_size() > kMaxSources) {
    return Bad(absl::StrCat("sources: more than ", kMaxSources));
  }
  if (request.backend() != tpjit::v1::NVRTC &&
      request.backend() != tpjit::v1::NVCC &&
      request.backend() != tpjit::v1::BACKEND_UNSPECIFIED) {
    return Bad(absl::StrCat("backend: unknown value ", request.backend()));
  }
  if (absl::Status s = ValidateArch(request.arch()); !s.ok()) return s;
  if (request.include_dirs_size() > kMaxIncludeDirs) {
    return Bad(absl::StrCat("include_dirs: more than ", kMaxIncludeDirs));
  }
  for (const std::string& d : request.include_dirs()) {
    if (d.size() > 4096) return Bad("include_dirs: a path over 4096 bytes");
  }
  if (request.group().size() > 256) return Bad("group: over 256 bytes");
  if (!(request.timeout_seconds() >= 0)) {
    return Bad("timeout_seconds: negative or not a number");
  }
  for (int i = 0; i < request.sources_size(); ++i) {
    const auto& src = request.sources(i);
    if (src.name().size() > 256) {
      return Bad(absl::StrCat("sources[", i, "].name: over 256 bytes"));
    }
    if (src.name_expressions_size() > 4096) {
      return Bad(absl::StrCat("sources[", i, "].name_expressions: too many"));
    }
    if (src.source().empty() || src.source().size() > kMaxSourceBytes) {
      return Bad(absl::StrCat("sources[", i, "].source: empty or over ",
                              kMaxSourceBytes, " bytes"));
    }
    if (!IsNvcc(request)) {  // NVCC: the compiler's own -MD list decides
      if (absl::Status st = CheckSourceIncludes(src.source()); !st.ok()) {
        return Bad(absl::StrCat("sources[", i, "]: ", st.message()));
      }
    }
    if (IsNvcc(request) && !src.name_expressions().empty()) {
      return Bad(
          absl::StrCat("sources[", i,
                       "].name_expressions: NVRTC only (with NVCC name "
                       "kernels by their mangled or extern \"C\" symbols)"));
    }
  }
  return absl::OkStatus();
}

// Resolved allowlist roots (those that exist).
std::vector<std::string> ResolvedRoots(const std::vector<std::string>& roots) {
  std::vector<std::string> out;
  for (const std::string& root : roots) {
    char buf[PATH_MAX];
    if (realpath(root.c_str(), buf) != nullptr) out.emplace_back(buf);
  }
  return out;
}

bool UnderAny(const std::string& resolved,
              const std::vector<std::string>& roots) {
  for (const std::string& r : roots) {
    if (r == "/" || resolved == r || absl::StartsWith(resolved, r + "/")) {
      return true;
    }
  }
  return false;
}

// FAILED_PRECONDITION when the sandbox user (neither owner nor group) cannot
// reach and list `dir`: nvcc would fail on it, and the client had better
// compile itself than get a compile error tpjit caused.
absl::Status CheckSandboxCanRead(const std::string& dir, int uid) {
  std::string path = dir;
  while (!path.empty()) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) break;
    const mode_t need = path == dir ? (S_IROTH | S_IXOTH) : S_IXOTH;
    if (static_cast<int>(st.st_uid) != uid && (st.st_mode & need) != need) {
      return absl::FailedPreconditionError(absl::StrCat(
          "include_dirs: \"", dir,
          "\" cannot be read by the compile sandbox's user (uid ", uid, "): \"",
          path,
          "\" is not world-readable; make it so, or run tpjitd with "
          "--sandbox-user=-"));
    }
    const size_t slash = path.rfind('/');
    path =
        slash == 0 || slash == std::string::npos ? "" : path.substr(0, slash);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ResolveIncludeDirs(
    const CompileRequest& request, const DaemonConfig& config) {
  std::vector<std::string> dirs;
  for (const std::string& dir : request.include_dirs()) {
    auto resolved = ResolveAllowedInclude(dir, config.include_allowlist);
    if (!resolved.ok()) return resolved.status();
    if (IsNvcc(request) && config.sandbox_uid >= 0 && geteuid() == 0) {
      TPJIT_RETURN_IF_ERROR(CheckSandboxCanRead(*resolved, config.sandbox_uid));
    }
    if (std::find(dirs.begin(), dirs.end(), *resolved) == dirs.end()) {
      dirs.push_back(*resolved);
    }
  }
  return dirs;
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

// The client's limit, clamped to the daemon's maxima (the one for every
// client wait, and the one for a compile).
double TaskTimeout(const CompileRequest& request, const DaemonConfig& config) {
  const double t = request.timeout_seconds() > 0
                       ? request.timeout_seconds()
                       : config.compile_timeout_seconds;
  return std::min({t, config.max_compile_timeout_seconds,
                   config.max_client_timeout_seconds});
}

std::shared_ptr<CompileTask> NewTask(const CompileRequest& request, int i,
                                     const DaemonConfig& config) {
  const auto& src = request.sources(i);
  auto task = std::make_shared<CompileTask>();
  auto& req = task->request;
  req.set_source_name(src.name().empty() ? absl::StrCat("source", i, ".cu")
                                         : src.name());
  req.set_source(src.source());
  req.set_arch(request.arch());
  task->label = req.source_name();
  task->timeout_seconds = TaskTimeout(request, config);
  return task;
}

absl::StatusOr<std::vector<std::shared_ptr<CompileTask>>> BuildNvrtcTasks(
    const CompileRequest& request, const DaemonConfig& config,
    const GenericToolchain& toolchain, const std::vector<std::string>& dirs,
    const std::vector<std::string>& options) {
  const std::vector<std::string> roots =
      ResolvedRoots(config.include_allowlist);
  std::vector<std::shared_ptr<CompileTask>> tasks;
  for (int i = 0; i < request.sources_size(); ++i) {
    const auto& src = request.sources(i);
    auto task = NewTask(request, i, config);
    auto& req = task->request;
    req.set_kind(tpjit::v1::WorkerRequest::NVRTC);
    HeaderCollector collector(dirs, roots);
    if (absl::Status s = collector.Collect(src.source(), "", 0); !s.ok()) {
      return Bad(absl::StrCat("sources[", i, "]: ", s.message()));
    }
    CanonicalEncoder enc;
    enc.Add("generic", int64_t{2})
        .Add("backend", "nvrtc")
        .Add("nvrtc", toolchain.nvrtc_version)
        .Add("salt", toolchain.salt)
        .Add("arch", request.arch())
        .Add("source", src.source());
    size_t bytes = src.source().size();
    for (const auto& [name, content] : collector.headers()) {
      auto* h = req.add_headers();
      h->set_name(name);
      h->set_content(content);
      enc.Add("header_name", name).Add("header", content);
      bytes += content.size();
    }
    req.add_options(absl::StrCat("-arch=", request.arch()));
    for (const auto& o : options) {
      req.add_options(o);
      enc.Add("option", o);
    }
    for (const auto& e : src.name_expressions()) {
      req.add_name_expressions(e);
      enc.Add("name_expression", e);
    }
    task->key = enc.Sha256();
    task->cost = 0.2 + static_cast<double>(bytes) / 1e6;
    tasks.push_back(std::move(task));
  }
  return tasks;
}

// The sandbox every NVCC compile runs in (docs/security.md).
tpjit::v1::Sandbox SandboxFor(const DaemonConfig& config) {
  tpjit::v1::Sandbox s;
  s.set_uid(config.sandbox_uid);
  s.set_gid(config.sandbox_gid);
  s.set_address_space_bytes(config.compile_memory_bytes);
  // Any one file (cubin, deps, temporaries): what the worker reads back.
  s.set_file_bytes(int64_t{256} << 20);
  s.set_open_files(4096);
  s.set_processes(config.sandbox_uid >= 0 ? 4096 : 0);
  s.set_new_network(true);
  return s;
}

// NVCC: the key covers the nvcc toolkit, arch, output kind, canonical
// options, the number of include directories (never their paths) and the
// source text. It does not cover the headers: a cached result records the
// hash of every file its compile read (nvcc -MD) and serves a request only
// when the request's own include directories still hold those contents
// (`accept_dependencies`). No preprocessing here, and none on a hit.
absl::StatusOr<std::vector<std::shared_ptr<CompileTask>>> BuildNvccTasks(
    const CompileRequest& request, const DaemonConfig& config,
    const GenericToolchain& toolchain, const std::vector<std::string>& dirs,
    const std::vector<std::string>& options) {
  std::string identity = toolchain.nvcc_version;
  if (identity.empty()) {
    auto id = NvccIdentity(config.nvcc);
    if (!id.ok()) return id.status();
    identity = *id;
  }
  const bool ptx = request.output() == tpjit::v1::PTX;
  auto roots = std::make_shared<DependencyRoots>();
  roots->include_dirs = dirs;
  roots->toolkit = ToolkitRootFor(config.nvcc);
  std::vector<std::shared_ptr<CompileTask>> tasks;
  for (int i = 0; i < request.sources_size(); ++i) {
    auto task = NewTask(request, i, config);
    auto& req = task->request;
    req.set_kind(tpjit::v1::WorkerRequest::NVCC);
    req.set_ptx(ptx);
    *req.mutable_sandbox() = SandboxFor(config);
    req.add_options(config.nvcc);
    for (const auto& o : options) req.add_options(o);
    for (const auto& d : dirs) req.add_include_dirs(d);
    req.set_timeout_seconds(WorkerTimeLimit(task->timeout_seconds));
    CanonicalEncoder enc;
    enc.Add("generic", int64_t{3})
        .Add("backend", "nvcc")
        .Add("nvcc", identity)
        .Add("salt", toolchain.salt)
        .Add("arch", request.arch())
        .Add("output", ptx ? "ptx" : "cubin")
        .Add("include_dirs", static_cast<int64_t>(dirs.size()))
        .Add("source", request.sources(i).source());
    for (const auto& o : options) enc.Add("option", o);
    task->key = enc.Sha256();
    task->cost = 4.0;
    task->accept_dependencies = [roots](const std::vector<std::string>& deps) {
      return FileHasher::Global().Matches(deps, *roots);
    };
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace

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

absl::StatusOr<std::vector<std::shared_ptr<CompileTask>>> BuildGenericTasks(
    const CompileRequest& request, const DaemonConfig& config,
    const GenericToolchain& toolchain) {
  if (absl::Status s = ValidateRequest(request); !s.ok()) return s;
  auto options = ParseCompileOptions(
      {request.options().begin(), request.options().end()},
      IsNvcc(request) ? CompilerKind::kNvcc : CompilerKind::kNvrtc);
  if (!options.ok()) return options.status();
  auto dirs = ResolveIncludeDirs(request, config);
  if (!dirs.ok()) return dirs.status();
  if (IsNvcc(request)) {
    return BuildNvccTasks(request, config, toolchain, *dirs, *options);
  }
  return BuildNvrtcTasks(request, config, toolchain, *dirs, *options);
}

double WorkerTimeLimit(double task_seconds) {
  const double margin = std::clamp(0.1 * task_seconds, 0.5, 5.0);
  return std::max(0.1, task_seconds - margin);
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
