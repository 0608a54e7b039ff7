#include "src/cache/archive.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "src/cache/byte_io.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

constexpr char kMagic[8] = {'T', 'P', 'J', 'I', 'T', 'A', 'R', '\0'};
constexpr char kTrailer[8] = {'T', 'P', 'J', 'I', 'T', 'E', 'N', 'D'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kVersionWithRecipes = 2;
constexpr size_t kShaSize = 32;

std::string ShaOf(absl::string_view data) {
  Sha256 sha;
  sha.Update(data);
  return sha.Finish();
}

absl::Status Bad(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("bad cache archive: ", what));
}

}  // namespace

std::string EncodeCacheArchive(
    const std::map<std::string, std::string>& entries,
    const std::map<std::string, std::string>& recipe_files) {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, recipe_files.empty() ? kVersion : kVersionWithRecipes);
  PutU32(&out, static_cast<uint32_t>(entries.size()));
  for (const auto& [key, bytes] : entries) {
    PutU64(&out, bytes.size());
    out.append(ShaOf(bytes));
    out.append(bytes);
  }
  if (!recipe_files.empty()) {
    PutU32(&out, static_cast<uint32_t>(recipe_files.size()));
    for (const auto& [name, bytes] : recipe_files) {
      PutU32(&out, static_cast<uint32_t>(name.size()));
      out.append(name);
      PutU64(&out, bytes.size());
      out.append(ShaOf(bytes));
      out.append(bytes);
    }
  }
  std::string whole = ShaOf(out);
  out.append(kTrailer, sizeof(kTrailer));
  out.append(whole);
  return out;
}

