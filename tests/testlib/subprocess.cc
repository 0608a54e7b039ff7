#include "tests/testlib/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "src/common/process_table.h"

extern char** environ;

namespace tpjit::testing {

absl::StatusOr<Subprocess> Subprocess::Spawn(
    const std::vector<std::string>& argv, const std::string& stdout_path,
    const std::string& stderr_path) {
  if (argv.empty()) return absl::InvalidArgumentError("Spawn: empty argv");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (stderr_path.empty() || stderr_path == stdout_path) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
  }
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  // Its own process group, so the destructor ends what it started too.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  Subprocess p;
  p.started_ = absl::Now();
  const int rc =
      posix_spawn(&p.pid_, args[0], &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    p.pid_ = -1;
    return absl::InternalError(absl::StrCat("posix_spawn ", argv[0], ": ", rc));
  }
  return p;
}

Subprocess::Subprocess(Subprocess&& other) noexcept {
  *this = std::move(other);
}

Subprocess& Subprocess::operator=(Subprocess&& other) noexcept {
  std::swap(pid_, other.pid_);
  std::swap(code_, other.code_);
  std::swap(started_, other.started_);
  std::swap(exited_, other.exited_);
  return *this;
}

Subprocess::~Subprocess() {
  if (pid_ <= 0) return;
  ::kill(-pid_, SIGKILL);  // what it started; ESRCH when none is left
  if (!code_.has_value()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::optional<int> Subprocess::Poll() {
  if (code_.has_value() || pid_ <= 0) return code_;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) != pid_) return std::nullopt;
  exited_ = absl::Now();
  code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return code_;
}

std::optional<int> Subprocess::Wait(absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  absl::Duration pause = absl::Milliseconds(1);
  while (!Poll().has_value() && absl::Now() < end) {
    absl::SleepFor(std::min(pause, end - absl::Now()));
    pause = std::min(pause * 2, absl::Milliseconds(20));
  }
  return code_;
}

int Subprocess::WaitForever() {
  if (code_.has_value() || pid_ <= 0) return code_.value_or(-1);
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exited_ = absl::Now();
  code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return *code_;
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !code_.has_value()) ::kill(pid_, sig);
}

int RunToCompletion(const std::vector<std::string>& argv,
                    const std::string& stdout_path,
                    const std::string& stderr_path, absl::Duration timeout) {
  auto p = Subprocess::Spawn(argv, stdout_path, stderr_path);
  if (!p.ok()) return -1;
  std::optional<int> code = p->Wait(timeout);
  return code.value_or(-1);  // still running: killed by the destructor
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

char ProcessState(pid_t pid) {
  auto stat =
      ParseProcStat(ReadWholeFile(absl::StrCat("/proc/", pid, "/stat")));
  return stat.ok() ? stat->state : 0;
}

bool Running(pid_t pid) {
  const char state = ProcessState(pid);
  return state != 0 && state != 'Z';
}

}  // namespace tpjit::testing
