#include "daemon/nvcc.h"

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
#include "src/common/status_macros.h"
#include "src/compile/compile_options.h"
#include "src/compile/nvcc_deps.h"

extern char** environ;

namespace tpjit {
namespace {

constexpr size_t kMaxOutputBytes = 1 << 20;

double CpuSeconds(const rusage& ru) {
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

std::string ReadTail(const std::string& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  if (text.size() > max_bytes) text = text.substr(text.size() - max_bytes);
  return text;
}

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

// The whole environment of a child: nothing of ours leaks into it.
std::vector<std::string> ChildEnvironment(const std::string& tmpdir,
                                          const SandboxSpec& sandbox) {
  return {absl::StrCat("PATH=", sandbox.path), absl::StrCat("HOME=", tmpdir),
          absl::StrCat("TMPDIR=", tmpdir), "LC_ALL=C"};
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Waits for `pid` until `deadline`; kills its group at the deadline.
void WaitOrKill(pid_t pid, absl::Time deadline, CommandResult* result) {
  absl::Duration pause = absl::Milliseconds(1);
  int status = 0;
  rusage ru{};
  for (;;) {
    pid_t r = wait4(pid, &status, WNOHANG, &ru);
    if (r == pid || (r < 0 && errno != EINTR)) break;
    if (absl::Now() >= deadline) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {
      }
      result->timed_out = true;
      break;
    }
    absl::SleepFor(std::min(pause, deadline - absl::Now()));
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
  kill(-pid, SIGKILL);  // stragglers of the group; ESRCH when none
  result->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result->cpu_seconds = CpuSeconds(ru);
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
  auto run = RunCommand(argv, dir->path(), input.timeout_seconds, sandbox);
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

namespace {}  // namespace

absl::StatusOr<ScopedTempDir> ScopedTempDir::Create(absl::string_view prefix) {
  const char* base = getenv("TMPDIR");
  std::string templ = absl::StrCat(base != nullptr && *base ? base : "/tmp",
                                   "/", prefix, "XXXXXX");
  if (mkdtemp(templ.data()) == nullptr) {
    return absl::InternalError(
        absl::StrCat("mkdtemp ", templ, ": ", strerror(errno)));
  }
  return ScopedTempDir(std::move(templ));
}

ScopedTempDir::ScopedTempDir(ScopedTempDir&& other) noexcept
    : path_(std::move(other.path_)) {
  other.path_.clear();
}

ScopedTempDir& ScopedTempDir::operator=(ScopedTempDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

ScopedTempDir::~ScopedTempDir() { Remove(); }

void ScopedTempDir::Remove() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
  path_.clear();
}

namespace {

// In the child, before execve: only async-signal-safe calls. Returns false
// when a required step fails (the child then exits 124).
bool EnterSandbox(const SandboxSpec& s) {
  if (s.new_network) {
    // An empty network namespace; refused without CAP_SYS_ADMIN, then tried
    // inside a new user namespace (where the kernel allows unprivileged ones).
    if (unshare(CLONE_NEWNET) != 0 && s.uid < 0) {
      unshare(CLONE_NEWUSER | CLONE_NEWNET);
    }
  }
  auto limit = [](int resource, int64_t value) {
    if (value <= 0) return true;
    rlimit rl{static_cast<rlim_t>(value), static_cast<rlim_t>(value)};
    return setrlimit(resource, &rl) == 0;
  };
  if (!limit(RLIMIT_AS, s.address_space_bytes) ||
      !limit(RLIMIT_FSIZE, s.file_bytes) ||
      !limit(RLIMIT_NOFILE, s.open_files) ||
      !limit(RLIMIT_CPU, s.cpu_seconds) || !limit(RLIMIT_CORE, 0)) {
    return false;
  }
  if (s.uid >= 0 && geteuid() == 0) {
    if (setgroups(0, nullptr) != 0 || setgid(s.gid) != 0 ||
        setuid(s.uid) != 0) {
      return false;
    }
  }
  // RLIMIT_NPROC counts the processes of the (new) real user.
  if (!limit(RLIMIT_NPROC, s.processes)) return false;
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

}  // namespace

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& dir,
                                         double timeout_seconds,
                                         const SandboxSpec& sandbox) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError("RunCommand: argv[0] must be absolute");
  }
  const std::string log_path = dir + "/.tpjit-command.log";
  std::vector<std::string> args = argv;
  std::vector<std::string> env = ChildEnvironment(dir, sandbox);
  std::vector<char*> argp = Pointers(args);
  std::vector<char*> envp = Pointers(env);
  int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    if (log_fd >= 0) close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(
        absl::StrCat("open ", log_path, ": ", strerror(errno)));
  }
  const absl::Time start = absl::Now();
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {  // only async-signal-safe calls until execve
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    dup2(null_fd, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    if (!EnterSandbox(sandbox)) _exit(124);
    if (chdir(dir.c_str()) != 0) _exit(126);
    execve(argp[0], argp.data(), envp.data());
    _exit(127);
  }
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  setpgid(pid, pid);  // also from here, so the group exists before a kill
  CommandResult result;
  WaitOrKill(pid, start + absl::Seconds(timeout_seconds), &result);
  result.wall_seconds = absl::ToDoubleSeconds(absl::Now() - start);
  result.output = ReadTail(log_path, kMaxOutputBytes);
  if (result.exit_code == 127 && result.output.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot run ", argv[0]));
  }
  if (result.exit_code == 124 && result.output.empty()) {
    return absl::InternalError(
        absl::StrCat("cannot enter the sandbox to run ", argv[0]));
  }
  return result;
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
