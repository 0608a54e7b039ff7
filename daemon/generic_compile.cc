#include "daemon/generic_compile.h"

#include <limits.h>
#include <stdlib.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/digest.h"

namespace tpjit {
namespace {

using tpjit::v1::CompileRequest;

constexpr int kMaxSources = 4096;
constexpr size_t kMaxSourceBytes = 8 << 20;

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(what);
}

absl::Status ValidateArch(const std::string& arch) {
  if (!absl::StartsWith(arch, "sm_") || arch.size() < 5 || arch.size() > 7) {
    return Bad(absl::StrCat("arch: \"", arch, "\" is not like sm_90a"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ResolveAllowedInclude(
    const std::string& dir, const std::vector<std::string>& allowlist) {
  char buf[PATH_MAX];
  if (realpath(dir.c_str(), buf) == nullptr) {
    return Bad(absl::StrCat("include_dirs: \"", dir, "\" does not exist"));
  }
  std::string resolved = buf;
  for (const std::string& root : allowlist) {
    char rbuf[PATH_MAX];
    if (realpath(root.c_str(), rbuf) == nullptr) continue;
    std::string r = rbuf;
    if (resolved == r || absl::StartsWith(resolved, r + "/")) return resolved;
  }
  return Bad(absl::StrCat("include_dirs: \"", dir, "\" (resolved to \"",
                          resolved, "\") is outside the include allowlist"));
}

absl::StatusOr<std::vector<std::shared_ptr<CompileTask>>> BuildGenericTasks(
    const CompileRequest& request, const DaemonConfig& config,
    const GenericToolchain& toolchain) {
  if (request.sources().empty()) return Bad("sources: at least one is needed");
  if (request.sources_size() > kMaxSources) {
    return Bad(absl::StrCat("sources: more than ", kMaxSources));
  }
  if (request.backend() != tpjit::v1::NVRTC) {
    return absl::UnimplementedError("backend: only NVRTC is available");
  }
  if (auto s = ValidateArch(request.arch()); !s.ok()) return s;
  for (const std::string& dir : request.include_dirs()) {
    auto resolved = ResolveAllowedInclude(dir, config.include_allowlist);
    if (!resolved.ok()) return resolved.status();
  }
  if (!request.include_dirs().empty()) {
    return absl::UnimplementedError(
        "include_dirs: not supported by the NVRTC back end yet");
  }
  std::vector<std::shared_ptr<CompileTask>> tasks;
  for (int i = 0; i < request.sources_size(); ++i) {
    const auto& src = request.sources(i);
    if (src.source().empty() || src.source().size() > kMaxSourceBytes) {
      return Bad(absl::StrCat("sources[", i, "].source: empty or over ",
                              kMaxSourceBytes, " bytes"));
    }
    auto task = std::make_shared<CompileTask>();
    auto& req = task->request;
    req.set_kind(tpjit::v1::WorkerRequest::NVRTC);
    req.set_source_name(src.name().empty() ? absl::StrCat("source", i, ".cu")
                                           : src.name());
    req.set_source(src.source());
    req.set_arch(request.arch());
    CanonicalEncoder enc;
    enc.Add("generic", int64_t{1})
        .Add("backend", "nvrtc")
        .Add("nvrtc", toolchain.nvrtc_version)
        .Add("salt", toolchain.salt)
        .Add("arch", request.arch())
        .Add("source", src.source());
    req.add_options(absl::StrCat("-arch=", request.arch()));
    for (const auto& o : request.options()) {
      req.add_options(o);
      enc.Add("option", o);
    }
    for (const auto& e : src.name_expressions()) {
      req.add_name_expressions(e);
      enc.Add("name_expression", e);
    }
    task->key = enc.Sha256();
    task->label = req.source_name();
    task->timeout_seconds = request.timeout_seconds() > 0
                                ? request.timeout_seconds()
                                : config.compile_timeout_seconds;
    tasks.push_back(std::move(task));
  }
  return tasks;
}

}  // namespace tpjit
