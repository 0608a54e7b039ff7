// GPU tests skip with a reason when there is no usable GPU, except where one
// is required: the GPU run scripts (scripts/gpu-*) set TPJIT_REQUIRE_GPU=1,
// and then a missing driver, device or capability fails the test instead, so
// a broken GPU run can never read as "skipped". Header-only.
#ifndef TPJIT_TESTS_GPU_REQUIRE_GPU_H_
#define TPJIT_TESTS_GPU_REQUIRE_GPU_H_

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace tpjit {

// True when TPJIT_REQUIRE_GPU is set to 1.
inline bool GpuRequired() {
  const char* v = std::getenv("TPJIT_REQUIRE_GPU");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

}  // namespace tpjit

// Skips the test with `why` (anything streamable), or fails it when
// GpuRequired(). Returns from the calling (void) function either way.
#define TPJIT_SKIP_WITHOUT_GPU(why)                                      \
  do {                                                                   \
    if (::tpjit::GpuRequired()) {                                        \
      GTEST_FAIL() << "TPJIT_REQUIRE_GPU=1, but: " << why;               \
    }                                                                    \
    GTEST_SKIP() << why << " (set TPJIT_REQUIRE_GPU=1 to fail instead)"; \
  } while (0)

#endif  // TPJIT_TESTS_GPU_REQUIRE_GPU_H_
