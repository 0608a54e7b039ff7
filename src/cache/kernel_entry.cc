#include "src/cache/kernel_entry.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace tpjit {
namespace {

std::vector<std::string> Lines(const CacheMetadata& m, const std::string& k) {
  auto it = m.find(k);
  if (it == m.end()) return {};
  return absl::StrSplit(it->second, '\n', absl::SkipEmpty());
}

std::string Field(const CacheMetadata& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

}  // namespace

CacheEntry ToCacheEntry(const std::string& key, const KernelEntry& kernel) {
  CacheEntry e;
  e.key = key;
  e.payload = kernel.cubin;
  CacheMetadata& m = e.metadata;
  m["label"] = kernel.label;
  m["lowered_names"] = absl::StrJoin(kernel.lowered_names, "\n");
  m["compile_seconds"] = absl::StrCat(kernel.compile_seconds);
  m["load_checked"] = kernel.load_checked ? "1" : "0";
  if (!kernel.log.empty()) m["log"] = kernel.log.substr(0, kKernelEntryMaxLog);
  if (!kernel.dependencies.empty()) {
    m["deps"] = absl::StrJoin(kernel.dependencies, "\n");
  }
  if (kernel.attributes) {
    m["registers"] = absl::StrCat(kernel.attributes->registers);
    m["local_bytes"] = absl::StrCat(kernel.attributes->local_bytes);
    m["static_smem_bytes"] = absl::StrCat(kernel.attributes->static_smem_bytes);
  }
  return e;
}

KernelEntry FromCacheEntry(CacheEntry entry) {
  const CacheMetadata& m = entry.metadata;
  KernelEntry k;
  k.cubin = std::move(entry.payload);
  k.label = Field(m, "label");
  k.lowered_names = Lines(m, "lowered_names");
  if (!absl::SimpleAtod(Field(m, "compile_seconds"), &k.compile_seconds)) {
    k.compile_seconds = 0;
  }
  k.load_checked = Field(m, "load_checked") == "1";
  k.log = Field(m, "log");
  k.dependencies = Lines(m, "deps");
  KernelAttributesSummary a;
  if (absl::SimpleAtoi(Field(m, "registers"), &a.registers) &&
      absl::SimpleAtoi(Field(m, "local_bytes"), &a.local_bytes) &&
      absl::SimpleAtoi(Field(m, "static_smem_bytes"), &a.static_smem_bytes)) {
    k.attributes = a;
  }
  return k;
}

}  // namespace tpjit
