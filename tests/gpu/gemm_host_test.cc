// CPU test of the GPU test's host side: operands, reference and poison
// checks, against an independent naive GEMM standing in for the kernel.
#include "tests/gpu/gemm_host.h"

#include <cmath>
#include <cstring>

#include "gtest/gtest.h"

namespace tpjit {
namespace {

// What a correct kernel writes: D for valid rows, poison elsewhere.
std::vector<uint8_t> NaiveKernel(const HostGemm& h) {
  const int n = h.spec.n, k = h.spec.k, kb = k / 128;
  const bool fp8 = Info(h.spec.family).fp8;
  std::vector<uint8_t> d(h.d_bytes(), kPoisonByte);
  for (int64_t r = 0; r < h.a_rows; ++r) {
    const int g = h.RowGroup(r);
    if (g < 0) continue;
    for (int j = 0; j < n; ++j) {
      float acc = 0;
      for (int blk = 0; blk < kb; ++blk) {
        float part = 0;
        for (int i = blk * 128; i < (blk + 1) * 128; ++i) {
          part += h.a_val[r * k + i] * h.b->val[(int64_t{g} * n + j) * k + i];
        }
        acc +=
            fp8 ? part * h.sa[r * kb + blk] *
                      h.b->scales[(g * ((n + 127) / 128) + j / 128) * kb + blk]
                : part;
      }
      if (h.out_bytes() == 4) {
        std::memcpy(&d[(r * n + j) * 4], &acc, 4);
      } else {
        const uint16_t v = FloatToBf16(acc);
        std::memcpy(&d[(r * n + j) * 2], &v, 2);
      }
    }
  }
  return d;
}

double OutOf(const HostGemm& h, const std::vector<uint8_t>& d, int64_t idx) {
  if (h.out_bytes() == 4) {
    float x;
    std::memcpy(&x, &d[idx * 4], 4);
    return x;
  }
  uint16_t x;
  std::memcpy(&x, &d[idx * 2], 2);
  return Bf16ToFloat(x);
}

void SetOut(const HostGemm& h, std::vector<uint8_t>& d, int64_t idx, double v) {
  if (h.out_bytes() == 4) {
    const float x = static_cast<float>(v);
    std::memcpy(&d[idx * 4], &x, 4);
  } else {
    const uint16_t x = FloatToBf16(static_cast<float>(v));
    std::memcpy(&d[idx * 2], &x, 2);
  }
}

KernelSpec Spec(Family f, int groups) {
  KernelSpec s;
  s.family = f;
  s.n = 192;
  s.k = 256;
  s.groups = groups;
  return s;
}

TEST(GemmHostTest, E4m3AndBf16) {
  EXPECT_EQ(E4m3ToFloat(0x38), 1.0f);
  EXPECT_EQ(E4m3ToFloat(0x7e), 448.0f);
  EXPECT_EQ(E4m3ToFloat(0x01), std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isnan(E4m3ToFloat(0xff)));
  EXPECT_EQ(Bf16ToFloat(FloatToBf16(1.0f)), 1.0f);
  EXPECT_EQ(FloatToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // ties even
}

TEST(GemmHostTest, CorrectOutputPassesAndDefectsFail) {
  std::mt19937_64 rng(1);
  for (Family f : {Family::kFp8GemmNt, Family::kFp8GroupedGemmNtContig,
                   Family::kFp8GroupedGemmNtMasked, Family::kBf16GemmNtF32,
                   Family::kBf16GroupedGemmNtMasked}) {
    const int groups = Info(f).group == GroupKind::kNone ? 1 : 4;
    const KernelSpec spec = Spec(f, groups);
    const HostGemm h = MakeHostGemm(spec, 37, rng, MakeHostB(spec, rng, 2), 2);
    std::vector<uint8_t> d = NaiveKernel(h);
    const double tol = DefaultRtol(Info(f));
    CheckResult r = CheckGemm(h, d, tol, 2);
    EXPECT_TRUE(r.ok) << Info(f).id << ": " << r.detail;
    int64_t valid_rows = 0;
    for (int64_t row = 0; row < h.a_rows; ++row) {
      valid_rows += h.RowGroup(row) >= 0;
    }
    EXPECT_EQ(r.rows_checked, valid_rows) << "every valid row is compared";
    EXPECT_LE(r.worst_ratio, 1.0);

    // A NaN in a valid row fails.
    std::vector<uint8_t> bad = d;
    int64_t valid = 0;
    while (h.RowGroup(valid) < 0) ++valid;
    std::memset(&bad[valid * spec.n * h.out_bytes()], 0xff, h.out_bytes());
    EXPECT_FALSE(CheckGemm(h, bad, tol, 2).ok) << Info(f).id;

    // Wrong values fail.
    bad = d;
    for (size_t i = 0; i < bad.size(); i += h.out_bytes()) {
      if (bad[i] != kPoisonByte) bad[i + h.out_bytes() - 1] ^= 0x01;
    }
    EXPECT_FALSE(CheckGemm(h, bad, tol, 2).ok) << Info(f).id;

    // One element off by 10 times the tolerance fails, though the L2 error
    // over the whole output hardly moves.
    bad = d;
    const int64_t last = [&] {
      int64_t row = h.a_rows - 1;
      while (h.RowGroup(row) < 0) --row;
      return row;
    }();
    const int64_t idx = last * spec.n + spec.n / 2;
    SetOut(h, bad, idx, OutOf(h, d, idx) * (1 + 10 * tol) + 10 * tol);
    const CheckResult one = CheckGemm(h, bad, tol, 2);
    EXPECT_FALSE(one.ok) << Info(f).id;
    EXPECT_EQ(one.bad_elements, 1) << one.detail;
    EXPECT_LT(one.rel_err, tol) << "the old L2 check would have passed it";

    // Writing a row the kernel must leave alone fails.
    if (Info(f).group != GroupKind::kNone) {
      int64_t pad = 0;
      while (pad < h.a_rows && h.RowGroup(pad) >= 0) ++pad;
      ASSERT_LT(pad, h.a_rows) << Info(f).id << " has no untouched row";
      bad = d;
      std::memset(&bad[pad * spec.n * h.out_bytes()], 0, h.out_bytes());
      const CheckResult c = CheckGemm(h, bad, tol, 2);
      EXPECT_FALSE(c.ok);
      EXPECT_EQ(c.touched_poison, 1);
    }
  }
}

TEST(GemmHostTest, CountUnpoisoned) {
  std::vector<uint8_t> b(64, kPoisonByte);
  EXPECT_EQ(CountUnpoisoned(b, 0, b.size()), 0);
  b[3] = 0;
  b[40] = 1;
  EXPECT_EQ(CountUnpoisoned(b, 0, b.size()), 2);
  EXPECT_EQ(CountUnpoisoned(b, 4, 40), 0);
  EXPECT_EQ(CountUnpoisoned(b, 4, 41), 1);
}

}  // namespace
}  // namespace tpjit
