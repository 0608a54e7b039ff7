// TempDir: a fresh private directory per test (mkdtemp under $TEST_TMPDIR,
// else $TMPDIR, else /tmp), removed with its content on destruction. Not
// copyable. Thread-compatible.
#ifndef TPJIT_TESTS_TESTLIB_TEMP_DIR_H_
#define TPJIT_TESTS_TESTLIB_TEMP_DIR_H_

#include <string>

namespace tpjit::testing {

class TempDir {
 public:
  // `prefix` names the directory (prefix + random suffix), for people who
  // look at /tmp while a test runs.
  explicit TempDir(const std::string& prefix = "tpjit-test-");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty when the directory could not be made (the test then fails on
  // first use).
  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Sub(const std::string& name) const;

 private:
  std::string path_;
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_TESTLIB_TEMP_DIR_H_
