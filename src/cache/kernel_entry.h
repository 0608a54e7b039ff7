// KernelEntry: what the daemon stores about one compiled kernel, typed. The
// one place that converts it to and from an entry's metadata map
// (entry_format.h), whose names are the on-disk contract:
//   label, lowered_names (\n-joined), compile_seconds, load_checked ("1"/"0"),
//   log (warnings, at most 64 KiB), deps (\n-joined dependency labels),
//   registers, local_bytes, static_smem_bytes (of the first kernel, when
//   known).
// Only the cubin, the symbol names, the dependencies and the log are read
// back to serve a hit; the rest is for people and `tpjit cache`. Pure
// functions, thread-safe.
#ifndef TPJIT_SRC_CACHE_KERNEL_ENTRY_H_
#define TPJIT_SRC_CACHE_KERNEL_ENTRY_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/cache/entry_format.h"

namespace tpjit {

struct KernelAttributesSummary {
  int64_t registers = 0;
  int64_t local_bytes = 0;
  int64_t static_smem_bytes = 0;
};

struct KernelEntry {
  std::string cubin;  // the entry's payload (a cubin, or PTX text)
  std::string label;
  std::vector<std::string> lowered_names;
  double compile_seconds = 0;
  bool load_checked = false;
  std::string log;
  std::vector<std::string> dependencies;
  std::optional<KernelAttributesSummary> attributes;
};

inline constexpr size_t kKernelEntryMaxLog = 64 << 10;

// The entry of `key` for `kernel`. REQUIRES: IsValidCacheKey(key).
CacheEntry ToCacheEntry(const std::string& key, const KernelEntry& kernel);
// The kernel of `entry`; missing or malformed fields take their defaults.
KernelEntry FromCacheEntry(CacheEntry entry);

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_KERNEL_ENTRY_H_
