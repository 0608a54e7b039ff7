// Cache archives: one portable file holding chosen cache entries, so that a
// cache can be baked into a container image or carried between machines
// (`tpjit cache export` / `import`). Thread-safe (no shared state).
//
// Format versions (integers little-endian):
//   1:
//   "TPJITAR\0"  magic                               8 bytes
//   u32          format version (1)
//   u32          number of entries N
//   N times:     u64 length L, 32-byte SHA-256 of the next L bytes,
//                L bytes: one cache entry file, verbatim (entry_format.h)
//   "TPJITEND"   trailer magic                       8 bytes
//   32 bytes     SHA-256 of every byte before the trailer magic
//   2: version 1 with the version field 2 and, after the N entries:
//   u32          number of recipe files R
//   R times:     u32 name length, the name (its path under DIR/recipes/,
//                recipe_book.h), u64 length L, 32-byte SHA-256, L bytes
// Entries appear at most once, in key order; recipe files in name order.
// Writers write version 1 when there are no recipe files, so older readers
// still read such archives. Every layer is checked on import: the
// whole-archive checksum, each entry's checksum, and each entry's own header
// and checksum (recipe files too).
#ifndef TPJIT_SRC_CACHE_ARCHIVE_H_
#define TPJIT_SRC_CACHE_ARCHIVE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/cache/cache.h"
#include "src/cache/recipe_book.h"

namespace tpjit {

// What an archive holds: key -> entry file bytes, and recipe file name
// (under DIR/recipes/) -> its bytes.
struct CacheArchiveContents {
  std::map<std::string, std::string> entries;
  std::map<std::string, std::string> recipe_files;
};

// REQUIRES: valid entries (each must verify).
std::string EncodeCacheArchive(
    const std::map<std::string, std::string>& entries,
    const std::map<std::string, std::string>& recipe_files = {});
// Parses and verifies a whole archive; DATA_LOSS says where it is bad.
absl::StatusOr<CacheArchiveContents> DecodeCacheArchiveContents(
    absl::string_view bytes);
// The entries of DecodeCacheArchiveContents.
absl::StatusOr<std::map<std::string, std::string>> DecodeCacheArchive(
    absl::string_view bytes);

struct ArchiveReport {
  int64_t entries = 0;  // in the archive
  int64_t added = 0;    // written into the cache (import)
  int64_t present = 0;  // already in the cache with valid content (import)
  int64_t bytes = 0;
  int64_t recipe_files = 0;    // in the archive
  int64_t recipe_objects = 0;  // recipes written into the cache (import)
  int64_t recipe_groups = 0;   // group indexes merged (import)
};

// Writes the archive of `keys` (each must be a valid entry in `cache`) and,
// with `recipes`, every recipe file of it, to `out_path` atomically (temp
// file + rename). NOT_FOUND / DATA_LOSS name the first missing or corrupt
// key; nothing is written then. Corrupt recipe files are left out (logged).
absl::StatusOr<ArchiveReport> ExportCacheArchive(
    Cache& cache, const std::vector<std::string>& keys, FileSystem& fs,
    const std::string& out_path, RecipeBook* recipes = nullptr);

// Verifies the whole archive at `path` first, then writes each entry that
// the cache lacks (or holds corrupt) atomically, then (with `recipes`)
// merges its recipe files (RecipeBook::ImportFiles). A bad archive changes
// nothing; if an entry write fails midway, the entries this import added are
// removed again, and the error is returned. An archive with recipe files and
// no `recipes` imports its entries only.
absl::StatusOr<ArchiveReport> ImportCacheArchive(Cache& cache, FileSystem& fs,
                                                 const std::string& path,
                                                 RecipeBook* recipes = nullptr);

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_ARCHIVE_H_
