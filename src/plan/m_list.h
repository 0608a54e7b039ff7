// M lists: which token counts a warm-up must cover, per the policies of
// docs/design.md "Spec". Pure functions, thread-safe.
#ifndef TPJIT_SRC_PLAN_M_LIST_H_
#define TPJIT_SRC_PLAN_M_LIST_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "tpjit/v1/spec.pb.h"

namespace tpjit {

inline constexpr int64_t kMaxM = 131072;

// The largest M the policy serves: FULL: 16384, or 65536 when
// chunked_prefill_size < 1, or 2 x size when size > 8192, capped at 131072.
// FAST: min(size, 32768), or 16384 when size < 1. EXPLICIT: the largest value.
int64_t PolicyMMax(const tpjit::v1::MPolicy& policy);

// The sorted, distinct M values of the policy. FAST: 1..1024, then from 1024 a
// step of 2 that doubles with each power-of-two range, up to PolicyMMax, plus
// that maximum. EXPLICIT values must lie in 1..131072.
absl::StatusOr<std::vector<int64_t>> PolicyMValues(
    const tpjit::v1::MPolicy& policy);

// Keeps the multiples of 128 (what contig-grouped families run with).
std::vector<int64_t> KeepMultiplesOf128(const std::vector<int64_t>& values);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_M_LIST_H_
