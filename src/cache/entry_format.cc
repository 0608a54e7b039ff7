#include "src/cache/entry_format.h"

#include <openssl/evp.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "src/cache/byte_io.h"

namespace tpjit {
namespace {

constexpr char kMagic[8] = {'T', 'P', 'J', 'I', 'T', 'C', 'E', '\0'};
constexpr size_t kChecksumOffset = 96;

std::string EncodeMetadata(const CacheMetadata& metadata) {
  std::string out;
  PutU32(&out, static_cast<uint32_t>(metadata.size()));
  for (const auto& [name, value] : metadata) {
    PutU32(&out, static_cast<uint32_t>(name.size()));
    out.append(name);
    PutU32(&out, static_cast<uint32_t>(value.size()));
    out.append(value);
  }
  return out;
}

absl::StatusOr<CacheMetadata> DecodeMetadata(absl::string_view bytes) {
  ByteReader in(bytes);
  CacheMetadata metadata;
  uint32_t count = 0;
  if (!in.U32(&count)) return absl::DataLossError("metadata: truncated count");
  for (uint32_t i = 0; i < count; ++i) {
    absl::string_view name, value;
    if (!in.LengthPrefixed(&name) || !in.LengthPrefixed(&value)) {
      return absl::DataLossError("metadata: truncated item");
    }
    metadata.emplace(name, value);
  }
  if (!in.empty()) return absl::DataLossError("metadata: trailing bytes");
  return metadata;
}

}  // namespace

absl::Status ValidateCacheKey(absl::string_view key) {
  if (key.size() != kCacheKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat("cache key \"", key.substr(0, 80), "\" is ", key.size(),
                     " characters, not ", kCacheKeyLength, " hex digits"));
  }
  for (char c : key) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cache key \"", key, "\" is not lower-case hex (SHA-256)"));
    }
  }
  return absl::OkStatus();
}

std::string EncodeCacheEntry(absl::string_view key,
                             const CacheMetadata& metadata,
                             absl::string_view payload) {
  std::string meta = EncodeMetadata(metadata);
  std::string out(kMagic, sizeof(kMagic));
  PutU32(&out, kCacheEntryFormatVersion);
  PutU32(&out, 0);
  out.append(key.data(), key.size());
  PutU64(&out, meta.size());
  PutU64(&out, payload.size());
  Sha256 sha;
  sha.Update(out);
  sha.Update(meta);
  sha.Update(payload);
  out.append(sha.Finish());
  out.append(meta);
  out.append(payload.data(), payload.size());
  return out;
}

absl::StatusOr<CacheEntry> DecodeCacheEntry(absl::string_view bytes,
                                            absl::string_view expected_key) {
  if (bytes.size() < kCacheEntryHeaderSize) {
    return absl::DataLossError(absl::StrCat("entry truncated: ", bytes.size(),
                                            " bytes, header needs ",
                                            kCacheEntryHeaderSize));
  }
  if (std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::DataLossError("entry has a bad magic number");
  }
  ByteReader in(bytes.substr(sizeof(kMagic)));
  uint32_t version = 0, reserved = 0;
  uint64_t meta_len = 0, payload_len = 0;
  absl::string_view key;
  in.U32(&version);
  in.U32(&reserved);
  in.Bytes(kCacheKeyLength, &key);
  in.U64(&meta_len);
  in.U64(&payload_len);
  if (version != kCacheEntryFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("entry format version ", version, " is not supported"));
  }
  if (!IsValidCacheKey(key)) return absl::DataLossError("entry key invalid");
  if (!expected_key.empty() && key != expected_key) {
    return absl::DataLossError(
        absl::StrCat("entry holds key ", key, ", expected ", expected_key));
  }
  uint64_t body = bytes.size() - kCacheEntryHeaderSize;
  if (meta_len > body || payload_len != body - meta_len) {
    return absl::DataLossError(
        absl::StrCat("entry length mismatch: header says ", meta_len, "+",
                     payload_len, " bytes, file has ", body));
  }
  absl::string_view meta = bytes.substr(kCacheEntryHeaderSize, meta_len);
  absl::string_view payload = bytes.substr(kCacheEntryHeaderSize + meta_len);
  Sha256 sha;
  sha.Update(bytes.substr(0, kChecksumOffset));
  sha.Update(meta);
  sha.Update(payload);
  if (sha.Finish() != bytes.substr(kChecksumOffset, 32)) {
    return absl::DataLossError("entry checksum mismatch");
  }
  CacheEntry entry;
  entry.key = std::string(key);
  auto metadata = DecodeMetadata(meta);
  if (!metadata.ok()) return metadata.status();
  entry.metadata = *std::move(metadata);
  entry.payload = std::string(payload);
  return entry;
}

}  // namespace tpjit
