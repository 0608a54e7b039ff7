#include "daemon/nvcc.h"

#include <fcntl.h>
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

extern char** environ;

namespace tpjit {
namespace {

constexpr size_t kMaxOutputBytes = 1 << 20;

absl::Status Refuse(absl::string_view option, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("options: \"", option, "\" is not allowed (", why, ")"));
}

// Options (the part before '=') refused for NVCC, with the reason.
const std::map<std::string, std::string>& NvccDenied() {
  static const auto* kDenied = new std::map<std::string, std::string>([] {
    std::map<std::string, std::string> m;
    auto add = [&m](std::initializer_list<const char*> names, const char* why) {
      for (const char* n : names) m[n] = why;
    };
    add({"--output-file", "--output-directory", "-E", "--preprocess",
         "--generate-dependencies", "--generate-nonsystem-dependencies",
         "--generate-dependencies-with-compile",
         "--generate-nonsystem-dependencies-with-compile",
         "--dependency-output", "-keep", "--keep", "-keep-dir", "--keep-dir",
         "-save-temps", "--save-temps", "-time", "--time",
         "-fdevice-time-trace", "--fdevice-time-trace"},
        "it writes files");
    add({"-run", "--run", "-run-args", "--run-args", "-ccbin",
         "--compiler-bindir", "-dryrun", "--dryrun", "-use-local-env",
         "--use-local-env"},
        "it runs programs");
    add({"--options-file", "--library-path", "--library",
         "--libdevice-directory"},
        "it reads files");
    add({"--include-path", "-isystem", "--system-include", "-include",
         "--pre-include", "-idirafter", "-iquote"},
        "include directories only via include_dirs");
    add({"-arch", "--gpu-architecture", "-gencode", "--generate-code", "-code",
         "--gpu-code"},
        "the target comes from the request's arch");
    add({"-cubin",   "--cubin", "-ptx",      "--ptx",         "-fatbin",
         "--fatbin", "-c",      "--compile", "-lib",          "--lib",
         "-link",    "--link",  "-dlink",    "--device-link", "-dc",
         "-dw",      "-cuda",   "--cuda",    "-optix-ir",     "--optix-ir"},
        "the daemon chooses the compile mode");
    add({"--compiler-options", "--linker-options", "--nvlink-options",
         "--archive-options", "--fatbin-options"},
        "options for other tools are not passed on");
    return m;
  }());
  return *kDenied;
}

const std::map<std::string, std::string>& NvrtcDenied() {
  static const auto* kDenied = new std::map<std::string, std::string>{
      {"--include-path", "include directories only via include_dirs"},
      {"--pre-include", "include directories only via include_dirs"},
      {"-include", "include directories only via include_dirs"},
      {"-time", "it writes files"},
      {"--time", "it writes files"},
      {"-fdevice-time-trace", "it writes files"},
      {"--fdevice-time-trace", "it writes files"},
      {"-pch", "it writes files"},
      {"--pch", "it writes files"},
      {"-create-pch", "it writes files"},
      {"--create-pch", "it writes files"},
      {"-pch-dir", "it writes files"},
      {"--pch-dir", "it writes files"},
      {"-use-pch", "it reads files"},
      {"--use-pch", "it reads files"},
      {"-arch", "the target comes from the request's arch"},
      {"--gpu-architecture", "the target comes from the request's arch"},
  };
  return *kDenied;
}

bool PtxasValueAllowed(absl::string_view v) {
  static constexpr const char* kAllowed[] = {"-v",
                                             "--verbose",
                                             "-O0",
                                             "-O1",
                                             "-O2",
                                             "-O3",
                                             "--warn-on-spills",
                                             "-warn-spills",
                                             "--warn-on-local-memory-usage",
                                             "-warn-lmem-usage",
                                             "--warn-on-double-precision-use",
                                             "-warn-double-usage"};
  for (const char* a : kAllowed) {
    if (v == a) return true;
  }
  return absl::StartsWith(v, "--maxrregcount=") ||
         absl::StartsWith(v, "-maxrregcount=") ||
         absl::StartsWith(v, "--allow-expensive-optimizations=");
}

absl::Status CheckPrefixes(absl::string_view o, bool nvcc) {
  if (absl::StartsWith(o, "-I")) {
    return Refuse(o, "include directories only via include_dirs");
  }
  if (!nvcc) return absl::OkStatus();
  if (absl::StartsWith(o, "-o")) return Refuse(o, "it writes files");
  if (absl::StartsWith(o, "-M")) return Refuse(o, "it writes files");
  if (absl::StartsWith(o, "-L")) return Refuse(o, "it reads files");
  if (absl::StartsWith(o, "-l") && o != "-lineinfo" && o != "-lto") {
    return Refuse(o, "it reads files");
  }
  if (absl::StartsWith(o, "-Xptxas") ||
      absl::StartsWith(o, "--ptxas-options")) {
    size_t eq = o.find('=');
    if (eq == absl::string_view::npos) {
      return Refuse(o, "give ptxas options attached: -Xptxas=-v");
    }
    for (absl::string_view v : absl::StrSplit(o.substr(eq + 1), ',')) {
      if (!PtxasValueAllowed(v)) {
        return Refuse(o, absl::StrCat("ptxas option \"", v, "\" is refused"));
      }
    }
    return absl::OkStatus();
  }
  if (absl::StartsWith(o, "-X")) {
    return Refuse(o, "options for other tools are not passed on");
  }
  return absl::OkStatus();
}

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

// The environment of a child: ours with TMPDIR replaced.
std::vector<std::string> ChildEnvironment(const std::string& tmpdir) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (!absl::StartsWith(*e, "TMPDIR=")) env.emplace_back(*e);
  }
  env.push_back(absl::StrCat("TMPDIR=", tmpdir));
  return env;
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

