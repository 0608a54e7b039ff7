// Little-endian integer encoding, a bounds-checked reader and an incremental
// SHA-256 (OpenSSL), shared by the cache entry and archive formats.
// Thread-compatible.
#ifndef TPJIT_SRC_CACHE_BYTE_IO_H_
#define TPJIT_SRC_CACHE_BYTE_IO_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace tpjit {

void PutU32(std::string* out, uint32_t v);
void PutU64(std::string* out, uint64_t v);

// Reads from a byte string; every read returns false (and reads nothing)
// when too few bytes remain.
class ByteReader {
 public:
  explicit ByteReader(absl::string_view bytes) : rest_(bytes) {}
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool Bytes(uint64_t n, absl::string_view* out);
  // A u32 length, then that many bytes.
  bool LengthPrefixed(absl::string_view* out);
  bool empty() const { return rest_.empty(); }
  size_t remaining() const { return rest_.size(); }

 private:
  absl::string_view rest_;
};

// Incremental SHA-256; Finish() returns the 32 raw bytes.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(absl::string_view data);
  std::string Finish();

 private:
  EVP_MD_CTX* ctx_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_CACHE_BYTE_IO_H_