// The recipe section of a version 2 archive.
absl::Status DecodeRecipeFiles(ByteReader& in,
                               std::map<std::string, std::string>* files) {
  uint32_t count = 0;
  if (!in.U32(&count)) return Bad("recipe section is truncated");
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t len = 0;
    absl::string_view name, sha, bytes;
    if (!in.LengthPrefixed(&name) || !in.U64(&len) ||
        !in.Bytes(kShaSize, &sha) || !in.Bytes(len, &bytes)) {
      return Bad(
          absl::StrCat("recipe file ", i, " of ", count, " is truncated"));
    }
    if (ShaOf(bytes) != sha) {
      return Bad(absl::StrCat("recipe file ", name, " checksum mismatch"));
    }
    if (!files->emplace(std::string(name), std::string(bytes)).second) {
      return Bad(absl::StrCat("recipe file ", name, " appears twice"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::map<std::string, std::string>> DecodeCacheArchive(
    absl::string_view bytes) {
  TPJIT_ASSIGN_OR_RETURN(CacheArchiveContents c,
                         DecodeCacheArchiveContents(bytes));
  return std::move(c.entries);
}

absl::StatusOr<CacheArchiveContents> DecodeCacheArchiveContents(
    absl::string_view bytes) {
  const size_t tail = sizeof(kTrailer) + kShaSize;
  if (bytes.size() < sizeof(kMagic) + 8 + tail) return Bad("file too short");
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Bad("not a tpjit cache archive (bad magic)");
  }
  absl::string_view body = bytes.substr(0, bytes.size() - tail);
  absl::string_view trailer = bytes.substr(bytes.size() - tail);
  if (std::memcmp(trailer.data(), kTrailer, sizeof(kTrailer)) != 0) {
    return Bad("trailer missing (truncated?)");
  }
  if (ShaOf(body) != trailer.substr(sizeof(kTrailer))) {
    return Bad("archive checksum mismatch (truncated or modified)");
  }
  ByteReader in(body.substr(sizeof(kMagic)));
  uint32_t version = 0, count = 0;
  in.U32(&version);
  in.U32(&count);
  if (version != kVersion && version != kVersionWithRecipes) {
    return Bad(absl::StrCat("format version ", version, " is not supported"));
  }
  CacheArchiveContents contents;
  std::map<std::string, std::string>& entries = contents.entries;
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t len = 0;
    absl::string_view sha, entry;
    if (!in.U64(&len) || !in.Bytes(kShaSize, &sha) || !in.Bytes(len, &entry)) {
      return Bad(absl::StrCat("entry ", i, " of ", count, " is truncated"));
    }
    if (ShaOf(entry) != sha) {
      return Bad(absl::StrCat("entry ", i, " checksum mismatch"));
    }
    absl::StatusOr<CacheEntry> decoded = DecodeCacheEntry(entry);
    if (!decoded.ok()) {
      return Bad(absl::StrCat("entry ", i, ": ", decoded.status().message()));
    }
    if (!entries.emplace(decoded->key, std::string(entry)).second) {
      return Bad(absl::StrCat("key ", decoded->key, " appears twice"));
    }
  }
  if (version == kVersionWithRecipes) {
    TPJIT_RETURN_IF_ERROR(DecodeRecipeFiles(in, &contents.recipe_files));
  }
  if (!in.empty()) return Bad("unexpected bytes after the last entry");
  return contents;
}

absl::StatusOr<ArchiveReport> ExportCacheArchive(
    Cache& cache, const std::vector<std::string>& keys, FileSystem& fs,
    const std::string& out_path, RecipeBook* recipes) {
  std::map<std::string, std::string> entries;
  ArchiveReport report;
  for (const std::string& key : keys) {
    if (entries.count(key) > 0) continue;
    absl::StatusOr<std::string> bytes = cache.ReadVerified(key);
    if (!bytes.ok()) {
      return absl::Status(
          bytes.status().code(),
          absl::StrCat("export ", key, ": ", bytes.status().message()));
    }
    report.bytes += static_cast<int64_t>(bytes->size());
    entries.emplace(key, *std::move(bytes));
  }
  report.entries = static_cast<int64_t>(entries.size());
  std::map<std::string, std::string> recipe_files;
  if (recipes != nullptr) {
    TPJIT_ASSIGN_OR_RETURN(recipe_files, recipes->ExportFiles());
  }
  report.recipe_files = static_cast<int64_t>(recipe_files.size());
  const std::string temp = absl::StrCat(out_path, ".tmp-export");
  absl::Status s =
      WriteWholeFile(fs, temp, EncodeCacheArchive(entries, recipe_files),
                     /*exclusive=*/false);
  if (s.ok()) s = fs.Rename(temp, out_path);
  if (!s.ok()) {
    fs.Unlink(temp).IgnoreError();
    return s;
  }
  return report;
}

absl::StatusOr<ArchiveReport> ImportCacheArchive(Cache& cache, FileSystem& fs,
                                                 const std::string& path,
                                                 RecipeBook* recipes) {
  TPJIT_ASSIGN_OR_RETURN(std::string bytes, fs.ReadFile(path));
  absl::StatusOr<CacheArchiveContents> contents =
      DecodeCacheArchiveContents(bytes);
  if (!contents.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", contents.status().message()));
  }
  const std::map<std::string, std::string>* entries = &contents->entries;
  if (recipes != nullptr) {
    if (absl::Status s = RecipeBook::VerifyFiles(contents->recipe_files);
        !s.ok()) {
      return absl::DataLossError(absl::StrCat(path, ": ", s.message()));
    }
  }
  ArchiveReport report;
  report.entries = static_cast<int64_t>(entries->size());
  std::vector<std::string> added;
  for (const auto& [key, entry] : *entries) {
    if (cache.ReadVerified(key).ok()) {
      ++report.present;
      continue;
    }
    absl::Status s = cache.PutEncoded(key, entry);
    if (!s.ok()) {
      for (const std::string& k : added) cache.Remove(k).IgnoreError();
      return absl::Status(s.code(),
                          absl::StrCat("import ", key, ": ", s.message(), "; ",
                                       added.size(), " added entries removed"));
    }
    added.push_back(key);
    report.bytes += static_cast<int64_t>(entry.size());
  }
  report.added = static_cast<int64_t>(added.size());
  report.recipe_files = static_cast<int64_t>(contents->recipe_files.size());
  if (recipes != nullptr && !contents->recipe_files.empty()) {
    absl::StatusOr<RecipeBook::ImportReport> r =
        recipes->ImportFiles(contents->recipe_files);
    if (!r.ok()) {
      return absl::Status(
          r.status().code(),
          absl::StrCat("import recipes: ", r.status().message(), " (",
                       added.size(), " cache entries were added)"));
    }
    report.recipe_objects = r->objects_added;
    report.recipe_groups = r->groups_merged;
  }
  return report;
}

}  // namespace tpjit
