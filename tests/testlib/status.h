// Status assertions for GoogleTest: ASSERT_OK / EXPECT_OK on an absl::Status
// or absl::StatusOr (the message is printed on failure), and
// ASSERT_OK_AND_ASSIGN(lhs, expr) for a StatusOr.
#ifndef TPJIT_TESTS_TESTLIB_STATUS_H_
#define TPJIT_TESTS_TESTLIB_STATUS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace tpjit::testing {

inline const absl::Status& AsStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& AsStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace tpjit::testing

// Evaluates `expr` once; on an error status, fails with its message.
#define TPJIT_TESTLIB_STATUS_CHECK_(expr, fail)     \
  switch (0)                                        \
  case 0:                                           \
  default:                                          \
    if (const ::absl::Status tpjit_testlib_status = \
            ::tpjit::testing::AsStatus(expr);       \
        tpjit_testlib_status.ok()) {                \
    } else                                          \
      fail() << tpjit_testlib_status

#ifndef ASSERT_OK
#define ASSERT_OK(expr) TPJIT_TESTLIB_STATUS_CHECK_(expr, FAIL)
#endif
#ifndef EXPECT_OK
#define EXPECT_OK(expr) TPJIT_TESTLIB_STATUS_CHECK_(expr, ADD_FAILURE)
#endif

#define TPJIT_TESTLIB_CONCAT_(a, b) a##b
#define TPJIT_TESTLIB_CONCAT(a, b) TPJIT_TESTLIB_CONCAT_(a, b)
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                        \
  auto TPJIT_TESTLIB_CONCAT(status_or_, __LINE__) = (expr);    \
  ASSERT_TRUE(TPJIT_TESTLIB_CONCAT(status_or_, __LINE__).ok()) \
      << TPJIT_TESTLIB_CONCAT(status_or_, __LINE__).status();  \
  lhs = std::move(*TPJIT_TESTLIB_CONCAT(status_or_, __LINE__))

#endif  // TPJIT_TESTS_TESTLIB_STATUS_H_
