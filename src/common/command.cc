#include "src/common/command.h"

#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

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

// Closes every descriptor from 3 up. In the child, before execve: only
// system calls (close_range, else getrlimit and close).
bool CloseFromThree() {
  if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return true;
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return false;
  const rlim_t end = rl.rlim_cur == RLIM_INFINITY ? 1 << 20 : rl.rlim_cur;
  for (rlim_t fd = 3; fd < end; ++fd) close(static_cast<int>(fd));
  return true;
}

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
    // Nothing of the caller's beyond 0-2 (a worker's pipe to the daemon, say)
    // reaches the command, close-on-exec or not.
    if (!CloseFromThree()) _exit(124);
    if (!EnterSandbox(sandbox)) _exit(124);
    // A change of user clears the parent-death signal: set it again, or a
    // sandboxed compiler would outlive a killed worker.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
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

}  // namespace tpjit
