// The layout of a cache directory and the effects shared by Cache and its
// leases (file system, clock, identity, log, counters). Internal to
// src/cache/.
//
// Layout of DIR (flat, so every rename stays in one directory):
//   DIR/<key>                    an entry (see entry_format.h)
//   DIR/<key>.lease              the lease of an in-progress compile
//   DIR/<anything>.tmp-<host>-<pid>-<random>
//                                a temp file (entry or lease being written,
//                                a lease being broken); removed by its
//                                writer, or by CleanupTemps after a crash
//   DIR/corrupt/<key>.<unix-ns>.<random>
//                                entries that failed verification
#ifndef TPJIT_SRC_CACHE_CACHE_DIR_H_
#define TPJIT_SRC_CACHE_CACHE_DIR_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "src/cache/stats.h"
#include "src/common/clock.h"
#include "src/common/file_system.h"
#include "src/common/process_table.h"

namespace tpjit {

// Receives one human-readable line per noteworthy cache event (corruption,
// failed put, broken lease). Must be thread-safe.
using CacheLogFn = std::function<void(absl::string_view)>;

// Writes "tpjit cache: <line>" to stderr.
CacheLogFn StderrCacheLog();

inline constexpr absl::string_view kTempMarker = ".tmp-";
inline constexpr absl::string_view kLeaseSuffix = ".lease";
inline constexpr absl::string_view kCorruptDir = "corrupt";

// The effects of one open cache directory. Not owned by its users.
struct CacheDir {
  std::string dir;
  FileSystem* fs = nullptr;
  Clock* clock = nullptr;
  std::string host;
  int64_t pid = 0;
  // Who this process is on this host (lease.h): its start time (0 if
  // unknown) and pid space ("" if unknown), and how to look others up.
  ProcessTable* processes = nullptr;
  uint64_t proc_start = 0;
  std::string pid_space;
  CacheLogFn log;
  CacheCounters* counters = nullptr;

  std::string EntryPath(absl::string_view key) const;
  std::string LeasePath(absl::string_view key) const;
  // A fresh temp path in `dir` for a file that will become `final_name`.
  std::string TempPath(absl::string_view final_name) const;
  void Log(absl::string_view line) const {
    if (log) log(line);
  }
};

// 16 random hex digits from the OS (distinct across forked processes).
std::string RandomHex64();
// The host name, or "unknown-host".
std::string LocalHostName();
int64_t LocalProcessId();

bool IsTempName(absl::string_view name);

// Removes `path` on destruction unless Commit() was called. Movable.
class ScopedTempFile {
 public:
  ScopedTempFile(FileSystem* fs, std::string path)
      : fs_(fs), path_(std::move(path)) {}
  ScopedTempFile(const ScopedTempFile&) = delete;
  ScopedTempFile& operator=(const ScopedTempFile&) = delete;
  ~ScopedTempFile() {
    if (!committed_) fs_->Unlink(path_).IgnoreError();
  }
  const std::string& path() const { return path_; }
  void Commit() { committed_ = true; }

 private:
  FileSystem* fs_;
  std::string path_;
  bool committed_ = false;
};

// Writes `data` to a temp file beside `path`, fsyncs it, renames it over
// `path` and fsyncs the directory. On any failure the temp file is removed
// and `path` is untouched (old content or absent).
absl::Status WriteFileAtomically(const CacheDir& cd, const std::string& path,
                                 absl::string_view final_name,
                                 absl::string_view data);

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_CACHE_DIR_H_
