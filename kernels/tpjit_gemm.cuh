// tpjit GEMM core: one cp.async-pipelined mma.sync main loop shared by all
// seven kernel families (see kernels/README.md). Compiled by NVRTC only: no
// host or CUDA headers; bf16 and e4m3 values are handled as raw bits.
//
// Shared-memory layout (dynamic, per stage s in [0, STAGES)):
//   [s * (BM + BN) * 128, ...)      A tile, BM rows x 128 bytes (BK elements)
//   [... + BM * 128, ...)           B tile, BN rows x 128 bytes
// then, fp8 only, STAGES * BM floats of A scales (one per row and stage).
// Each 128-byte row is 8 16-byte chunks; chunk c of row r lives at chunk
// c ^ (r & 7) (XOR swizzle: conflict-free ldmatrix without padding). The
// total equals SharedMemoryBytes() in src/plan/family.cc.
#pragma once

namespace tpjit_kernels {

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

// The one kernel parameter of every family (mirrored by the host launcher in
// client/cuda/launch.h; keep the two in sync).
struct GemmArgs {
  const void* a;      // A: [M, K] (masked: [G, M_max, K]), K-major
  const float* sa;    // fp8: A scales [M, K/128] (masked: [G, M_max, K/128])
  const void* b;      // B: [N, K] (grouped: [G, N, K]), K-major
  const float* sb;    // fp8: B scales [ceil(N/128), K/128] (grouped: [G, ...])
  void* d;            // D: [M, N] (masked: [G, M_max, N]), bf16 or fp32
  const int* groups;  // contig: layout[M]; masked: masked_m[G]; else unused
  int m;              // M (contig: M_total; masked: M_max)
  int reserved;
};

enum { kModeNone = 0, kModeContig = 1, kModeMasked = 2 };

__device__ __forceinline__ u32 SmemAddr(const void* p) {
  return static_cast<u32>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void CpAsync16(u32 dst, const void* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst),
               "l"(src), "r"(ok ? 16 : 0));
}

__device__ __forceinline__ void CpAsync4(u32 dst, const void* src, bool ok) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(dst),
               "l"(src), "r"(ok ? 4 : 0));
}

__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::);
}

template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void LdMatrixX4(u32 addr, u32& r0, u32& r1, u32& r2,
                                           u32& r3) {
  asm volatile(
      "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
      : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
      : "r"(addr));
}

// D += A * B for one 16x8 tile; 32 bytes of K (bf16: k16, e4m3: k32).
template <bool FP8>
__device__ __forceinline__ void Mma(float* c, const u32* a, const u32* b) {
  if (FP8) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
  }
}

