// SocketClaim: at most one tpjitd per Unix socket path. A daemon takes the
// claim before it starts anything; a second daemon on the same path refuses
// to start instead of removing the first one's socket.
//
// The claim is an exclusive flock(2) on "<socket>.lock", which holds this
// process's pid; the kernel drops it when the process dies, even by kill -9.
// With the lock held, a socket file at the path that nobody accepts on is
// stale and removed; one that a process (a daemon that predates the lock
// file) accepts on is left alone and the claim refused.
//
// Thread-compatible; the claim lasts until the object is destroyed (the lock
// file stays: removing it would let two daemons lock two different files).
#ifndef TPJIT_DAEMON_SOCKET_CLAIM_H_
#define TPJIT_DAEMON_SOCKET_CLAIM_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace tpjit {

class SocketClaim {
 public:
  // Creates the socket's folder if needed and claims `path`.
  // FAILED_PRECONDITION naming the live daemon (pid, path) and what to do
  // when another process holds the claim or serves on `path`, or when
  // `path` exists and is not a socket; other codes for I/O errors.
  static absl::StatusOr<std::unique_ptr<SocketClaim>> Take(
      const std::string& path);
  ~SocketClaim();
  SocketClaim(const SocketClaim&) = delete;
  SocketClaim& operator=(const SocketClaim&) = delete;

 private:
  explicit SocketClaim(int lock_fd) : lock_fd_(lock_fd) {}
  int lock_fd_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SOCKET_CLAIM_H_
