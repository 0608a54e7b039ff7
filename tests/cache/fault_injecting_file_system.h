// FaultInjectingFileSystem: a forwarding FileSystem (over the real one by
// default) that tests arm to fail on command, in the manner of leveldb's
// SpecialEnv / FaultInjectionTestEnv. Faults match paths by substring ("" =
// every path). Thread-safe.
//
//   FailOp       the next N calls of one operation fail with a given status
//   NoSpaceAfter a file stores its first B bytes, then writes fail ENOSPC
//   CrashAfter   after an operation succeeds, the "process" is dead: every
//                later call fails with ABORTED and does nothing (so nothing
//                is cleaned up, as after kill -9)
//   TearWrites   a file keeps only its first B bytes but Append says OK
//                (a lying disk / torn file)
//   HideFor      Stat/ReadFile/ListDir miss matching files for N calls
//                (a shared file system that shows new files late); create,
//                link and rename still see them
//   SetBeforeRename  runs a hook before each rename (to race it)
#ifndef TPJIT_TESTS_CACHE_FAULT_INJECTING_FILE_SYSTEM_H_
#define TPJIT_TESTS_CACHE_FAULT_INJECTING_FILE_SYSTEM_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "src/common/file_system.h"

namespace tpjit::testing {

enum class FsOp {
  kOpen,
  kAppend,
  kSync,
  kClose,
  kRead,
  kStat,
  kList,
  kRename,
  kLink,
  kUnlink,
  kMkdir,
  kSyncDir,
  kSetMTime,
};

class FaultInjectingFileSystem : public FileSystemWrapper {
 public:
  explicit FaultInjectingFileSystem(FileSystem* target = FileSystem::Default())
      : FileSystemWrapper(target) {}

  void FailOp(FsOp op, absl::Status status, std::string path_part = "",
              int times = 1);
  void NoSpaceAfter(int64_t bytes, std::string path_part = "");
  void CrashAfter(FsOp op, std::string path_part = "");
  void TearWrites(int64_t keep_bytes, std::string path_part = "");
  void HideFor(std::string path_part, int calls);
  void SetBeforeRename(
      std::function<void(const std::string&, const std::string&)> hook);
  // Disarms every fault and revives a crashed file system.
  void Reset();

  bool crashed() const;
  // Successful and failed calls of `op` so far.
  int Count(FsOp op) const;

  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path, bool exclusive) override;
  absl::StatusOr<std::string> ReadFile(const std::string& path) override;
  absl::StatusOr<FileInfo> Stat(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status Link(const std::string& from, const std::string& to) override;
  absl::Status Unlink(const std::string& path) override;
  absl::Status CreateDirs(const std::string& dir) override;
  absl::Status SyncDir(const std::string& dir) override;
  absl::Status SetMTime(const std::string& path, absl::Time t) override;

 private:
  friend class FaultWritableFile;
  struct Fault {
    FsOp op;
    absl::Status status;
    std::string path_part;
    int times;
  };
  // Counts the call; returns the injected error, if any.
  absl::Status Before(FsOp op, const std::string& path);
  // Records success of `op` (may trigger a crash).
  void After(FsOp op, const std::string& path, const absl::Status& s);
  bool Hidden(const std::string& path);
  // How many of `n` bytes at `offset` a file at `path` may store, and the
  // error to report after that (OK: none).
  int64_t WriteLimit(const std::string& path, int64_t offset, int64_t n,
                     absl::Status* error);

  mutable absl::Mutex mu_;
  std::vector<Fault> faults_ ABSL_GUARDED_BY(mu_);
  std::map<FsOp, int> counts_ ABSL_GUARDED_BY(mu_);
  bool crashed_ ABSL_GUARDED_BY(mu_) = false;
  bool crash_armed_ ABSL_GUARDED_BY(mu_) = false;
  FsOp crash_op_ ABSL_GUARDED_BY(mu_) = FsOp::kOpen;
  std::string crash_part_ ABSL_GUARDED_BY(mu_);
  int64_t no_space_after_ ABSL_GUARDED_BY(mu_) = -1;
  std::string no_space_part_ ABSL_GUARDED_BY(mu_);
  int64_t tear_after_ ABSL_GUARDED_BY(mu_) = -1;
  std::string tear_part_ ABSL_GUARDED_BY(mu_);
  std::string hide_part_ ABSL_GUARDED_BY(mu_);
  int hide_calls_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void(const std::string&, const std::string&)> before_rename_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CACHE_FAULT_INJECTING_FILE_SYSTEM_H_
