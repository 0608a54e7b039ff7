#include "src/plan/family.h"

#include <algorithm>
#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace tpjit {
namespace {

// Hopper machine constants of the cost model (H100 SXM, mma.sync kernels).
constexpr double kBf16FlopsPerNsPerSm = 5000.0;  // ~660 TFLOP/s on 132 SMs
constexpr double kDramBytesPerNs = 3000.0;       // HBM3, ~3.0 TB/s
constexpr double kDramBytesPerNsPerSm = 35.0;    // what one SM can pull
constexpr double kL2BytesPerNs = 10000.0;        // L2 hit bandwidth
constexpr double kWaveOverheadNs = 1500.0;       // prologue + epilogue
constexpr int kMaxStages = 6;

constexpr int kBlockMs[] = {16, 32, 64, 128};
constexpr int kBlockNs[] = {64, 128};

int CeilDiv(int64_t a, int64_t b) { return static_cast<int>((a + b - 1) / b); }

// Warp grid for a tile: one warp row per 16 rows up to 4 (8 warps at 128).
void SetWarps(KernelConfig& c) {
  c.warps_m = c.block_m == 16 ? 1 : (c.block_m == 128 ? 4 : 2);
  c.warps_n = c.block_m == 16 ? 4 : 2;
}

// Pipeline depth: small tiles are latency-bound and want deeper pipelines;
// bounded by shared memory and by the number of K steps.
int ChooseStages(const FamilyInfo& info, const Problem& p, KernelConfig c) {
  const int k_steps = std::max(1, p.k / info.block_k);
  const int want = c.block_m <= 32 ? kMaxStages : 4;
  int stages = std::min(want, std::max(2, k_steps));
  c.stages = stages;
  while (stages > 2 &&
         SharedMemoryBytes(info, c) > MaxSharedMemoryBytes(p.arch)) {
    c.stages = --stages;
  }
  return stages;
}

// Rows of the output the kernel covers in all (all groups).
int64_t TotalRows(const FamilyInfo& info, const Problem& p) {
  return info.group == GroupKind::kMasked ? p.m * p.groups : p.m;
}

int64_t Tiles(const FamilyInfo& info, const Problem& p, const KernelConfig& c) {
  int64_t m_tiles = info.group == GroupKind::kMasked
                        ? int64_t{p.groups} * CeilDiv(p.m, c.block_m)
                        : CeilDiv(p.m, c.block_m);
  return m_tiles * CeilDiv(p.n, c.block_n);
}

}  // namespace

const std::vector<FamilyInfo>& AllFamilies() {
  static const auto* families = new std::vector<FamilyInfo>{
      {Family::kFp8GemmNt, "fp8_gemm_nt", true, false, GroupKind::kNone, 128,
       1},
      {Family::kFp8GroupedGemmNtContig, "fp8_grouped_gemm_nt_contig", true,
       false, GroupKind::kContig, 128, 1},
      {Family::kFp8GroupedGemmNtMasked, "fp8_grouped_gemm_nt_masked", true,
       false, GroupKind::kMasked, 128, 1},
      {Family::kBf16GemmNt, "bf16_gemm_nt", false, false, GroupKind::kNone, 64,
       2},
      {Family::kBf16GroupedGemmNtContig, "bf16_grouped_gemm_nt_contig", false,
       false, GroupKind::kContig, 64, 2},
      {Family::kBf16GroupedGemmNtMasked, "bf16_grouped_gemm_nt_masked", false,
       false, GroupKind::kMasked, 64, 2},
      {Family::kBf16GemmNtF32, "bf16_gemm_nt_f32", false, true,
       GroupKind::kNone, 64, 2},
  };
  return *families;
}

const FamilyInfo& Info(Family family) {
  return AllFamilies()[static_cast<int>(family)];
}

absl::StatusOr<Family> FamilyFromId(absl::string_view id) {
  for (const FamilyInfo& info : AllFamilies()) {
    if (info.id == id) return info.family;
  }
  std::string known;
  for (const FamilyInfo& info : AllFamilies()) {
    absl::StrAppend(&known, known.empty() ? "" : ", ", info.id);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown kernel family \"", id, "\" (known: ", known, ")"));
}

std::string ToString(const KernelConfig& c) {
  return absl::StrFormat("bm%d_bn%d_bk%d_s%d_w%dx%d", c.block_m, c.block_n,
                         c.block_k, c.stages, c.warps_m, c.warps_n);
}

int SharedMemoryBytes(const FamilyInfo& info, const KernelConfig& c) {
  int per_stage = (c.block_m + c.block_n) * c.block_k * info.operand_bytes;
  if (info.fp8) per_stage += c.block_m * 4;  // A scales, one float per row
  return per_stage * c.stages;
}

