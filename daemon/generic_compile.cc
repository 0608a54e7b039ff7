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
#include "src/common/digest.h"
#include "src/common/request_limits.h"
#include "src/common/status_macros.h"
#include "src/compile/compile_options.h"
#include "src/compile/generic_source.h"
#include "src/compile/nvcc.h"
#include "src/compile/nvcc_deps.h"

namespace tpjit {
namespace {

using tpjit::v1::CompileRequest;

constexpr int kMaxSources = 4096;
constexpr size_t kMaxSourceBytes = 8 << 20;
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
  // Names reach log lines and recipe files: printable ASCII, bounded.
  if (absl::Status s = CheckName("group", request.group()); !s.ok()) return s;
  if (!(request.timeout_seconds() >= 0)) {
    return Bad("timeout_seconds: negative or not a number");
  }
  for (int i = 0; i < request.sources_size(); ++i) {
    const auto& src = request.sources(i);
    if (absl::Status s =
            CheckName(absl::StrCat("sources[", i, "].name"), src.name());
        !s.ok()) {
      return s;
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
    auto headers = CollectHeaders(src.source(), dirs, roots);
    if (!headers.ok()) {
      return Bad(
          absl::StrCat("sources[", i, "]: ", headers.status().message()));
    }
    size_t bytes = src.source().size();
    for (const auto& [name, content] : *headers) {
      auto* h = req.add_headers();
      h->set_name(name);
      h->set_content(content);
      bytes += content.size();
    }
    req.add_options(absl::StrCat("-arch=", request.arch()));
    for (const auto& o : options) req.add_options(o);
    for (const auto& e : src.name_expressions()) req.add_name_expressions(e);
    task->key =
        GenericNvrtcKey({.nvrtc_version = toolchain.nvrtc_version,
                         .salt = toolchain.salt,
                         .arch = request.arch(),
                         .source = src.source(),
                         .headers = &*headers,
                         .options = options,
                         .name_expressions = {src.name_expressions().begin(),
                                              src.name_expressions().end()}});
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
    task->key =
        GenericNvccKey({.nvcc_identity = identity,
                        .salt = toolchain.salt,
                        .arch = request.arch(),
                        .ptx = ptx,
                        .include_dirs = static_cast<int64_t>(dirs.size()),
                        .source = request.sources(i).source(),
                        .options = options});
    task->cost = 4.0;
    task->accept_dependencies = [roots](const std::vector<std::string>& deps) {
      return FileHasher::Global().Matches(deps, *roots);
    };
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace

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

}  // namespace tpjit
