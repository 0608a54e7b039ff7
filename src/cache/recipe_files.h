// The recipe book's file formats (recipe_book.h "Layout"), shared by
// recipe_book.cc and recipe_book_remote.cc; not a public interface.
#ifndef TPJIT_SRC_CACHE_RECIPE_FILES_H_
#define TPJIT_SRC_CACHE_RECIPE_FILES_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/cache/entry_format.h"
#include "src/cache/recipe_book.h"

namespace tpjit::recipe_files {

// The file name (under groups/) of `group`'s index: a SHA-256 in hex.
std::string GroupFileName(absl::string_view group);
// `group`'s index as an entry file.
std::string EncodeGroupFile(const std::string& group,
                            const std::vector<RecipeRef>& refs);

struct DecodedGroup {
  std::string group;
  std::vector<RecipeRef> refs;
};
// The group an index file (or its verified entry) named `name` holds;
// DATA_LOSS when it is corrupt or names another group.
absl::StatusOr<DecodedGroup> DecodeGroupFile(absl::string_view bytes,
                                             absl::string_view name);
absl::StatusOr<DecodedGroup> DecodeGroupEntry(const CacheEntry& entry,
                                              absl::string_view name);
// The recipe an object file (or its verified entry) holds, verified against
// its name `digest`.
absl::StatusOr<Recipe> DecodeObjectFile(absl::string_view bytes,
                                        absl::string_view digest);
absl::StatusOr<Recipe> DecodeObjectEntry(const CacheEntry& entry,
                                         absl::string_view digest);

}  // namespace tpjit::recipe_files

#endif  // TPJIT_SRC_CACHE_RECIPE_FILES_H_
