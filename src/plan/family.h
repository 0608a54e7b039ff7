// Kernel families: the seven GEMM kinds tpjit compiles, the configuration
// space of each (the template parameters of its kernel in kernels/), and the
// heuristic that maps a problem (M, N, K, groups, SMs) to one configuration.
// Everything here is pure and thread-safe.
#ifndef TPJIT_SRC_PLAN_FAMILY_H_
#define TPJIT_SRC_PLAN_FAMILY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tpjit {

enum class Family {
  kFp8GemmNt,
  kFp8GroupedGemmNtContig,
  kFp8GroupedGemmNtMasked,
  kBf16GemmNt,
  kBf16GroupedGemmNtContig,
  kBf16GroupedGemmNtMasked,
  kBf16GemmNtF32,
};

enum class GroupKind { kNone, kContig, kMasked };

// What a family is: its id, operand types and grouping.
struct FamilyInfo {
  Family family;
  absl::string_view id;  // e.g. "fp8_gemm_nt"
  bool fp8;              // e4m3 operands with block scales (else bf16)
  bool f32_out;          // writes fp32 (else bf16)
  GroupKind group;
  int block_k;        // K step of one pipeline stage
  int operand_bytes;  // bytes per A/B element
};

// All seven families, in canonical order.
const std::vector<FamilyInfo>& AllFamilies();
const FamilyInfo& Info(Family family);
absl::StatusOr<Family> FamilyFromId(absl::string_view id);

// The M alignment of a family's shapes: M is rounded up to a multiple of it
// before a plan or a manifest is looked up (128 for contig-grouped families,
// whose row counts are padded per expert; 1 otherwise). Manifests carry it
// per shape (ManifestShape.m_alignment).
int MAlignment(Family family);

// One point of a family's configuration space; these are the template
// parameters of the family's kernel (see kernels/README.md).
//   block_m x block_n: output tile of one CTA; block_k: K per stage;
//   stages: cp.async pipeline depth; warps_m x warps_n: warp grid, each warp
//   owning a (block_m / warps_m) x (block_n / warps_n) sub-tile.
struct KernelConfig {
  int block_m = 0;
  int block_n = 0;
  int block_k = 0;
  int stages = 0;
  int warps_m = 0;
  int warps_n = 0;

  int threads() const { return 32 * warps_m * warps_n; }
  friend bool operator==(const KernelConfig&, const KernelConfig&) = default;
  friend auto operator<=>(const KernelConfig&, const KernelConfig&) = default;
};

std::string ToString(const KernelConfig& config);

// Dynamic shared memory (bytes) the family's kernel needs for `config`: the
// A and B stage buffers plus, for fp8, the per-stage A scales.
int SharedMemoryBytes(const FamilyInfo& info, const KernelConfig& config);

// The largest dynamic shared memory a CTA may use on `arch` (227 KiB on sm_90).
int MaxSharedMemoryBytes(absl::string_view arch);

// A GEMM problem the heuristic sees. For masked families `m` is the expected
// rows per group; for contig families it is the total rows (multiple of 128).
struct Problem {
  int64_t m = 0;
  int n = 0;
  int k = 0;
  int groups = 1;
  int num_sms = 132;
  std::string arch = "sm_90a";
};

// The configuration the family's kernel runs `problem` with. Deterministic
// and total for m in 1..131072. The cost model is described in family.cc.
KernelConfig ChooseConfig(const FamilyInfo& info, const Problem& problem);

// The modelled run time (arbitrary units) of `config` on `problem`; exposed
// for tests and for `tpjit plan --explain`.
double ModelCost(const FamilyInfo& info, const Problem& problem,
                 const KernelConfig& config);

// Estimated NVRTC compile seconds of one kernel (for shard balancing).
double EstimateCompileSeconds(const FamilyInfo& info,
                              const KernelConfig& config);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_FAMILY_H_
