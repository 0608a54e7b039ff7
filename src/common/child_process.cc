#include "src/common/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

extern char** environ;

namespace tpjit {
namespace {

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads exactly n bytes, waiting at most until `deadline` (InfiniteFuture for
// no limit). Returns 1 ok, 0 EOF/error, -1 time-out.
int ReadAll(int fd, char* data, size_t n, absl::Time deadline) {
  while (n > 0) {
    if (deadline != absl::InfiniteFuture()) {
      int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (ms <= 0) return -1;
      pollfd p{fd, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) return -1;
      if (r < 0) return 0;
    }
    ssize_t got = read(fd, data, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return 0;
    data += got;
    n -= static_cast<size_t>(got);
  }
  return 1;
}

// The largest frame either side accepts: a request's sources and headers,
// or a response's cubin (at most 256 MiB, the sandbox's file limit) and log.
constexpr uint32_t kMaxFrameBytes = uint32_t{1} << 30;

// How long a worker whose pipes closed is given to become reapable.
constexpr absl::Duration kExitWait = absl::Seconds(1);

// As ReadAll, and -2 when the length prefix is beyond kMaxFrameBytes (not a
// frame of ours: garbage).
int ReadFrameUntil(int fd, std::string* bytes, absl::Time deadline) {
  unsigned char len[4];
  int r = ReadAll(fd, reinterpret_cast<char*>(len), 4, deadline);
  if (r != 1) return r;
  uint32_t n = len[0] | (len[1] << 8) | (len[2] << 16) |
               (static_cast<uint32_t>(len[3]) << 24);
  if (n > kMaxFrameBytes) return -2;
  bytes->resize(n);
  return n == 0 ? 1 : ReadAll(fd, bytes->data(), n, deadline);
}

// SIGKILLs `pid` and the process groups its children lead. A worker's
// compiler is such a leader (RunCommand); the compiler dies with the worker
// (its parent-death signal), but the compiler's own children (cicc, ptxas)
// would not.
void KillWithItsCompiles(pid_t pid) {
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator(
           absl::StrCat("/proc/", pid, "/task"), ec)) {
    std::ifstream in(task.path() / "children");
    for (pid_t child; in >> child;) {
      if (getpgid(child) == child) kill(-child, SIGKILL);
    }
  }
  kill(pid, SIGKILL);
}

class PipeChild final : public ChildProcess {
 public:
  PipeChild(pid_t pid, int to_child, int from_child)
      : pid_(pid), to_child_(to_child), from_child_(from_child) {}
  ~PipeChild() override { Kill(); }

  absl::StatusOr<tpjit::v1::WorkerResponse> Call(
      const tpjit::v1::WorkerRequest& request, absl::Time deadline) override {
    if (pid_.load() <= 0) {
      return absl::UnavailableError("worker is not running");
    }
    // Each call's id, appended to the request (a later field's value
    // replaces an earlier one's when parsed); the worker echoes it.
    const int64_t id = next_id_.fetch_add(1) + 1;
    tpjit::v1::WorkerRequest tail;
    tail.set_id(id);
    if (!WriteFrame(to_child_,
                    request.SerializeAsString() + tail.SerializeAsString())) {
      // Mostly the worker died before the request went out: its exit closed
      // both pipes. Its output then ends too, and the exit says how it died.
      std::string ignored;
      if (ReadFrameUntil(from_child_, &ignored,
                         std::min(deadline, absl::Now() + kExitWait)) == 0) {
        return Died();
      }
      return absl::UnavailableError(
          absl::StrCat("worker pid ", pid(), " closed its input"));
    }
    for (;;) {
      std::string bytes;
      int r = ReadFrameUntil(from_child_, &bytes, deadline);
      if (r == -1) {
        return absl::DeadlineExceededError(
            absl::StrCat("worker pid ", pid(), " exceeded its time limit"));
      }
      tpjit::v1::WorkerResponse response;
      if (r == -2 || (r == 1 && !response.ParseFromString(bytes))) {
        return absl::UnavailableError(absl::StrCat(
            "worker pid ", pid(), " answered garbage (not a worker response)"));
      }
      if (r == 0) return Died();
      if (response.id() == id) return response;
      if (response.id() <= 0 || response.id() > id) {
        return absl::UnavailableError(
            absl::StrCat("worker pid ", pid(), " answered request ",
                         response.id(), " to request ", id));
      }
      // The late answer of an earlier call that ended without it (its time
      // limit passed): not this call's; read on.
    }
  }

  void Kill() override {
    if (const pid_t pid = pid_.load(); pid > 0) {
      absl::MutexLock lock(&reap_mu_);  // no Interrupt() after the reap
      KillWithItsCompiles(pid);
      waitpid(pid, &wait_status_, 0);
      pid_.store(-pid);
    }
    if (to_child_ >= 0) close(to_child_);
    if (from_child_ >= 0) close(from_child_);
    to_child_ = from_child_ = -1;
  }

  void Interrupt() override {
    // Never reaped here, and never after the owner reaped it (reap_mu_):
    // the pid cannot belong to another process.
    absl::MutexLock lock(&reap_mu_);
    if (const pid_t pid = pid_.load(); pid > 0) KillWithItsCompiles(pid);
  }

  int pid() const override { return pid_.load(); }

 private:
  // UNAVAILABLE naming how the worker ended (the pid before it was reaped:
  // ExitDescription() negates pid_).
  absl::Status Died() {
    const pid_t pid = pid_.load();
    const std::string how = ExitDescription();
    return absl::UnavailableError(
        absl::StrCat("worker pid ", pid, " died (", how, ")"));
  }

  // Called once the worker's pipes closed. Its exit closes them just before
  // it can be reaped, so this waits up to kExitWait for the exit status.
  std::string ExitDescription() {
    const absl::Time until = absl::Now() + kExitWait;
    for (bool reaped = false; !reaped && absl::Now() < until;) {
      {
        absl::MutexLock lock(&reap_mu_);
        int status = 0;
        const pid_t pid = pid_.load();
        if (pid <= 0) break;
        if (waitpid(pid, &status, WNOHANG) == pid) {
          pid_.store(-pid);
          wait_status_ = status;
          reaped = true;
        }
      }
      if (!reaped) absl::SleepFor(absl::Milliseconds(1));
    }
    if (pid_.load() > 0) return "still running, pipe closed";
    if (WIFSIGNALED(wait_status_)) {
      return absl::StrCat("killed by signal ", WTERMSIG(wait_status_));
    }
    return absl::StrCat("exit code ", WEXITSTATUS(wait_status_));
  }

  // Negated once reaped; written by the owner thread only.
  std::atomic<pid_t> pid_;
  std::atomic<int64_t> next_id_{0};
  absl::Mutex reap_mu_;
  int to_child_;
  int from_child_;
  int wait_status_ = 0;
};

class RealLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>& argv,
      const std::vector<std::string>& env) override {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
      return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    std::vector<char*> args, envp;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_all;
    for (char** e = environ; *e != nullptr; ++e) env_all.push_back(*e);
    env_all.insert(env_all.end(), env.begin(), env.end());
    for (auto& e : env_all) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(),
                         envp.data());
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc != 0) {
      close(in[1]);
      close(out[0]);
      return absl::InternalError(
          absl::StrCat("cannot start ", argv[0], ": ", strerror(rc)));
    }
    return std::unique_ptr<ChildProcess>(new PipeChild(pid, in[1], out[0]));
  }
};

}  // namespace

bool WriteFrame(int fd, const std::string& bytes) {
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  unsigned char len[4] = {
      static_cast<unsigned char>(n), static_cast<unsigned char>(n >> 8),
      static_cast<unsigned char>(n >> 16), static_cast<unsigned char>(n >> 24)};
  return WriteAll(fd, reinterpret_cast<char*>(len), 4) &&
         WriteAll(fd, bytes.data(), bytes.size());
}

bool ReadFrame(int fd, std::string* bytes) {
  return ReadFrameUntil(fd, bytes, absl::InfiniteFuture()) == 1;
}

absl::StatusOr<CommandResult> ProcessLauncher::Run(
    const std::vector<std::string>& argv, const std::string& dir,
    double timeout_seconds, const SandboxSpec& sandbox) {
  return RunCommand(argv, dir, timeout_seconds, sandbox);
}

void KillChildProcesses() {
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(task.path() / "children");
    for (int pid; in >> pid;) KillWithItsCompiles(pid);
  }
}

ProcessLauncher* ProcessLauncher::Real() {
  static ProcessLauncher* launcher = new RealLauncher();
  return launcher;
}

}  // namespace tpjit
