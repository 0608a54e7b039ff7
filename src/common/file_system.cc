#include "src/common/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

absl::Status PosixError(absl::string_view op, absl::string_view path, int err) {
  return absl::ErrnoToStatus(
      err, absl::StrCat(std::string(op), " ", std::string(path)));
}

// Retries a system call interrupted by a signal.
template <typename F>
auto RetryEintr(F f) {
  decltype(f()) r;
  do {
    r = f();
  } while (r < 0 && errno == EINTR);
  return r;
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd)
      : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Append(absl::string_view data) override {
    while (!data.empty()) {
      ssize_t n =
          RetryEintr([&] { return ::write(fd_, data.data(), data.size()); });
      if (n < 0) return PosixError("write", path_, errno);
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }
  absl::Status Sync() override {
    if (::fsync(fd_) != 0) return PosixError("fsync", path_, errno);
    return absl::OkStatus();
  }
  absl::Status Close() override {
    if (fd_ < 0) return absl::OkStatus();
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return PosixError("close", path_, errno);
    return absl::OkStatus();
  }

 private:
  std::string path_;
  int fd_;
};

// Reads `fd` to its end and closes it.
absl::StatusOr<std::string> ReadAndClose(int fd, const std::string& path) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = RetryEintr([&] { return ::read(fd, buf, sizeof(buf)); });
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return PosixError("read", path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

FileInfo ToFileInfo(const struct stat& st) {
  FileInfo info;
  info.size = st.st_size;
  info.mtime = absl::TimeFromTimespec(st.st_mtim);
  info.is_directory = S_ISDIR(st.st_mode);
  info.uid = static_cast<int64_t>(st.st_uid);
  info.mode = static_cast<uint32_t>(st.st_mode & 07777);
  return info;
}

class PosixFileSystem final : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, bool exclusive) override {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC);
    int fd = RetryEintr([&] { return ::open(path.c_str(), flags, 0644); });
    if (fd < 0) return PosixError("open", path, errno);
    return std::make_unique<PosixWritableFile>(path, fd);
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    int fd =
        RetryEintr([&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC); });
    if (fd < 0) return PosixError("open", path, errno);
    return ReadAndClose(fd, path);
  }

  absl::StatusOr<std::string> ReadFileAndStat(const std::string& path,
                                              FileInfo* info) override {
    // O_NONBLOCK: a FIFO planted under the name must not block us.
    int fd = RetryEintr([&] {
      return ::open(path.c_str(),
                    O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    });
    if (fd < 0) return PosixError("open", path, errno);
    struct stat st;
    int err =
        ::fstat(fd, &st) != 0 ? errno : (S_ISREG(st.st_mode) ? 0 : EINVAL);
    if (err != 0) {
      ::close(fd);
      return PosixError("open regular file", path, err);
    }
    *info = ToFileInfo(st);
    return ReadAndClose(fd, path);  // the very file that was stat'ed
  }

  absl::StatusOr<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return PosixError("stat", path, errno);
    return ToFileInfo(st);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return PosixError("opendir", dir, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      absl::string_view name = e->d_name;
      if (name != "." && name != "..") names.emplace_back(name);
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return PosixError("readdir", dir, err);
    return names;
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return PosixError("rename", absl::StrCat(from, " -> ", to), errno);
    }
    return absl::OkStatus();
  }

  absl::Status Link(const std::string& from, const std::string& to) override {
    if (::link(from.c_str(), to.c_str()) != 0) {
      return PosixError("link", absl::StrCat(from, " -> ", to), errno);
    }
    return absl::OkStatus();
  }

  absl::Status Unlink(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PosixError("unlink", path, errno);
    return absl::OkStatus();
  }

  absl::Status CreateDirs(const std::string& dir) override {
    if (dir.empty()) return absl::OkStatus();
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) return absl::OkStatus();
      return PosixError("mkdir", dir, ENOTDIR);
    }
    size_t slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0) {
      TPJIT_RETURN_IF_ERROR(CreateDirs(dir.substr(0, slash)));
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
      return PosixError("mkdir", dir, errno);
    }
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = RetryEintr([&] {
      return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    });
    if (fd < 0) return PosixError("open", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    // Some file systems cannot fsync a directory; that is not a failure.
    if (rc != 0 && err != EINVAL && err != EROFS) {
      return PosixError("fsync", dir, err);
    }
    return absl::OkStatus();
  }

  absl::Status SetMTime(const std::string& path, absl::Time t) override {
    struct timespec times[2];
    times[0] = absl::ToTimespec(t);
    times[1] = times[0];
    if (::utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) {
      return PosixError("utimensat", path, errno);
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::StatusOr<std::string> FileSystem::ReadFileAndStat(const std::string& path,
                                                        FileInfo* info) {
  TPJIT_ASSIGN_OR_RETURN(*info, Stat(path));
  return ReadFile(path);
}

FileSystem* FileSystem::Default() {
  static FileSystem* fs = new PosixFileSystem();
  return fs;
}

absl::Status WriteWholeFile(FileSystem& fs, const std::string& path,
                            absl::string_view data, bool exclusive) {
  TPJIT_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                         fs.NewWritableFile(path, exclusive));
  TPJIT_RETURN_IF_ERROR(file->Append(data));
  TPJIT_RETURN_IF_ERROR(file->Sync());
  return file->Close();
}

std::string JoinPath(absl::string_view dir, absl::string_view name) {
  if (dir.empty()) return std::string(name);
  if (dir.back() == '/')
    return absl::StrCat(std::string(dir), std::string(name));
  return absl::StrCat(std::string(dir), "/", std::string(name));
}

}  // namespace tpjit
