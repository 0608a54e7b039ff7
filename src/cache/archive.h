// Cache archives: one portable file holding chosen cache entries, so that a
// cache can be baked into a container image or carried between machines
// (`tpjit cache export` / `import`). Thread-safe (no shared state).
//
// Format version 1 (integers little-endian):
//   "TPJITAR\0"  magic                               8 bytes
//   u32          format version (1)
//   u32          number of entries N
//   N times:     u64 length L, 32-byte SHA-256 of the next L bytes,
//                L bytes: one cache entry file, verbatim (entry_format.h)
//   "TPJITEND"   trailer magic                       8 bytes
//   32 bytes     SHA-256 of every byte before the trailer magic
// Entries appear at most once, in key order. Every layer is checked on
// import: the whole-archive checksum, each entry's checksum, and each
// entry's own header and checksum.
#ifndef TPJIT_SRC_CACHE_ARCHIVE_H_
#define TPJIT_SRC_CACHE_ARCHIVE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/cache/cache.h"

namespace tpjit {

// key -> entry file bytes (each must verify; REQUIRES valid entries).
std::string EncodeCacheArchive(
    const std::map<std::string, std::string>& entries);
// Parses and verifies a whole archive; DATA_LOSS says where it is bad.
absl::StatusOr<std::map<std::string, std::string>> DecodeCacheArchive(
    absl::string_view bytes);

struct ArchiveReport {
  int64_t entries = 0;  // in the archive
  int64_t added = 0;    // written into the cache (import)
  int64_t present = 0;  // already in the cache with valid content (import)
  int64_t bytes = 0;
};

// Writes the archive of `keys` (each must be a valid entry in `cache`) to
// `out_path` atomically (temp file + rename). NOT_FOUND / DATA_LOSS name the
// first missing or corrupt key; nothing is written then.
absl::StatusOr<ArchiveReport> ExportCacheArchive(
    Cache& cache, const std::vector<std::string>& keys, FileSystem& fs,
    const std::string& out_path);

// Verifies the whole archive at `path` first, then writes each entry that
// the cache lacks (or holds corrupt) atomically. A bad archive changes
// nothing; if a write fails midway, the entries this import added are
// removed again, and the error is returned.
absl::StatusOr<ArchiveReport> ImportCacheArchive(Cache& cache, FileSystem& fs,
                                                 const std::string& path);

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_ARCHIVE_H_