// Two floats -> packed bf16x2 (round to nearest even), lo in the low half.
__device__ __forceinline__ u32 PackBf16x2(float lo, float hi) {
  u32 r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

// Byte offset of 16-byte chunk `c` of row `r` in a swizzled 128-byte-row tile.
__device__ __forceinline__ int Swz(int r, int c) {
  return r * 128 + ((c ^ (r & 7)) << 4);
}

template <bool FP8, bool F32OUT, int MODE, int N, int K, int G, int BM, int BN,
          int BK, int STAGES, int WM, int WN>
struct Gemm {
  static constexpr int kThreads = WM * WN * 32;
  static constexpr int kElemBytes = FP8 ? 1 : 2;
  static constexpr int kRowBytes = BK * kElemBytes;
  static constexpr int kWarpM = BM / WM;
  static constexpr int kWarpN = BN / WN;
  static constexpr int kMi = kWarpM / 16;
  static constexpr int kNi = kWarpN / 8;
  static constexpr int kKt = K / BK;
  static constexpr int kATile = BM * 128;
  static constexpr int kStageBytes = (BM + BN) * 128;
  static constexpr int kKBlocks = K / 128;          // fp8 scale blocks
  static constexpr int kNBlocks = (N + 127) / 128;  // fp8 scale blocks
  static_assert(kRowBytes == 128, "a stage row must be 128 bytes");
  static_assert(K % BK == 0, "K must be a multiple of BK");
  static_assert(N % 8 == 0, "N must be a multiple of 8");
  static_assert(BM % (16 * WM) == 0 && BN % (16 * WN) == 0, "warp tiling");
  static_assert(STAGES >= 2, "at least two stages");
  static_assert(!FP8 || BN <= 128, "fp8: one B scale block per tile");

  // Where this CTA's problem lives after resolving its group.
  struct Tile {
    const u8* a;
    const float* sa;
    const u8* b;
    const float* sb;
    u64 d_row0;  // row index into D of A's row 0
    int m0, n0, valid_m, group;
  };

  // Returns false when the CTA has nothing to do.
  static __device__ __forceinline__ bool Resolve(const GemmArgs& args,
                                                 Tile& t) {
    t.n0 = blockIdx.x * BN;
    t.m0 = blockIdx.y * BM;
    t.valid_m = args.m;
    t.group = 0;
    t.d_row0 = 0;
    t.a = static_cast<const u8*>(args.a);
    t.sa = args.sa;
    if (MODE == kModeMasked) {
      t.group = blockIdx.z;
      const int mm = args.groups[t.group];
      t.valid_m = mm < args.m ? mm : args.m;
      t.d_row0 = static_cast<u64>(t.group) * args.m;
      t.a += t.d_row0 * K * kElemBytes;
      if (FP8) t.sa += t.d_row0 * kKBlocks;
    }
    if (t.m0 >= t.valid_m) return false;
    if (MODE == kModeContig) {
      t.group = args.groups[t.m0];
      if (t.group < 0 || t.group >= G) return false;
    }
    t.b = static_cast<const u8*>(args.b) +
          static_cast<u64>(t.group) * N * K * kElemBytes;
    t.sb = args.sb;
    if (FP8)
      t.sb += (static_cast<u64>(t.group) * kNBlocks + t.n0 / 128) * kKBlocks;
    return true;
  }

  // Copies K tile `kt` of A, B (and fp8 A scales) into stage `stage`. Thread
  // `tid` copies 16-byte chunk tid % 8 of rows tid / 8 + j * (kThreads / 8);
  // kThreads / 8 is a multiple of 8, so the swizzle is the same for all j.
  static __device__ __forceinline__ void LoadStage(const Tile& t, u8* smem,
                                                   int stage, int kt) {
    constexpr int kRowsPerPass = kThreads / 8;
    constexpr u64 kRowStride = static_cast<u64>(K) * kElemBytes;
    const int tid = threadIdx.x;
    const int r0 = tid >> 3, c = tid & 7;
    const u32 a_s = SmemAddr(smem + stage * kStageBytes) + Swz(r0, c);
    const u32 b_s = a_s + kATile;
    const u64 off = static_cast<u64>(kt) * 128 + c * 16;
    const u8* a = t.a + (t.m0 + r0) * kRowStride + off;
    const u8* b = t.b + (t.n0 + r0) * kRowStride + off;
#pragma unroll
    for (int j = 0; j < (BM + kRowsPerPass - 1) / kRowsPerPass; ++j) {
      const int r = r0 + j * kRowsPerPass;
      if (BM % kRowsPerPass != 0 && r >= BM) break;
      const bool ok = t.m0 + r < t.valid_m;
      CpAsync16(a_s + j * kRowsPerPass * 128,
                ok ? a + j * kRowsPerPass * kRowStride : t.a, ok);
    }
#pragma unroll
    for (int j = 0; j < (BN + kRowsPerPass - 1) / kRowsPerPass; ++j) {
      const int r = r0 + j * kRowsPerPass;
      if (BN % kRowsPerPass != 0 && r >= BN) break;
      const bool ok = t.n0 + r < N;
      CpAsync16(b_s + j * kRowsPerPass * 128,
                ok ? b + j * kRowsPerPass * kRowStride : t.b, ok);
    }
    if (FP8) {
      const u32 s_s = SmemAddr(smem + STAGES * kStageBytes) + stage * BM * 4;
#pragma unroll
      for (int i = tid; i < BM; i += kThreads) {
        const bool ok = t.m0 + i < t.valid_m;
        const float* src =
            t.sa + static_cast<u64>(ok ? t.m0 + i : 0) * kKBlocks + kt;
        CpAsync4(s_s + i * 4, src, ok);
      }
    }
  }

  // acc += A_stage * B_stage for this warp's sub-tile.
  static __device__ __forceinline__ void ComputeStage(
      const u8* smem, int stage, int wm, int wn, int lane,
      float (&acc)[kMi][kNi][4]) {
    const u32 a_s = SmemAddr(smem + stage * kStageBytes);
    const u32 b_s = a_s + kATile;
#pragma unroll
    for (int ks = 0; ks < 4; ++ks) {
      u32 af[kMi][4];
#pragma unroll
      for (int mi = 0; mi < kMi; ++mi) {
        const int r = wm * kWarpM + mi * 16 + (lane & 15);
        LdMatrixX4(a_s + Swz(r, 2 * ks + (lane >> 4)), af[mi][0], af[mi][1],
                   af[mi][2], af[mi][3]);
      }
      // B fragments two n8 tiles at a time keep register pressure low.
#pragma unroll
      for (int nj = 0; nj < kNi / 2; ++nj) {
        u32 bf[2][2];
        const int r = wn * kWarpN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
        LdMatrixX4(b_s + Swz(r, 2 * ks + ((lane >> 3) & 1)), bf[0][0], bf[0][1],
                   bf[1][0], bf[1][1]);
#pragma unroll
        for (int mi = 0; mi < kMi; ++mi) {
          Mma<FP8>(acc[mi][2 * nj], af[mi], bf[0]);
          Mma<FP8>(acc[mi][2 * nj + 1], af[mi], bf[1]);
        }
      }
    }
  }

  // fp8: one 16-row block at a time, so the un-scaled partial sums of the K
  // block need only kNi x 4 registers: acc[mi] += (A_mi * B) * sa[row] * sb.
  static __device__ __forceinline__ void ComputeStageFp8(
      const u8* smem, int stage, float sb, int wm, int wn, int lane,
      float (&acc)[kMi][kNi][4]) {
    const u32 a_s = SmemAddr(smem + stage * kStageBytes);
    const u32 b_s = a_s + kATile;
    const float* scales =
        reinterpret_cast<const float*>(smem + STAGES * kStageBytes) +
        stage * BM;
#pragma unroll
    for (int mi = 0; mi < kMi; ++mi) {
      float part[kNi][4];
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni)
        part[ni][0] = part[ni][1] = part[ni][2] = part[ni][3] = 0.f;
#pragma unroll 1
      for (int ks = 0; ks < 4; ++ks) {
        u32 af[4];
        const int ra = wm * kWarpM + mi * 16 + (lane & 15);
        LdMatrixX4(a_s + Swz(ra, 2 * ks + (lane >> 4)), af[0], af[1], af[2],
                   af[3]);
#pragma unroll
        for (int nj = 0; nj < kNi / 2; ++nj) {
          u32 bf[2][2];
          const int r = wn * kWarpN + nj * 16 + (lane & 7) + ((lane >> 4) << 3);
          LdMatrixX4(b_s + Swz(r, 2 * ks + ((lane >> 3) & 1)), bf[0][0],
                     bf[0][1], bf[1][0], bf[1][1]);
          Mma<true>(part[2 * nj], af, bf[0]);
          Mma<true>(part[2 * nj + 1], af, bf[1]);
        }
      }
      const int r = wm * kWarpM + mi * 16 + (lane >> 2);
      const float lo = scales[r] * sb, hi = scales[r + 8] * sb;
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni) {
        acc[mi][ni][0] += part[ni][0] * lo;
        acc[mi][ni][1] += part[ni][1] * lo;
        acc[mi][ni][2] += part[ni][2] * hi;
        acc[mi][ni][3] += part[ni][3] * hi;
      }
    }
  }

  // fp8: acc += part * sa[row] * sb for the K block just computed.
  static __device__ __forceinline__ void ScaleAdd(const u8* smem, int stage,
                                                  float sb, int wm, int lane,
                                                  float (&part)[kMi][kNi][4],
                                                  float (&acc)[kMi][kNi][4]) {
    const float* s =
        reinterpret_cast<const float*>(smem + STAGES * kStageBytes) +
        stage * BM;
#pragma unroll
    for (int mi = 0; mi < kMi; ++mi) {
      const int r = wm * kWarpM + mi * 16 + (lane >> 2);
      const float lo = s[r] * sb, hi = s[r + 8] * sb;
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni) {
        acc[mi][ni][0] += part[mi][ni][0] * lo;
        acc[mi][ni][1] += part[mi][ni][1] * lo;
        acc[mi][ni][2] += part[mi][ni][2] * hi;
        acc[mi][ni][3] += part[mi][ni][3] * hi;
        part[mi][ni][0] = part[mi][ni][1] = part[mi][ni][2] = part[mi][ni][3] =
            0.f;
      }
    }
  }

  static __device__ __forceinline__ bool RowOk(const GemmArgs& args,
                                               const Tile& t, int row) {
    if (row >= t.valid_m) return false;
    if (MODE == kModeContig) return __ldg(args.groups + row) == t.group;
    return true;
  }

  static __device__ __forceinline__ void Store(const GemmArgs& args,
                                               const Tile& t, int wm, int wn,
                                               int lane,
                                               float (&acc)[kMi][kNi][4]) {
#pragma unroll
    for (int mi = 0; mi < kMi; ++mi) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = t.m0 + wm * kWarpM + mi * 16 + (lane >> 2) + h * 8;
        if (!RowOk(args, t, row)) continue;
        const u64 base = (t.d_row0 + row) * N;
#pragma unroll
        for (int ni = 0; ni < kNi; ++ni) {
          const int col = t.n0 + wn * kWarpN + ni * 8 + (lane & 3) * 2;
          if (col >= N) continue;
          const float x = acc[mi][ni][2 * h], y = acc[mi][ni][2 * h + 1];
          if (F32OUT) {
            float2 v;
            v.x = x;
            v.y = y;
            *reinterpret_cast<float2*>(static_cast<float*>(args.d) + base +
                                       col) = v;
          } else {
            *reinterpret_cast<u32*>(static_cast<u16*>(args.d) + base + col) =
                PackBf16x2(x, y);
          }
        }
      }
    }
  }

  static __device__ __forceinline__ void Run(const GemmArgs& args) {
    extern __shared__ __align__(128) u8 smem[];
    Tile t;
    if (!Resolve(args, t)) return;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int wm = warp / WN, wn = warp % WN;
    float acc[kMi][kNi][4];
    float part[kMi][kNi][4];
#pragma unroll
    for (int mi = 0; mi < kMi; ++mi)
#pragma unroll
      for (int ni = 0; ni < kNi; ++ni)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[mi][ni][j] = part[mi][ni][j] = 0.f;

#pragma unroll
    for (int s = 0; s < STAGES - 1; ++s) {
      if (s < kKt) LoadStage(t, smem, s, s);
      CpAsyncCommit();
    }
    for (int kt = 0; kt < kKt; ++kt) {
      CpAsyncWait<STAGES - 2>();
      __syncthreads();
      const int next = kt + STAGES - 1;
      if (next < kKt) LoadStage(t, smem, next % STAGES, next);
      CpAsyncCommit();
      const int stage = kt % STAGES;
      if (FP8) {
        const float sb = __ldg(t.sb + kt);
        ComputeStageFp8(smem, stage, sb, wm, wn, lane, acc);
      } else {
        ComputeStage(smem, stage, wm, wn, lane, acc);
      }
    }
    Store(args, t, wm, wn, lane, acc);
  }
};

}  // namespace tpjit_kernels
