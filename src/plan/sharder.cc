#include "src/plan/sharder.h"

#include <algorithm>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tpjit {

absl::StatusOr<Shards> ShardByCost(const std::vector<double>& costs,
                                   int workers) {
  if (workers < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("workers: ", workers, " must be at least 1"));
  }
  for (size_t i = 0; i < costs.size(); ++i) {
    if (!(costs[i] >= 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cost of kernel ", i, " is negative or NaN"));
    }
  }
  std::vector<int> order(costs.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return costs[a] > costs[b]; });
  Shards shards;
  shards.members.resize(workers);
  shards.cost.assign(workers, 0.0);
  for (int kernel : order) {
    int target = static_cast<int>(
        std::min_element(shards.cost.begin(), shards.cost.end()) -
        shards.cost.begin());
    shards.members[target].push_back(kernel);
    shards.cost[target] += costs[kernel];
  }
  return shards;
}

}  // namespace tpjit