absl::StatusOr<NvccOutput> RunNvcc(const NvccInput& input,
                                   absl::string_view mode,
                                   const std::string& out_name) {
  auto dir = ScopedTempDir::Create("tpjit-nvcc-");
  if (!dir.ok()) return dir.status();
  // The source by a relative name (nvcc runs in `dir`): its __FILE__ holds
  // no temp path.
  const std::string source_name = SafeSourceFileName(input.source_name);
  const std::string source_path = absl::StrCat(dir->path(), "/", source_name);
  const std::string out_path = absl::StrCat(dir->path(), "/", out_name);
  if (absl::Status s = WriteWhole(source_path, input.source); !s.ok()) return s;
  std::vector<std::string> argv = NvccArgv(input, mode);
  argv.insert(argv.end(), {"-o", out_name, source_name});
  auto run = RunCommand(argv, dir->path(), input.timeout_seconds);
  if (!run.ok()) return run.status();
  NvccOutput out;
  out.log = std::move(run->output);
  out.wall_seconds = run->wall_seconds;
  out.cpu_seconds = run->cpu_seconds;
  if (run->timed_out) {
    return absl::DeadlineExceededError(
        absl::StrCat("nvcc ", mode, " was killed at its time limit of ",
                     input.timeout_seconds, " s\n", out.log));
  }
  if (run->exit_code != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("nvcc ", mode, " failed (exit status ", run->exit_code,
                     ")\n", out.log));
  }
  auto data = ReadWhole(out_path);
  if (!data.ok()) return data.status();
  out.data = std::move(*data);
  return out;
}

}  // namespace

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

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         const std::string& dir,
                                         double timeout_seconds) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return absl::InvalidArgumentError("RunCommand: argv[0] must be absolute");
  }
  const std::string log_path = dir + "/.tpjit-command.log";
  std::vector<std::string> args = argv;
  std::vector<std::string> env = ChildEnvironment(dir);
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
  return result;
}

absl::Status ValidateCompileOptions(const std::vector<std::string>& options,
                                    bool nvcc) {
  const auto& denied = nvcc ? NvccDenied() : NvrtcDenied();
  for (const std::string& o : options) {
    if (o.find('\0') != std::string::npos ||
        o.find('\n') != std::string::npos) {
      return Refuse(absl::CEscape(o), "control characters");
    }
    if (o.size() < 2 || o[0] != '-') {
      return Refuse(o, "every option is one argument starting with '-'");
    }
    std::string name = o.substr(0, o.find('='));
    if (auto it = denied.find(name); it != denied.end()) {
      return Refuse(o, it->second);
    }
    if (absl::Status s = CheckPrefixes(o, nvcc); !s.ok()) return s;
  }
  return absl::OkStatus();
}

std::vector<std::string> NvccArgv(const NvccInput& input,
                                  absl::string_view mode) {
  std::vector<std::string> argv = {input.nvcc, std::string(mode),
                                   absl::StrCat("-arch=", input.arch)};
  argv.insert(argv.end(), input.options.begin(), input.options.end());
  for (const std::string& dir : input.include_dirs) {
    argv.push_back(absl::StrCat("-I", dir));
  }
  return argv;
}

absl::StatusOr<NvccOutput> NvccCompile(const NvccInput& input) {
  return RunNvcc(input, "-cubin", "out.cubin");
}

absl::StatusOr<NvccOutput> NvccPreprocessDigest(const NvccInput& input) {
  auto out = RunNvcc(input, "-E", "tu.ii");
  if (!out.ok()) return out.status();
  std::string tu = StripLineMarkers(out->data);
  // __FILE__ in a header expands to its include directory's absolute path.
  std::vector<std::pair<std::string, std::string>> dirs;
  for (size_t i = 0; i < input.include_dirs.size(); ++i) {
    dirs.emplace_back(input.include_dirs[i] + "/", absl::StrCat("$I", i, "/"));
  }
  tu = absl::StrReplaceAll(tu, dirs);
  out->tu_bytes = static_cast<int64_t>(tu.size());
  out->data = Sha256Hex(tu);
  return out;
}

std::string StripLineMarkers(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::string_view t = absl::StripLeadingAsciiWhitespace(line);
    if (absl::ConsumePrefix(&t, "#")) {
      t = absl::StripLeadingAsciiWhitespace(t);
      if (absl::StartsWith(t, "line") ||
          (!t.empty() && absl::ascii_isdigit(t[0]))) {
        continue;
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

absl::StatusOr<std::string> NvccVersion(const std::string& nvcc) {
  static auto* mu = new absl::Mutex();
  static auto* versions = new std::map<std::string, std::string>();
  absl::MutexLock lock(mu);
  if (auto it = versions->find(nvcc); it != versions->end()) return it->second;
  auto dir = ScopedTempDir::Create("tpjit-nvcc-");
  if (!dir.ok()) return dir.status();
  auto run = RunCommand({nvcc, "--version"}, dir->path(), 30);
  if (!run.ok() || run->exit_code != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nvcc (", nvcc, ") cannot be run: ",
        run.ok() ? run->output : std::string(run.status().message())));
  }
  std::vector<std::string> kept;
  for (absl::string_view line : absl::StrSplit(run->output, '\n')) {
    if (absl::StrContains(line, "release") || absl::StartsWith(line, "Build")) {
      kept.emplace_back(absl::StripAsciiWhitespace(line));
    }
  }
  if (kept.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("nvcc (", nvcc, ") printed no version"));
  }
  return (*versions)[nvcc] = absl::StrJoin(kept, "; ");
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
