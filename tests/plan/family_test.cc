#include "src/plan/family.h"

#include <set>

#include "gtest/gtest.h"

namespace tpjit {
namespace {

Problem P(int64_t m, int n, int k, int groups = 1) {
  Problem p;
  p.m = m;
  p.n = n;
  p.k = k;
  p.groups = groups;
  return p;
}

TEST(FamilyTest, SevenFamiliesRoundTripTheirIds) {
  ASSERT_EQ(AllFamilies().size(), 7u);
  for (const FamilyInfo& info : AllFamilies()) {
    auto f = FamilyFromId(info.id);
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(*f, info.family);
    EXPECT_EQ(Info(*f).id, info.id);
  }
  EXPECT_FALSE(FamilyFromId("fp8_gemm_tn").ok());
}

TEST(FamilyTest, ConfigsAreValidForEveryM) {
  for (const FamilyInfo& info : AllFamilies()) {
    for (int64_t m = 1; m <= 131072; m = m < 300 ? m + 1 : m * 5 / 4) {
      Problem p =
          P(info.group == GroupKind::kContig ? (m + 127) / 128 * 128 : m, 7168,
            2048, info.group == GroupKind::kNone ? 1 : 32);
      KernelConfig c = ChooseConfig(info, p);
      ASSERT_GT(c.block_m, 0) << info.id << " m=" << m;
      EXPECT_EQ(c.block_k, info.block_k);
      EXPECT_GE(c.stages, 2);
      EXPECT_LE(SharedMemoryBytes(info, c), MaxSharedMemoryBytes("sm_90a"));
      EXPECT_EQ(c.block_m % (16 * c.warps_m), 0);
      EXPECT_EQ(c.block_n % (8 * c.warps_n), 0);
      if (info.group == GroupKind::kContig) EXPECT_EQ(c.block_m, 128);
    }
  }
}

TEST(FamilyTest, SmallMGetsSmallTilesLargeMGetsLargeTiles) {
  const FamilyInfo& info = Info(Family::kFp8GemmNt);
  EXPECT_LE(ChooseConfig(info, P(1, 7168, 16384)).block_m, 32);
  KernelConfig big = ChooseConfig(info, P(16384, 7168, 16384));
  EXPECT_EQ(big.block_m, 128);
  EXPECT_EQ(big.block_n, 128);
}

TEST(FamilyTest, DeterministicAndCostIsTheMinimum) {
  const FamilyInfo& info = Info(Family::kBf16GemmNt);
  for (int64_t m : {1, 7, 129, 4097, 16384}) {
    Problem p = P(m, 2048, 1024);
    KernelConfig a = ChooseConfig(info, p), b = ChooseConfig(info, p);
    EXPECT_EQ(a, b);
    const double chosen = ModelCost(info, p, a);
    for (int bm : {16, 32, 64, 128}) {
      KernelConfig other = a;
      other.block_m = bm;
      EXPECT_GE(ModelCost(info, p, other), chosen * (1 - 1e-9)) << m;
    }
  }
}

TEST(FamilyTest, MaskedChoosesFromExpectedM) {
  const FamilyInfo& info = Info(Family::kFp8GroupedGemmNtMasked);
  std::set<std::pair<int, int>> tiles;
  for (int64_t m : {1, 8, 64, 256, 4096}) {
    KernelConfig c = ChooseConfig(info, P(m, 4096, 7168, 4));
    tiles.insert({c.block_m, c.block_n});
  }
  EXPECT_GT(tiles.size(), 1u);
}

TEST(FamilyTest, ShallowerPipelinesWhenSharedMemoryIsShort) {
  const FamilyInfo& info = Info(Family::kFp8GemmNt);
  KernelConfig c = ChooseConfig(info, P(64, 4096, 256));
  EXPECT_LE(c.stages, 2);  // only two K steps
  EXPECT_LT(MaxSharedMemoryBytes("sm_89"), MaxSharedMemoryBytes("sm_90a"));
}

}  // namespace
}  // namespace tpjit
