// Logger: where tpjitd's one-line diagnostics go, behind an interface so
// tests can read them (MemoryLogger). The real one writes "tpjitd: <line>\n"
// to stderr in one write. Implementations are thread-safe.
#ifndef TPJIT_SRC_COMMON_LOGGER_H_
#define TPJIT_SRC_COMMON_LOGGER_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace tpjit {

class Logger {
 public:
  virtual ~Logger() = default;
  // One line, without the program prefix and the newline.
  virtual void Log(absl::string_view line) = 0;

  // The process-wide stderr logger ("tpjitd: " prefix); never deleted.
  static Logger* Stderr();
};

// Keeps every line, for tests.
class MemoryLogger final : public Logger {
 public:
  void Log(absl::string_view line) override {
    absl::MutexLock lock(&mu_);
    lines_.emplace_back(line);
  }
  std::vector<std::string> lines() const {
    absl::MutexLock lock(&mu_);
    return lines_;
  }
  // Whether any line contains `text`.
  bool Contains(absl::string_view text) const {
    absl::MutexLock lock(&mu_);
    for (const std::string& l : lines_) {
      if (absl::StrContains(l, text)) return true;
    }
    return false;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_LOGGER_H_
