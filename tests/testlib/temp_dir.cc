#include "tests/testlib/temp_dir.h"

#include <stdlib.h>

#include <filesystem>

namespace tpjit::testing {
namespace {

std::string Base() {
  for (const char* name : {"TEST_TMPDIR", "TMPDIR"}) {
    const char* v = getenv(name);
    if (v != nullptr && *v) return v;
  }
  return "/tmp";
}

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = Base() + "/" + prefix + "XXXXXX";
  if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Sub(const std::string& name) const {
  return path_ + "/" + name;
}

}  // namespace tpjit::testing
