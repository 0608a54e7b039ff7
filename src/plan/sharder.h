// The sharder: distinct kernels -> W disjoint shards balanced by estimated
// compile cost, longest processing time first (LPT). Deterministic: equal
// costs break ties by kernel index, equal loads by shard index. Pure.
#ifndef TPJIT_SRC_PLAN_SHARDER_H_
#define TPJIT_SRC_PLAN_SHARDER_H_

#include <vector>

#include "absl/status/statusor.h"

namespace tpjit {

struct Shards {
  std::vector<std::vector<int>>
      members;               // per shard: kernel indices, LPT order
  std::vector<double> cost;  // per shard: summed cost
};

// REQUIRES: workers >= 1 and every cost >= 0 (else INVALID_ARGUMENT).
// LPT guarantees max(cost) <= mean(cost) + (1 - 1/W) * max(costs).
absl::StatusOr<Shards> ShardByCost(const std::vector<double>& costs,
                                   int workers);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_SHARDER_H_
