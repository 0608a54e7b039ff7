// SHA-256 digests and the canonical encoding that keys are hashed over.
// Thread-compatible: one Digester per thread.
#ifndef TPJIT_SRC_COMMON_DIGEST_H_
#define TPJIT_SRC_COMMON_DIGEST_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tpjit {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(absl::string_view data);

// Builds an unambiguous byte string from typed, named fields: each field is
// written as <name>=<type tag><length>:<bytes>; so ("ab","c") and ("a","bc")
// never collide. Field order is part of the encoding.
class CanonicalEncoder {
 public:
  CanonicalEncoder& Add(absl::string_view name, absl::string_view value);
  CanonicalEncoder& Add(absl::string_view name, int64_t value);
  const std::string& bytes() const { return bytes_; }
  std::string Sha256() const { return Sha256Hex(bytes_); }

 private:
  std::string bytes_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_DIGEST_H_
