// Bounds on what one request may ask of tpjitd, shared by every RPC (warm-up,
// barrier, rendezvous, compile). Each check returns INVALID_ARGUMENT whose
// message names the field and the limit, e.g.
//   "world: 2147483647 is outside 1..1024".
// Pure functions; thread-safe.
#ifndef TPJIT_SRC_COMMON_REQUEST_LIMITS_H_
#define TPJIT_SRC_COMMON_REQUEST_LIMITS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tpjit {

// Ranks of one group (a TP/EP job on one node, or a whole multi-node job
// when the daemon barrier is used across hosts).
inline constexpr int kMaxWorld = 1024;
// Group names, spec names, cache-free labels.
inline constexpr size_t kMaxNameBytes = 256;
// Free text that is only logged or echoed (spec comments).
inline constexpr size_t kMaxCommentBytes = 4096;

// `value` is at most `max_bytes` long and printable ASCII (0x20..0x7e).
// REQUIRES nothing of `value`; an empty value passes unless `required`.
absl::Status CheckName(absl::string_view field, absl::string_view value,
                       size_t max_bytes = kMaxNameBytes, bool required = false);

// 1 <= world <= max_world and 0 <= rank < world; the message starts with
// "world: " or "rank N out of range".
absl::Status CheckRankWorld(int64_t rank, int64_t world,
                            int max_world = kMaxWorld);

// A client's wait: negative is INVALID_ARGUMENT; anything above `max` is
// clamped to `max` (the server's ceiling wins over the client's wish).
absl::StatusOr<absl::Duration> ClampTimeoutMs(absl::string_view field,
                                              int64_t timeout_ms,
                                              absl::Duration max);

// `bytes` (a request's serialized size) is at most `max_bytes`.
absl::Status CheckRequestBytes(absl::string_view rpc, size_t bytes,
                               size_t max_bytes);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_REQUEST_LIMITS_H_
