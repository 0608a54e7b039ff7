#include "src/plan/m_list.h"

#include <algorithm>

#include "gtest/gtest.h"

namespace tpjit {
namespace {

using tpjit::v1::MPolicy;

MPolicy Policy(MPolicy::Kind kind, int size) {
  MPolicy p;
  p.set_kind(kind);
  p.set_chunked_prefill_size(size);
  return p;
}

TEST(MListTest, FastHas3072ValuesFor16384And2560For8192) {
  auto a = PolicyMValues(Policy(MPolicy::FAST, 16384));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->size(), 3072u);
  EXPECT_EQ(a->back(), 16384);
  auto b = PolicyMValues(Policy(MPolicy::FAST, 8192));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->size(), 2560u);
  EXPECT_EQ(b->back(), 8192);
}

TEST(MListTest, FastStepsDoublePerPowerOfTwoRange) {
  auto v = *PolicyMValues(Policy(MPolicy::FAST, 16384));
  for (int64_t m = 1; m <= 1024; ++m) EXPECT_EQ(v[m - 1], m);
  EXPECT_EQ(v[1024], 1026);
  EXPECT_TRUE(std::binary_search(v.begin(), v.end(), 2048));
  EXPECT_TRUE(std::binary_search(v.begin(), v.end(), 2052));
  EXPECT_FALSE(std::binary_search(v.begin(), v.end(), 2050));
  EXPECT_TRUE(std::binary_search(v.begin(), v.end(), 8208));
  EXPECT_FALSE(std::binary_search(v.begin(), v.end(), 8200));
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
}

TEST(MListTest, FastMaximumIsCappedAndAlwaysIncluded) {
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FAST, 0)), 16384);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FAST, 65536)), 32768);
  auto v = *PolicyMValues(Policy(MPolicy::FAST, 5000));
  EXPECT_EQ(v.back(), 5000);
}

TEST(MListTest, FullMMaxFollowsChunkedPrefillSize) {
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, 8192)), 16384);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, 4096)), 16384);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, 0)), 65536);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, -1)), 65536);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, 16384)), 32768);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, 65536)), 131072);
  EXPECT_EQ(PolicyMMax(Policy(MPolicy::FULL, 100000)), 131072);
  auto v = *PolicyMValues(Policy(MPolicy::FULL, 8192));
  ASSERT_EQ(v.size(), 16384u);
  EXPECT_EQ(v.front(), 1);
  EXPECT_EQ(v.back(), 16384);
}

TEST(MListTest, ContigKeepsMultiplesOf128) {
  auto v = KeepMultiplesOf128(*PolicyMValues(Policy(MPolicy::FULL, 8192)));
  ASSERT_EQ(v.size(), 128u);
  for (int64_t m : v) EXPECT_EQ(m % 128, 0);
  EXPECT_EQ(v.front(), 128);
}

TEST(MListTest, ExplicitIsSortedDistinctAndChecked) {
  MPolicy p = Policy(MPolicy::EXPLICIT, 0);
  for (int m : {7, 1, 7, 4097}) p.add_m_values(m);
  EXPECT_EQ(*PolicyMValues(p), (std::vector<int64_t>{1, 7, 4097}));
  p.add_m_values(0);
  auto bad = PolicyMValues(p);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("mPolicy.mValues"), std::string::npos);
}

}  // namespace
}  // namespace tpjit