int MaxSharedMemoryBytes(absl::string_view arch) {
  if (arch.substr(0, 5) == "sm_90" || arch.substr(0, 5) == "sm_10") {
    return 227 * 1024;
  }
  return 99 * 1024;  // sm_80/86/89 opt-in limits are 163/99/99 KiB
}

// The cost model: a roofline per configuration.
//  compute = waves * (2 * bm * bn * K) / (rate * eff): waves = ceil(tiles /
//    SMs) counts wave quantisation; eff = min(1, (bm*bn/(bm+bn)) / 64) is the
//    operand reuse of the tile (a 128x128 tile runs at peak; a 16-row tile at
//    a fifth); fp8 runs at twice the bf16 rate.
//  memory = max(DRAM bytes / min(HBM, active SMs * per-SM bandwidth),
//               L2 bytes / L2 bandwidth): every operand comes from DRAM once;
//    A is re-read from L2 once per column of tiles, B once per row of tiles.
//    Few active CTAs cannot pull full HBM bandwidth: this favours small tiles
//    at small M.
//  cost = max(compute, memory) + waves * fixed per-wave overhead.
// The cheapest configuration wins; among equal costs (memory-bound small M)
// the one with the least padded MMA work, then the larger tile.
double ModelCost(const FamilyInfo& info, const Problem& p,
                 const KernelConfig& c) {
  const int64_t tiles = Tiles(info, p, c);
  const int64_t waves = (tiles + p.num_sms - 1) / p.num_sms;
  const double reuse = 1.0 * c.block_m * c.block_n / (c.block_m + c.block_n);
  const double eff = std::min(1.0, reuse / 64.0);
  const double rate = kBf16FlopsPerNsPerSm * (info.fp8 ? 2.0 : 1.0);
  const double compute =
      waves * (2.0 * c.block_m * c.block_n * p.k) / (rate * eff);
  const int64_t rows = TotalRows(info, p);
  const int b_mats = info.group == GroupKind::kNone ? 1 : p.groups;
  const double a_bytes = 1.0 * rows * p.k * info.operand_bytes;
  const double b_bytes = 1.0 * b_mats * p.n * p.k * info.operand_bytes;
  const double d_bytes = 1.0 * rows * p.n * (info.f32_out ? 4 : 2);
  const double active = std::min<int64_t>(tiles, p.num_sms);
  const double dram_bw =
      std::min(kDramBytesPerNs, active * kDramBytesPerNsPerSm);
  const double dram = (a_bytes + b_bytes + d_bytes) / dram_bw;
  const int m_tiles_per_b = CeilDiv(
      info.group == GroupKind::kContig ? p.m / std::max(1, b_mats) : p.m,
      c.block_m);
  const double l2 = (a_bytes * CeilDiv(p.n, c.block_n) +
                     b_bytes * std::max(1, m_tiles_per_b)) /
                    kL2BytesPerNs;
  return std::max(compute, std::max(dram, l2)) + waves * kWaveOverheadNs;
}

KernelConfig ChooseConfig(const FamilyInfo& info, const Problem& p) {
  KernelConfig best;
  double best_cost = 0;
  int64_t best_waste = 0;
  for (int bm : kBlockMs) {
    // Contig segments are aligned to 128 rows: one tile never spans experts.
    if (info.group == GroupKind::kContig && bm != 128) continue;
    for (int bn : kBlockNs) {
      KernelConfig c;
      c.block_m = bm;
      c.block_n = bn;
      c.block_k = info.block_k;
      SetWarps(c);
      c.stages = ChooseStages(info, p, c);
      const double cost = ModelCost(info, p, c);
      const int64_t waste = Tiles(info, p, c) * bm * bn;
      const bool tie =
          cost <= best_cost * (1 + 1e-9) && cost >= best_cost * (1 - 1e-9);
      const bool better =
          best.block_m == 0 || cost < best_cost * (1 - 1e-9) ||
          (tie && waste < best_waste) ||
          (tie && waste == best_waste && bm * bn > best.block_m * best.block_n);
      if (better) {
        best = c;
        best_cost = cost;
        best_waste = waste;
      }
    }
  }
  return best;
}

double EstimateCompileSeconds(const FamilyInfo& info, const KernelConfig& c) {
  // NVRTC time grows with the unrolled MMA count per warp and with stages.
  const double mma_per_warp = 1.0 * (c.block_m / c.warps_m) *
                              (c.block_n / c.warps_n) * c.block_k /
                              (16.0 * 8 * (info.fp8 ? 32 : 16));
  return 0.15 + 0.004 * mma_per_warp + 0.01 * c.stages +
         (info.group == GroupKind::kNone ? 0.0 : 0.03);
}

int MAlignment(Family family) {
  return Info(family).group == GroupKind::kContig ? 128 : 1;
}

}  // namespace tpjit
