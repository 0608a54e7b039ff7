#include "src/compile/kernel_source.h"

#include <map>
#include <set>

#include "absl/base/internal/raw_logging.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "kernels/embedded.h"
#include "src/common/digest.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

const EmbeddedFile* FindFile(absl::string_view name) {
  for (const EmbeddedFile& f : EmbeddedKernelFiles()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// Names in `#include "name"` lines of `content`, in order.
std::vector<std::string> QuotedIncludes(absl::string_view content) {
  std::vector<std::string> names;
  size_t pos = 0;
  while ((pos = content.find("#include \"", pos)) != absl::string_view::npos) {
    const size_t start = pos + 10;
    const size_t end = content.find('"', start);
    if (end == absl::string_view::npos) break;
    names.emplace_back(content.substr(start, end - start));
    pos = end;
  }
  return names;
}

// The headers `file` includes, transitively, sorted by name. CHECK-fails on
// a header missing from the embedded set (a build error of ours).
HeaderList IncludedHeaders(const EmbeddedFile& file) {
  std::map<std::string, absl::string_view> seen;
  std::vector<absl::string_view> todo = {file.content};
  while (!todo.empty()) {
    absl::string_view content = todo.back();
    todo.pop_back();
    for (const std::string& name : QuotedIncludes(content)) {
      if (seen.count(name)) continue;
      const EmbeddedFile* h = FindFile(name);
      ABSL_RAW_CHECK(h != nullptr, "kernel header not embedded");
      seen[name] = h->content;
      todo.push_back(h->content);
    }
  }
  HeaderList headers;
  for (const auto& [name, content] : seen) {
    headers.emplace_back(name, std::string(content));
  }
  return headers;
}

std::string SourceName(Family family) {
  return absl::StrCat(Info(family).id, ".cu");
}

const EmbeddedFile& FamilyFile(Family family) {
  const EmbeddedFile* f = FindFile(SourceName(family));
  ABSL_RAW_CHECK(f != nullptr, "kernel family source not embedded");
  return *f;
}

std::string ComputeDigest(Family family) {
  const EmbeddedFile& file = FamilyFile(family);
  CanonicalEncoder enc;
  enc.Add("source_name", file.name).Add("source", file.content);
  for (const auto& [name, content] : IncludedHeaders(file)) {
    enc.Add("header_name", name).Add("header", content);
  }
  return enc.Sha256();
}

absl::Status Invalid(const KernelSpec& spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported kernel ", ToString(spec), ": ", why));
}

}  // namespace

std::vector<std::string> CanonicalOptions(absl::string_view arch) {
  return {absl::StrCat("-arch=", arch), "-std=c++17"};
}

const std::string& FamilySourceDigest(Family family) {
  static const auto* digests = [] {
    auto* d = new std::map<Family, std::string>();
    for (const FamilyInfo& info : AllFamilies()) {
      (*d)[info.family] = ComputeDigest(info.family);
    }
    return d;
  }();
  return digests->at(family);
}

absl::Status ValidateKernelSpec(const KernelSpec& spec) {
  const FamilyInfo& info = Info(spec.family);
  const KernelConfig& c = spec.config;
  if (c.block_k != info.block_k) return Invalid(spec, "block_k of family");
  if (c.warps_m < 1 || c.warps_n < 1 || c.threads() > 1024) {
    return Invalid(spec, "warp grid");
  }
  if (c.block_m <= 0 || c.block_m % (16 * c.warps_m) != 0 || c.block_n <= 0 ||
      c.block_n % (16 * c.warps_n) != 0) {
    return Invalid(spec, "tile not divisible by the warp grid");
  }
  if (c.stages < 2) return Invalid(spec, "stages < 2");
  if (spec.n <= 0 || spec.n % 8 != 0) return Invalid(spec, "N % 8 != 0");
  if (spec.k <= 0 || spec.k % c.block_k != 0 || spec.k % 128 != 0) {
    return Invalid(spec, "K not a multiple of 128 and BK");
  }
  if (spec.groups < 1) return Invalid(spec, "groups < 1");
  if (info.group == GroupKind::kNone && spec.groups != 1) {
    return Invalid(spec, "groups != 1 for a non-grouped family");
  }
  if (info.fp8 && c.block_n > 128) return Invalid(spec, "fp8 BN > 128");
  if (SharedMemoryBytes(info, c) > MaxSharedMemoryBytes(spec.arch)) {
    return Invalid(spec, "shared memory over the arch limit");
  }
  if (spec.arch.empty() ||
      spec.arch.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") !=
          std::string::npos) {
    return Invalid(spec, "bad arch");
  }
  return absl::OkStatus();
}

absl::StatusOr<KernelSource> MakeKernelSource(const KernelSpec& spec) {
  TPJIT_RETURN_IF_ERROR(ValidateKernelSpec(spec));
  const FamilyInfo& info = Info(spec.family);
  const EmbeddedFile& file = FamilyFile(spec.family);
  const KernelConfig& c = spec.config;
  KernelSource out;
  out.source_name = std::string(file.name);
  out.source = std::string(file.content);
  out.headers = IncludedHeaders(file);
  out.name_expression =
      absl::StrFormat("tpjit_kernels::%s<%d, %d, %d, %d, %d, %d, %d, %d, %d>",
                      info.id, spec.n, spec.k, spec.groups, c.block_m,
                      c.block_n, c.block_k, c.stages, c.warps_m, c.warps_n);
  out.options = CanonicalOptions(spec.arch);
  out.family_digest = FamilySourceDigest(spec.family);
  return out;
}

CompileRequest ToCompileRequest(const KernelSource& source) {
  CompileRequest r;
  r.source_name = source.source_name;
  r.source = source.source;
  r.headers = source.headers;
  r.name_expressions = {source.name_expression};
  r.options = source.options;
  return r;
}

}  // namespace tpjit
