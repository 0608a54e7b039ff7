#include "src/compile/nvcc.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "src/common/digest.h"
#include "src/common/scoped_temp_dir.h"
#include "src/common/status_macros.h"
#include "src/compile/compile_options.h"
#include "src/compile/nvcc_deps.h"

namespace tpjit {
namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InternalError(absl::StrCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

absl::Status WriteWhole(const std::string& path, absl::string_view data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

// Labels and hashes of what the compile read; the source itself excluded.
absl::StatusOr<std::vector<std::string>> HashDependencies(
    const std::vector<std::string>& paths, const std::string& dir,
    const std::string& source_name, const DependencyRoots& roots) {
  std::set<std::string> out;
  const std::string source_path = absl::StrCat(dir, "/", source_name);
  for (const std::string& p : paths) {
    const std::string abs =
        p[0] == '/' ? NormalizePath(p) : NormalizePath(dir + "/" + p);
    if (abs == source_path) continue;
    absl::StatusOr<std::string> label = LabelDependency(abs, dir, roots);
    if (!label.ok()) return label.status();
    absl::StatusOr<std::string> sha = FileHasher::Global().Hash(abs);
    if (!sha.ok()) return sha.status();
    out.insert(absl::StrCat(*label, "\t", *sha));
  }
  return std::vector<std::string>(out.begin(), out.end());
}

// Lets the sandbox user write `dir` (when the sandbox switches users).
absl::Status HandOver(const std::string& dir, const SandboxSpec& sandbox) {
  if (sandbox.uid < 0 || geteuid() != 0) return absl::OkStatus();
  if (chown(dir.c_str(), sandbox.uid, sandbox.gid) != 0) {
    return absl::InternalError(
        absl::StrCat("chown ", dir, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<NvccOutput> NvccCompile(const NvccInput& input) {
  auto dir = ScopedTempDir::Create("tpjit-nvcc-");
  if (!dir.ok()) return dir.status();
  TPJIT_RETURN_IF_ERROR(HandOver(dir->path(), input.sandbox));
  // The source by a relative name (nvcc runs in `dir`): its __FILE__ holds
  // no temp path.
  const std::string source_name = SafeSourceFileName(input.source_name);
  const std::string out_name = input.ptx ? "out.ptx" : "out.cubin";
  TPJIT_RETURN_IF_ERROR(
      WriteWhole(absl::StrCat(dir->path(), "/", source_name), input.source));
  std::vector<std::string> argv = NvccArgv(input);
  argv.insert(argv.end(),
              {"-MD", "-MF", "deps.d", "-o", out_name, source_name});
  SandboxSpec sandbox = input.sandbox;
  sandbox.cpu_seconds = static_cast<int64_t>(input.timeout_seconds) + 5;
  ProcessLauncher* launcher =
      input.launcher != nullptr ? input.launcher : ProcessLauncher::Real();
  auto run = launcher->Run(argv, dir->path(), input.timeout_seconds, sandbox);
  if (!run.ok()) return run.status();
  DependencyRoots roots;
  roots.include_dirs = input.include_dirs;
  roots.toolkit = ToolkitRootFor(input.nvcc);
  // Nothing nvcc printed leaves before every file it read is known allowed.
  auto deps_text = ReadWhole(absl::StrCat(dir->path(), "/deps.d"));
  NvccOutput out;
  if (deps_text.ok()) {
    auto deps = HashDependencies(ParseDependencyFile(*deps_text), dir->path(),
                                 source_name, roots);
    if (!deps.ok()) return deps.status();
    out.dependencies = std::move(*deps);
  } else if (run->exit_code == 0) {
    return absl::InternalError("nvcc wrote no dependency file");
  }
  out.log = FilterCompilerLog(run->output, source_name, dir->path(), roots);
  out.wall_seconds = run->wall_seconds;
  out.cpu_seconds = run->cpu_seconds;
  out.exit_code = run->exit_code;
  if (run->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("nvcc was killed at its time limit of ",
                     input.timeout_seconds, " s\n", out.log));
  }
  if (run->exit_code != 0) {
    if (out.exit_code < 0) out.exit_code = 1;  // killed by a signal (limits)
    return out;
  }
  auto data = ReadWhole(absl::StrCat(dir->path(), "/", out_name));
  if (!data.ok()) return data.status();
  out.data = std::move(*data);
  return out;
}

absl::Status ValidateCompileOptions(const std::vector<std::string>& options,
                                    bool nvcc) {
  return ParseCompileOptions(options,
                             nvcc ? CompilerKind::kNvcc : CompilerKind::kNvrtc)
      .status();
}

std::vector<std::string> NvccArgv(const NvccInput& input) {
  std::vector<std::string> argv = {input.nvcc, input.ptx ? "-ptx" : "-cubin",
                                   absl::StrCat("-arch=", input.arch)};
  argv.insert(argv.end(), input.options.begin(), input.options.end());
  for (const std::string& dir : input.include_dirs) {
    argv.push_back(absl::StrCat("-I", dir));
  }
  return argv;
}

absl::StatusOr<std::string> NvccIdentity(const std::string& nvcc) {
  static auto* mu = new absl::Mutex();
  static auto* ids = new std::map<std::string, std::string>();
  absl::MutexLock lock(mu);
  if (auto it = ids->find(nvcc); it != ids->end()) return it->second;
  if (nvcc.empty() || nvcc[0] != '/' || access(nvcc.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("nvcc (", nvcc, ") is not an executable file (--nvcc)"));
  }
  auto version = ReadWhole(ToolkitRootFor(nvcc) + "/version.json");
  if (!version.ok()) version = ReadWhole(nvcc);
  if (!version.ok()) return version.status();
  return (*ids)[nvcc] = Sha256Hex(*version);
}

std::string SafeSourceFileName(absl::string_view name) {
  size_t slash = name.rfind('/');
  if (slash != absl::string_view::npos) name = name.substr(slash + 1);
  std::string out;
  for (char c : name) {
    bool ok = absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  while (!out.empty() && out[0] == '.') out.erase(0, 1);
  if (out.empty()) out = "source";
  if (!absl::EndsWith(out, ".cu")) out += ".cu";
  return out;
}

}  // namespace tpjit
