// Helpers for the cache tests: a clock whose sleeps run a hook, and
// key/entry builders; temp directories and ASSERT_OK come from tests/testlib.
#ifndef TPJIT_TESTS_CACHE_TEST_UTIL_H_
#define TPJIT_TESTS_CACHE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/common/digest.h"
#include "src/common/file_system.h"
#include "tests/testlib/status.h"
#include "tests/testlib/temp_dir.h"

namespace tpjit::testing {

// A manual clock (like FakeClock) whose SleepFor first advances time, then
// runs `on_sleep` (a test's way to make "another process" act while a
// waiter backs off).
class HookClock final : public Clock {
 public:
  explicit HookClock(absl::Time start = absl::Now()) : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  void SleepFor(absl::Duration d) override {
    Advance(d);
    std::function<void()> hook;
    {
      absl::MutexLock lock(&mu_);
      ++sleeps_;
      hook = on_sleep_;
    }
    if (hook) hook();
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void OnSleep(std::function<void()> hook) {
    absl::MutexLock lock(&mu_);
    on_sleep_ = std::move(hook);
  }
  int sleeps() {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  int sleeps_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> on_sleep_ ABSL_GUARDED_BY(mu_);
};

inline std::string TestKey(int i) { return Sha256Hex(absl::StrCat("key", i)); }

// Names in `dir` (sorted), for "the cache is unchanged" checks.
inline std::vector<std::string> DirListing(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    names.push_back(e.path().string() + ":" +
                    (e.is_regular_file() ? std::to_string(e.file_size()) : ""));
  }
  std::sort(names.begin(), names.end());
  return names;
}

inline int CountTemps(const std::string& dir) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp-") != std::string::npos) ++n;
  }
  return n;
}

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CACHE_TEST_UTIL_H_
