#include "client/nvcc/output_file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace tpjit {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " ", path, ": ", strerror(errno)));
}

// A temp file that is unlinked when dropped, unless committed.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (fd_ >= 0) close(fd_);
    if (created_ && !committed_) unlink(path_.c_str());
  }

  absl::Status Open() {
    fd_ = mkstemp(path_.data());
    if (fd_ < 0) return Errno("create", path_);
    created_ = true;
    return absl::OkStatus();
  }

  absl::Status Write(absl::string_view data) {
    while (!data.empty()) {
      const ssize_t n = write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return Errno("write", path_);
      data.remove_prefix(static_cast<size_t>(n));
    }
    const mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd_, 0666 & ~mask) != 0) return Errno("chmod", path_);
    const int fd = fd_;
    fd_ = -1;
    return close(fd) == 0 ? absl::OkStatus() : Errno("close", path_);
  }

  absl::Status RenameTo(const std::string& target) {
    if (rename(path_.c_str(), target.c_str()) != 0) {
      return Errno("rename to", target);
    }
    committed_ = true;
    return absl::OkStatus();
  }

 private:
  std::string path_;  // a template until Open
  int fd_ = -1;
  bool created_ = false;
  bool committed_ = false;
};

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data) {
  TempFile temp(absl::StrCat(path, ".tpjit-XXXXXX"));
  if (absl::Status s = temp.Open(); !s.ok()) return s;
  if (absl::Status s = temp.Write(data); !s.ok()) return s;
  return temp.RenameTo(path);
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("open", path);
  std::string data;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      absl::Status s = Errno("read", path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return data;
}

}  // namespace tpjit
