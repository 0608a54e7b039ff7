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
    const std::map<std::string, std::string>& entries) {
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kVersion);
  PutU32(&out, static_cast<uint32_t>(entries.size()));
  for (const auto& [key, bytes] : entries) {
    PutU64(&out, bytes.size());
    out.append(ShaOf(bytes));
    out.append(bytes);
  }
  std::string whole = ShaOf(out);
  out.append(kTrailer, sizeof(kTrailer));
  out.append(whole);
  return out;
}

absl::StatusOr<std::map<std::string, std::string>> DecodeCacheArchive(
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
  if (version != kVersion) {
    return Bad(absl::StrCat("format version ", version, " is not supported"));
  }
  std::map<std::string, std::string> entries;
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
  if (!in.empty()) return Bad("unexpected bytes after the last entry");
  return entries;
}

absl::StatusOr<ArchiveReport> ExportCacheArchive(
    Cache& cache, const std::vector<std::string>& keys, FileSystem& fs,
    const std::string& out_path) {
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
  const std::string temp = absl::StrCat(out_path, ".tmp-export");
  absl::Status s = WriteWholeFile(fs, temp, EncodeCacheArchive(entries),
                                  /*exclusive=*/false);
  if (s.ok()) s = fs.Rename(temp, out_path);
  if (!s.ok()) {
    fs.Unlink(temp).IgnoreError();
    return s;
  }
  return report;
}

absl::StatusOr<ArchiveReport> ImportCacheArchive(Cache& cache, FileSystem& fs,
                                                 const std::string& path) {
  TPJIT_ASSIGN_OR_RETURN(std::string bytes, fs.ReadFile(path));
  absl::StatusOr<std::map<std::string, std::string>> entries =
      DecodeCacheArchive(bytes);
  if (!entries.ok()) {
    return absl::DataLossError(
        absl::StrCat(path, ": ", entries.status().message()));
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
  return report;
}

}  // namespace tpjit
