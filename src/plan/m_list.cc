#include "src/plan/m_list.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace tpjit {

using tpjit::v1::MPolicy;

int64_t PolicyMMax(const MPolicy& policy) {
  const int64_t size = policy.chunked_prefill_size();
  switch (policy.kind()) {
    case MPolicy::FULL: {
      int64_t m_max = 16384;
      if (size < 1) m_max = 65536;
      if (size > 8192) m_max = 2 * size;
      return std::min(m_max, kMaxM);
    }
    case MPolicy::FAST:
      return size < 1 ? 16384 : std::min<int64_t>(size, 32768);
    case MPolicy::EXPLICIT: {
      int64_t m_max = 0;
      for (int64_t m : policy.m_values()) m_max = std::max(m_max, m);
      return m_max;
    }
    default:
      return 0;
  }
}

absl::StatusOr<std::vector<int64_t>> PolicyMValues(const MPolicy& policy) {
  const int64_t m_max = PolicyMMax(policy);
  std::vector<int64_t> values;
  switch (policy.kind()) {
    case MPolicy::FULL:
      for (int64_t m = 1; m <= m_max; ++m) values.push_back(m);
      return values;
    case MPolicy::FAST: {
      for (int64_t m = 1; m <= std::min<int64_t>(1024, m_max); ++m) {
        values.push_back(m);
      }
      // In [1024 * 2^i, 1024 * 2^(i+1)) the step is 2^(i+1).
      for (int64_t m = 1024, step = 2; m + step <= m_max;) {
        m += step;
        values.push_back(m);
        if (m >= 512 * step * 2) step *= 2;
      }
      if (values.back() != m_max) values.push_back(m_max);
      return values;
    }
    case MPolicy::EXPLICIT: {
      if (policy.m_values().empty()) {
        return absl::InvalidArgumentError(
            "mPolicy.mValues: EXPLICIT needs at least one value");
      }
      for (int64_t m : policy.m_values()) {
        if (m < 1 || m > kMaxM) {
          return absl::InvalidArgumentError(
              absl::StrCat("mPolicy.mValues: ", m, " is outside 1..", kMaxM));
        }
        values.push_back(m);
      }
      std::sort(values.begin(), values.end());
      values.erase(std::unique(values.begin(), values.end()), values.end());
      return values;
    }
    default:
      return absl::InvalidArgumentError(
          "mPolicy.kind: must be FULL, FAST or EXPLICIT");
  }
}

std::vector<int64_t> KeepMultiplesOf128(const std::vector<int64_t>& values) {
  std::vector<int64_t> kept;
  for (int64_t m : values) {
    if (m % 128 == 0) kept.push_back(m);
  }
  return kept;
}

}  // namespace tpjit
