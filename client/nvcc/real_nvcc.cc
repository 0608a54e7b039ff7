#include "client/nvcc/real_nvcc.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace tpjit {
namespace {

std::string Resolved(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) == nullptr ? "" : std::string(buf);
}

std::vector<std::string> Candidates() {
  std::vector<std::string> out;
  if (const char* v = getenv("TPJIT_REAL_NVCC"); v != nullptr && *v) {
    out.emplace_back(v);
  }
  if (const char* v = getenv("CUDA_HOME"); v != nullptr && *v) {
    out.push_back(absl::StrCat(v, "/bin/nvcc"));
  }
  out.emplace_back("/usr/local/cuda/bin/nvcc");
  return out;
}

}  // namespace

absl::StatusOr<std::string> FindRealNvcc() {
  const std::string self = Resolved("/proc/self/exe");
  const std::vector<std::string> candidates = Candidates();
  for (const std::string& c : candidates) {
    if (access(c.c_str(), X_OK) != 0) continue;
    const std::string resolved = Resolved(c);
    if (resolved.empty() || resolved == self) continue;
    return c;
  }
  return absl::NotFoundError(
      absl::StrCat("no real nvcc: none of ", absl::StrJoin(candidates, ", "),
                   " is an executable other than tpjit-nvcc (set "
                   "TPJIT_REAL_NVCC or CUDA_HOME)"));
}

void ExecRealNvcc(const std::string& real_nvcc,
                  const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(real_nvcc.c_str()));
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  fflush(nullptr);
  execv(real_nvcc.c_str(), argv.data());
  const int err = errno;
  fprintf(stderr, "tpjit-nvcc: error: cannot run %s: %s\n", real_nvcc.c_str(),
          strerror(err));
  _exit(127);
}

void RunRealNvcc(const std::vector<std::string>& args) {
  auto real = FindRealNvcc();
  if (!real.ok()) {
    fprintf(stderr, "tpjit-nvcc: error: %s\n",
            std::string(real.status().message()).c_str());
    _exit(127);
  }
  ExecRealNvcc(*real, args);
}

}  // namespace tpjit
