// The on-disk format of one cache entry: a self-describing, self-checking
// file holding one compiled kernel (payload = cubin bytes) and its metadata.
// Pure functions, thread-safe.
//
// Format versions (a new version gets a new number and a line here):
//   1: header (128 bytes, integers little-endian)
//        0  magic "TPJITCE\0"            8 bytes
//        8  format version (1)           u32
//       12  reserved (0)                 u32
//       16  key (64 lower-case hex)      64 bytes
//       80  metadata length              u64
//       88  payload length               u64
//       96  SHA-256 over bytes [0, 96) of the header, then the metadata, then
//           the payload                  32 bytes
//      then the metadata: u32 count, then per item (sorted by name):
//           u32 name length, name, u32 value length, value
//      then the payload.
//   The checksum covers the key and both lengths, so a torn, truncated,
//   extended, bit-flipped or renamed entry is detected.
#ifndef TPJIT_SRC_CACHE_ENTRY_FORMAT_H_
#define TPJIT_SRC_CACHE_ENTRY_FORMAT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

// Small string facts about a kernel: family, kernel name, lowered name,
// compile seconds, registers, ... Names and values are arbitrary bytes.
using CacheMetadata = std::map<std::string, std::string>;

struct CacheEntry {
  std::string key;
  CacheMetadata metadata;
  std::string payload;
};

inline constexpr uint32_t kCacheEntryFormatVersion = 1;
inline constexpr size_t kCacheEntryHeaderSize = 128;
inline constexpr size_t kCacheKeyLength = 64;

// OK iff `key` is 64 lower-case hex characters (a SHA-256 digest). Keys are
// file names, so anything else (slashes, "..") is rejected.
absl::Status ValidateCacheKey(absl::string_view key);
inline bool IsValidCacheKey(absl::string_view key) {
  return ValidateCacheKey(key).ok();
}

// The bytes of an entry file. REQUIRES: IsValidCacheKey(key).
std::string EncodeCacheEntry(absl::string_view key,
                             const CacheMetadata& metadata,
                             absl::string_view payload);

// Parses and verifies an entry file. DATA_LOSS names what is wrong (bad
// magic, unknown version, truncated, checksum mismatch, ...). With a
// non-empty `expected_key`, an entry for another key is DATA_LOSS too.
absl::StatusOr<CacheEntry> DecodeCacheEntry(
    absl::string_view bytes, absl::string_view expected_key = "");

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_ENTRY_FORMAT_H_
