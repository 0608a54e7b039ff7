#include "src/common/logger.h"

#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"

namespace tpjit {
namespace {

class StderrLogger final : public Logger {
 public:
  void Log(absl::string_view line) override {
    const std::string text = absl::StrCat("tpjitd: ", line, "\n");
    size_t done = 0;
    while (done < text.size()) {
      ssize_t n = write(2, text.data() + done, text.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
};

}  // namespace

Logger* Logger::Stderr() {
  static Logger* logger = new StderrLogger();
  return logger;
}

}  // namespace tpjit
