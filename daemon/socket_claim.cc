#include "daemon/socket_claim.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace tpjit {
namespace {

std::string ReadSmall(int fd) {
  char buf[64] = {0};
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  return n > 0 ? std::string(absl::StripAsciiWhitespace(buf)) : "";
}

absl::Status Busy(const std::string& path, const std::string& who) {
  return absl::FailedPreconditionError(absl::StrCat(
      "another tpjitd", who.empty() ? "" : absl::StrCat(" (pid ", who, ")"),
      " is serving on ", path,
      "; stop it first, or give this one another --socket"));
}

// True if a process accepts connections on the Unix socket `path`; its pid
// (SO_PEERCRED) in `*pid`.
bool Listening(const std::string& path, std::string* pid) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool live =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (live && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
    *pid = absl::StrCat(cred.pid);
  }
  close(fd);
  return live;
}

// With the lock held: removes a stale socket file at `path`.
absl::Status ClearStale(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::ErrnoToStatus(errno, absl::StrCat("--socket: stat ", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--socket: ", path, " exists and is not a socket; remove it"));
  }
  std::string pid;
  if (Listening(path, &pid)) return Busy(path, pid);
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("--socket: cannot remove ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SocketClaim>> SocketClaim::Take(
    const std::string& path) {
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--socket: ", path, " is too long for a Unix socket"));
  }
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(),
                                      ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--socket: cannot create the folder of ", path, ": ", ec.message()));
  }
  const std::string lock_path = path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::ErrnoToStatus(errno,
                               absl::StrCat("--socket: open ", lock_path));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    absl::Status busy = Busy(path, ReadSmall(fd));
    close(fd);
    return busy;
  }
  std::unique_ptr<SocketClaim> claim(new SocketClaim(fd));
  const std::string pid = absl::StrCat(getpid(), "\n");
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid only makes the refusal message better.
  }
  if (absl::Status s = ClearStale(path); !s.ok()) return s;
  return claim;
}

SocketClaim::~SocketClaim() {
  if (lock_fd_ >= 0) close(lock_fd_);  // drops the flock
}

}  // namespace tpjit
