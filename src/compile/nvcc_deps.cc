#include "src/compile/nvcc_deps.h"

#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "src/common/digest.h"

namespace tpjit {
namespace {

// "<root>/<rel>" -> rel when `path` lies under `root` (both normalized).
bool Under(absl::string_view path, absl::string_view root,
           absl::string_view* rel) {
  if (root.empty() || !absl::StartsWith(path, root)) return false;
  absl::string_view rest = path.substr(root.size());
  if (root.back() != '/' && !absl::ConsumePrefix(&rest, "/")) return false;
  if (rest.empty()) return false;
  *rel = rest;
  return true;
}

std::string Absolute(absl::string_view path, absl::string_view cwd) {
  if (absl::StartsWith(path, "/")) return NormalizePath(path);
  return NormalizePath(absl::StrCat(cwd, "/", path));
}

// The file a compiler message line is about, or empty when it is not one.
absl::string_view MessageFile(absl::string_view line) {
  size_t paren = line.find("): ");
  if (paren != absl::string_view::npos) {
    size_t open = line.rfind('(', paren);
    if (open != absl::string_view::npos && open > 0) {
      absl::string_view num = line.substr(open + 1, paren - open - 1);
      int n;
      if (absl::SimpleAtoi(num, &n)) return line.substr(0, open);
    }
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos && colon > 0 &&
      colon + 1 < line.size() && absl::ascii_isdigit(line[colon + 1]) &&
      line.find(' ') > colon) {
    return line.substr(0, colon);
  }
  return {};
}

}  // namespace

std::string ToolkitRoot(absl::string_view nvcc) {
  std::string n = NormalizePath(nvcc);
  size_t slash = n.rfind('/');
  std::string bin = slash == std::string::npos ? "" : n.substr(0, slash);
  slash = bin.rfind('/');
  return slash == std::string::npos ? "/" : bin.substr(0, slash);
}

std::string ToolkitRootFor(absl::string_view nvcc) {
  struct stat st;
  auto has_version = [&st](const std::string& root) {
    return stat((root + "/version.json").c_str(), &st) == 0;
  };
  std::string root = ToolkitRoot(nvcc);
  if (has_version(root)) return root;
  const char* home = std::getenv("CUDA_HOME");
  if (home != nullptr && *home && has_version(NormalizePath(home))) {
    return NormalizePath(home);
  }
  return "/usr/local/cuda";
}

std::string NormalizePath(absl::string_view path) {
  std::vector<absl::string_view> parts;
  for (absl::string_view p : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (p == ".") continue;
    if (p == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(p);
  }
  const bool absolute = absl::StartsWith(path, "/");
  return absl::StrCat(absolute ? "/" : "", absl::StrJoin(parts, "/"));
}

std::vector<std::string> ParseDependencyFile(absl::string_view text) {
  std::string joined = absl::StrReplaceAll(text, {{"\\\n", " "}});
  size_t colon = joined.find(": ");
  if (colon == std::string::npos) return {};
  std::vector<std::string> out;
  std::string current;
  const std::string rest = joined.substr(colon + 2);
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '\\' && i + 1 < rest.size() && rest[i + 1] == ' ') {
      current.push_back(' ');
      ++i;
    } else if (absl::ascii_isspace(c)) {
      if (!current.empty()) out.push_back(std::move(current));
      current.clear();
    } else {
      current.push_back(c);
    }
  }
  if (!current.empty()) out.push_back(std::move(current));
  return out;
}

namespace {

// The label of `abs` under `roots` compared as written; empty when none.
std::string LabelLexically(const std::string& abs,
                           const std::vector<std::string>& include_dirs,
                           const std::string& toolkit,
                           const std::vector<std::string>& system) {
  absl::string_view rel;
  for (size_t i = 0; i < include_dirs.size(); ++i) {
    if (Under(abs, NormalizePath(include_dirs[i]), &rel)) {
      return absl::StrCat("I", i, "/", rel);
    }
  }
  if (Under(abs, NormalizePath(toolkit), &rel)) return absl::StrCat("T/", rel);
  for (const std::string& root : system) {
    if (Under(abs, root, &rel)) return absl::StrCat("S", abs);
  }
  return "";
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? std::string(buf) : path;
}

}  // namespace

