// ScopedTempDir: a private directory (mkdtemp, mode 0700) that is removed,
// with everything in it, when the object goes away (RAII; movable, not
// copyable). Thread-compatible: one owner at a time.
#ifndef TPJIT_SRC_COMMON_SCOPED_TEMP_DIR_H_
#define TPJIT_SRC_COMMON_SCOPED_TEMP_DIR_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

class ScopedTempDir {
 public:
  // A new directory under $TMPDIR (else /tmp) named `prefix`XXXXXX.
  static absl::StatusOr<ScopedTempDir> Create(absl::string_view prefix);
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&& other) noexcept;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();  // removes the tree; harmless when moved from

  const std::string& path() const { return path_; }

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}
  void Remove();  // harmless when already removed
  std::string path_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_SCOPED_TEMP_DIR_H_
