#include "src/cache/byte_io.h"

#include <openssl/evp.h>

namespace tpjit {

void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}

bool ByteReader::U32(uint32_t* v) {
  if (rest_.size() < 4) return false;
  *v = 0;
  for (int i = 0; i < 4; ++i) {
    *v |= static_cast<uint32_t>(static_cast<unsigned char>(rest_[i]))
          << (8 * i);
  }
  rest_.remove_prefix(4);
  return true;
}

bool ByteReader::U64(uint64_t* v) {
  if (rest_.size() < 8) return false;
  *v = 0;
  for (int i = 0; i < 8; ++i) {
    *v |= static_cast<uint64_t>(static_cast<unsigned char>(rest_[i]))
          << (8 * i);
  }
  rest_.remove_prefix(8);
  return true;
}

bool ByteReader::Bytes(uint64_t n, absl::string_view* out) {
  if (rest_.size() < n) return false;
  *out = rest_.substr(0, n);
  rest_.remove_prefix(n);
  return true;
}

bool ByteReader::LengthPrefixed(absl::string_view* out) {
  ByteReader saved = *this;
  uint32_t n = 0;
  if (U32(&n) && Bytes(n, out)) return true;
  *this = saved;
  return false;
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(absl::string_view data) {
  EVP_DigestUpdate(ctx_, data.data(), data.size());
}

std::string Sha256::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  return std::string(reinterpret_cast<const char*>(md), len);
}

}  // namespace tpjit