absl::StatusOr<std::string> LabelDependency(absl::string_view path,
                                            absl::string_view cwd,
                                            const DependencyRoots& roots) {
  const std::string abs = Absolute(path, cwd);
  std::string label =
      LabelLexically(abs, roots.include_dirs, roots.toolkit, roots.system);
  if (!label.empty()) return label;
  // nvcc may name toolkit headers through the toolkit's real path
  // (/usr/local/cuda -> /usr/local/cuda-13.0): compare resolved paths too.
  std::vector<std::string> dirs;
  for (const std::string& d : roots.include_dirs) dirs.push_back(RealPath(d));
  label = LabelLexically(RealPath(abs), dirs, RealPath(roots.toolkit),
                         roots.system);
  if (!label.empty()) return label;
  return absl::InvalidArgumentError(absl::StrCat(
      "the source includes \"", abs,
      "\", which lies outside the include directories, the CUDA toolkit and "
      "the system headers"));
}

std::string ResolveLabel(absl::string_view label,
                         const DependencyRoots& roots) {
  if (absl::ConsumePrefix(&label, "T/")) {
    return NormalizePath(absl::StrCat(roots.toolkit, "/", label));
  }
  if (absl::ConsumePrefix(&label, "S/")) {
    std::string abs = NormalizePath(absl::StrCat("/", label));
    absl::string_view rel;
    for (const std::string& root : roots.system) {
      if (Under(abs, root, &rel)) return abs;
    }
    return "";
  }
  if (!absl::ConsumePrefix(&label, "I")) return "";
  size_t slash = label.find('/');
  size_t index;
  if (slash == absl::string_view::npos ||
      !absl::SimpleAtoi(label.substr(0, slash), &index) ||
      index >= roots.include_dirs.size()) {
    return "";
  }
  absl::string_view rel = label.substr(slash + 1);
  std::string path =
      NormalizePath(absl::StrCat(roots.include_dirs[index], "/", rel));
  absl::string_view check;
  return Under(path, NormalizePath(roots.include_dirs[index]), &check) ? path
                                                                       : "";
}

std::string FilterCompilerLog(absl::string_view log,
                              absl::string_view source_name,
                              absl::string_view cwd,
                              const DependencyRoots& roots) {
  std::string out;
  bool dropping = false;
  if (absl::ConsumeSuffix(&log, "\n") && log.empty()) return "";
  if (log.empty()) return "";
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    absl::string_view file = MessageFile(line);
    if (!file.empty()) {
      dropping = !(file == source_name ||
                   Absolute(file, cwd) == Absolute(source_name, cwd) ||
                   LabelDependency(file, cwd, roots).ok());
    } else if (!line.empty() && !absl::ascii_isspace(line[0])) {
      dropping = false;  // a new, file-less message ("nvcc fatal", summary)
    }
    if (!dropping) absl::StrAppend(&out, line, "\n");
  }
  while (absl::EndsWith(out, "\n\n")) out.pop_back();
  return out;
}

absl::StatusOr<std::string> FileHasher::Hash(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::NotFoundError(absl::StrCat("cannot stat ", path));
  }
  Entry key;
  key.dev = st.st_dev;
  key.ino = st.st_ino;
  key.size = st.st_size;
  key.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  key.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(path);
    if (it != entries_.end()) {
      const Entry& e = it->second;
      if (e.dev == key.dev && e.ino == key.ino && e.size == key.size &&
          e.mtime_ns == key.mtime_ns && e.ctime_ns == key.ctime_ns) {
        return e.sha256;
      }
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream s;
  s << in.rdbuf();
  key.sha256 = Sha256Hex(s.str());
  absl::MutexLock lock(&mu_);
  if (entries_.size() > 200000) entries_.clear();  // bounded memory
  entries_[path] = key;
  return key.sha256;
}

bool FileHasher::Matches(const std::vector<std::string>& deps,
                         const DependencyRoots& roots) {
  for (const std::string& line : deps) {
    size_t tab = line.find('\t');
    if (tab == std::string::npos) return false;
    std::string path = ResolveLabel(line.substr(0, tab), roots);
    if (path.empty()) return false;
    absl::StatusOr<std::string> sha = Hash(path);
    if (!sha.ok() || *sha != line.substr(tab + 1)) return false;
  }
  return true;
}

FileHasher& FileHasher::Global() {
  static auto* hasher = new FileHasher();
  return *hasher;
}

}  // namespace tpjit
