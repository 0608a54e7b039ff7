#include "src/cache/cache_dir.h"

#include <unistd.h>

#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "src/common/status_macros.h"

namespace tpjit {

CacheLogFn StderrCacheLog() {
  return [](absl::string_view line) {
    static absl::Mutex mu(absl::kConstInit);
    absl::MutexLock lock(&mu);
    std::cerr << "tpjit cache: " << line << std::endl;
  };
}

std::string CacheDir::EntryPath(absl::string_view key) const {
  return JoinPath(dir, key);
}

std::string CacheDir::LeasePath(absl::string_view key) const {
  return JoinPath(dir, absl::StrCat(key, kLeaseSuffix));
}

std::string CacheDir::TempPath(absl::string_view final_name) const {
  return JoinPath(dir, absl::StrCat(final_name, kTempMarker, host, "-", pid,
                                    "-", RandomHex64()));
}

std::string RandomHex64() {
  // std::random_device reads the OS source each call, so forked children
  // never repeat their parent's sequence.
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return absl::StrFormat("%016x", v);
}

std::string LocalHostName() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') {
    return "unknown-host";
  }
  std::string host(buf);
  // Host names go into file names: keep them tame.
  for (char& c : host) {
    if (c == '/' || c == '-' || c == ' ') c = '_';
  }
  return host;
}

int64_t LocalProcessId() { return static_cast<int64_t>(::getpid()); }

bool IsTempName(absl::string_view name) {
  return name.find(kTempMarker) != absl::string_view::npos;
}

absl::Status WriteFileAtomically(const CacheDir& cd, const std::string& path,
                                 absl::string_view final_name,
                                 absl::string_view data) {
  ScopedTempFile temp(cd.fs, cd.TempPath(final_name));
  TPJIT_RETURN_IF_ERROR(
      WriteWholeFile(*cd.fs, temp.path(), data, /*exclusive=*/true));
  TPJIT_RETURN_IF_ERROR(cd.fs->Rename(temp.path(), path));
  temp.Commit();
  return cd.fs->SyncDir(cd.dir);
}

}  // namespace tpjit
