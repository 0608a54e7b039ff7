// Clock: the only way core code reads time or sleeps, so tests can move time
// by hand (FakeClock). Implementations are thread-safe.
#ifndef TPJIT_SRC_COMMON_CLOCK_H_
#define TPJIT_SRC_COMMON_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace tpjit {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (for lease expiry shared between processes).
  virtual absl::Time Now() = 0;
  // Monotonic time for deadlines and durations inside one process.
  virtual absl::Time MonotonicNow() = 0;
  virtual void SleepFor(absl::Duration d) = 0;

  // The process-wide real clock; never deleted.
  static Clock* Real();
};

// A clock that moves only when told. SleepFor advances time by the amount
// slept (so backoff loops terminate) instead of blocking.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24))
      : now_(start) {}
  absl::Time Now() override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  absl::Time MonotonicNow() override { return Now(); }
  void SleepFor(absl::Duration d) override { Advance(d); }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_CLOCK_H_
