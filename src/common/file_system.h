// FileSystem: the small set of file operations tpjit's core code may perform
// (the cache, the daemon's state files), behind an interface in the manner of
// leveldb's Env, so that tests can inject faults (see
// tests/cache/fault_injecting_file_system.h) and core code never calls POSIX
// directly.
//
// Errors are returned, never thrown: every failure is an absl::Status whose
// message names the operation and the path ("rename /a -> /b: No space left
// on device"); the code follows errno (ENOENT -> NOT_FOUND, EEXIST ->
// ALREADY_EXISTS, ENOSPC -> RESOURCE_EXHAUSTED, ...).
//
// Thread-safety: FileSystem implementations are thread-safe. A WritableFile
// is thread-compatible (one thread at a time).
#ifndef TPJIT_SRC_COMMON_FILE_SYSTEM_H_
#define TPJIT_SRC_COMMON_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tpjit {

struct FileInfo {
  int64_t size = 0;
  absl::Time mtime;
  bool is_directory = false;
  int64_t uid = -1;   // the owner; -1 when unknown
  uint32_t mode = 0;  // permission bits (07777)
};

// A file open for writing. Dropping it without Close() closes it and ignores
// errors; call Close() to see them.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  // Flushes the file's data and metadata to stable storage (fsync).
  virtual absl::Status Sync() = 0;
  virtual absl::Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // The process-wide POSIX file system; never deleted.
  static FileSystem* Default();

  // Opens `path` for writing, truncating it. With `exclusive`, fails with
  // ALREADY_EXISTS if `path` exists (O_CREAT|O_EXCL).
  virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, bool exclusive) = 0;
  // The whole content of `path`.
  virtual absl::StatusOr<std::string> ReadFile(const std::string& path) = 0;
  // The whole content of `path` and, in `*info`, the owner, mode and size of
  // the very file read (the POSIX one opens without following a symlink,
  // fstats what it opened and refuses anything but a regular file). This
  // default calls Stat() then ReadFile(), which is what fault-injecting
  // wrappers want.
  virtual absl::StatusOr<std::string> ReadFileAndStat(const std::string& path,
                                                      FileInfo* info);
  virtual absl::StatusOr<FileInfo> Stat(const std::string& path) = 0;
  // Names (not paths) in `dir`, without "." and "..", in no set order.
  virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  // Atomically replaces `to` with `from` (rename(2)).
  virtual absl::Status Rename(const std::string& from,
                              const std::string& to) = 0;
  // Creates `to` as a hard link to `from`; fails with ALREADY_EXISTS if `to`
  // exists. Atomic and create-exclusive also on NFS (link(2)).
  virtual absl::Status Link(const std::string& from, const std::string& to) = 0;
  virtual absl::Status Unlink(const std::string& path) = 0;
  // mkdir -p: creates `dir` and its missing parents; OK if it exists.
  virtual absl::Status CreateDirs(const std::string& dir) = 0;
  // fsyncs the directory itself, making renames/creates in it durable.
  virtual absl::Status SyncDir(const std::string& dir) = 0;
  // Sets the modification (and access) time of `path`.
  virtual absl::Status SetMTime(const std::string& path, absl::Time t) = 0;
};

// Forwards every call to another FileSystem, so a test can override one.
class FileSystemWrapper : public FileSystem {
 public:
  // REQUIRES: `target` outlives this wrapper.
  explicit FileSystemWrapper(FileSystem* target) : target_(target) {}
  FileSystem* target() const { return target_; }

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, bool exclusive) override {
    return target_->NewWritableFile(path, exclusive);
  }
  absl::StatusOr<std::string> ReadFile(const std::string& path) override {
    return target_->ReadFile(path);
  }
  absl::StatusOr<FileInfo> Stat(const std::string& path) override {
    return target_->Stat(path);
  }
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override {
    return target_->ListDir(dir);
  }
  absl::Status Rename(const std::string& from, const std::string& to) override {
    return target_->Rename(from, to);
  }
  absl::Status Link(const std::string& from, const std::string& to) override {
    return target_->Link(from, to);
  }
  absl::Status Unlink(const std::string& path) override {
    return target_->Unlink(path);
  }
  absl::Status CreateDirs(const std::string& dir) override {
    return target_->CreateDirs(dir);
  }
  absl::Status SyncDir(const std::string& dir) override {
    return target_->SyncDir(dir);
  }
  absl::Status SetMTime(const std::string& path, absl::Time t) override {
    return target_->SetMTime(path, t);
  }

 private:
  FileSystem* target_;
};

// Writes `data` to `path` through `fs` in one go: create, append, sync, close.
absl::Status WriteWholeFile(FileSystem& fs, const std::string& path,
                            absl::string_view data, bool exclusive);

// "a/b" from ("a", "b"); tolerates a trailing slash on `dir`.
std::string JoinPath(absl::string_view dir, absl::string_view name);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_FILE_SYSTEM_H_
