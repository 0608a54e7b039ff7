#include "src/common/request_limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tpjit {

absl::Status CheckName(absl::string_view field, absl::string_view value,
                       size_t max_bytes, bool required) {
  if (required && value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": must not be empty"));
  }
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", value.size(), " bytes exceeds the limit of ",
                     max_bytes, " bytes"));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: byte 0x%02x at offset %d is not printable ASCII (0x20..0x7e)",
          field, c, i));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckRankWorld(int64_t rank, int64_t world, int max_world) {
  if (world < 1 || world > max_world) {
    return absl::InvalidArgumentError(
        absl::StrCat("world: ", world, " is outside 1..", max_world));
  }
  if (rank < 0 || rank >= world) {
    return absl::InvalidArgumentError(
        absl::StrCat("rank ", rank, " out of range for world ", world,
                     " (want 0..", world - 1, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> ClampTimeoutMs(absl::string_view field,
                                              int64_t timeout_ms,
                                              absl::Duration max) {
  if (timeout_ms < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", timeout_ms, " is negative"));
  }
  return std::min(absl::Milliseconds(timeout_ms), max);
}

absl::Status CheckRequestBytes(absl::string_view rpc, size_t bytes,
                               size_t max_bytes) {
  if (bytes <= max_bytes) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(rpc, ": request of ", bytes, " bytes exceeds the limit of ",
                   max_bytes, " bytes for this RPC"));
}

}  // namespace tpjit
