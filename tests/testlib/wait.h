// Waiting on a condition with a deadline instead of sleeping a fixed time:
// the condition is polled with a short back-off (1 ms doubling to 20 ms)
// until it holds or the timeout passes. Thread-safe (the condition must be).
#ifndef TPJIT_TESTS_TESTLIB_WAIT_H_
#define TPJIT_TESTS_TESTLIB_WAIT_H_

#include <functional>

#include "absl/time/time.h"

namespace tpjit::testing {

// True as soon as `condition` holds; false if it still does not at
// `timeout` (checked once more at the deadline).
bool WaitUntil(const std::function<bool()>& condition, absl::Duration timeout);

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_TESTLIB_WAIT_H_
