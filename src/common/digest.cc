#include "src/common/digest.h"

#include <openssl/evp.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace tpjit {

std::string Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), len));
}

CanonicalEncoder& CanonicalEncoder::Add(absl::string_view name,
                                        absl::string_view value) {
  absl::StrAppend(&bytes_, name.size(), ":", name, "=s", value.size(), ":",
                  value, ";");
  return *this;
}

CanonicalEncoder& CanonicalEncoder::Add(absl::string_view name, int64_t value) {
  std::string v = absl::StrCat(value);
  absl::StrAppend(&bytes_, name.size(), ":", name, "=i", v.size(), ":", v, ";");
  return *this;
}

}  // namespace tpjit
