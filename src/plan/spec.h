// Parsing and validating warm-up specs (the JSON form of tpjit.v1.WarmupSpec).
// Errors are INVALID_ARGUMENT and name the offending field by its JSON path.
#ifndef TPJIT_SRC_PLAN_SPEC_H_
#define TPJIT_SRC_PLAN_SPEC_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "tpjit/v1/spec.pb.h"

namespace tpjit {

// Limits that keep one request bounded.
inline constexpr int kMaxShapes = 512;
inline constexpr int kMaxDim = 1 << 20;
inline constexpr int kMaxGroups = 1024;
// Shapes x M values of the policy: what planning iterates over (about a
// second per million on one core). The shipped specs need ~0.2 million.
inline constexpr int64_t kMaxPlanWork = int64_t{1} << 22;

// Parses JSON (unknown fields are errors) and validates the result.
absl::StatusOr<tpjit::v1::WarmupSpec> ParseSpecJson(absl::string_view json);

// Checks every field; the message names the first bad one, e.g.
// "shapes[3].k: 7000 is not a multiple of 128 (fp8_gemm_nt's block K)".
absl::Status ValidateSpec(const tpjit::v1::WarmupSpec& spec);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_SPEC_H_
