#include "src/plan/sharder.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "gtest/gtest.h"

namespace tpjit {
namespace {

void ExpectPartition(const Shards& s, size_t n) {
  std::set<int> seen;
  size_t count = 0;
  for (const auto& m : s.members) {
    for (int k : m) {
      EXPECT_TRUE(seen.insert(k).second) << "kernel " << k << " twice";
      ++count;
    }
  }
  EXPECT_EQ(count, n);
  EXPECT_EQ(seen.size(), n);
  if (n > 0) EXPECT_EQ(*seen.rbegin(), static_cast<int>(n) - 1);
}

double Ratio(const Shards& s) {
  double sum = std::accumulate(s.cost.begin(), s.cost.end(), 0.0);
  return *std::max_element(s.cost.begin(), s.cost.end()) /
         (sum / s.cost.size());
}

TEST(SharderTest, DisjointCompleteDeterministic) {
  std::vector<double> costs = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
  auto a = ShardByCost(costs, 3);
  ASSERT_TRUE(a.ok());
  ExpectPartition(*a, costs.size());
  EXPECT_EQ(a->members, ShardByCost(costs, 3)->members);
}

TEST(SharderTest, MoreWorkersThanKernelsLeavesEmptyShards) {
  auto s = *ShardByCost({1.0, 2.0}, 4);
  ExpectPartition(s, 2);
  EXPECT_EQ(s.members[2].size() + s.members[3].size(), 0u);
}

TEST(SharderTest, BadInputIsRejected) {
  EXPECT_FALSE(ShardByCost({1.0}, 0).ok());
  EXPECT_FALSE(ShardByCost({-1.0}, 2).ok());
}

// Balance: with at least 4W kernels of comparable cost (within 2x), the
// fullest shard is within 10% of the mean whenever the kernel count is a
// multiple of W or large; always within LPT's bound mean + max cost.
TEST(SharderTest, BalancedWithManyComparableKernels) {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> cost(0.2, 0.4);
  for (int w : {1, 2, 4, 8, 16}) {
    for (int per : {4, 5, 8}) {
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<double> costs(static_cast<size_t>(w * per));
        for (double& c : costs) c = cost(rng);
        auto s = *ShardByCost(costs, w);
        ExpectPartition(s, costs.size());
        EXPECT_LE(Ratio(s), 1.10) << "w=" << w << " n=" << costs.size();
        double mean = std::accumulate(costs.begin(), costs.end(), 0.0) / w;
        EXPECT_LE(*std::max_element(s.cost.begin(), s.cost.end()),
                  mean + *std::max_element(costs.begin(), costs.end()));
      }
    }
  }
}

}  // namespace
}  // namespace tpjit
