// Barrier: the point where the ranks of one tensor-parallel job meet before
// they leave warm-up, with a deadline. Two transports implement it: the daemon
// transport (DaemonBarrier, client/rpc/barrier_client.h: ranks of one node meet
// in tpjitd, which can name who is late) and the NCCL transport (NcclBarrier,
// src/barrier/nccl_barrier.h). This header also holds the timeout policy: how
// long to wait (flag, TPJIT_BARRIER_TIMEOUT, per call) and what to do when the
// wait runs out (fail, the default, or carry on and compile lazily).
#ifndef TPJIT_SRC_BARRIER_BARRIER_H_
#define TPJIT_SRC_BARRIER_BARRIER_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tpjit {

// One rank's handle on a barrier. Thread-compatible: one Arrive at a time.
class Barrier {
 public:
  virtual ~Barrier() = default;
  // Waits until every rank of the group arrived (OK) or `timeout` passed:
  // DEADLINE_EXCEEDED whose message names the late ranks and, where known,
  // what they were last doing. Other errors: the transport failed (daemon
  // unreachable: UNAVAILABLE; bad rank/world: INVALID_ARGUMENT or
  // FAILED_PRECONDITION; NCCL/CUDA failures: INTERNAL).
  // REQUIRES: timeout >= absl::ZeroDuration().
  virtual absl::Status Arrive(absl::Duration timeout) = 0;
};

// What a rank does when the barrier times out.
enum class TimeoutPolicy {
  kFail,      // return the DEADLINE_EXCEEDED error (default)
  kContinue,  // go on; kernels that are still missing compile lazily
};

inline constexpr char kBarrierTimeoutEnv[] = "TPJIT_BARRIER_TIMEOUT";
inline constexpr char kBarrierOnTimeoutEnv[] = "TPJIT_BARRIER_ON_TIMEOUT";
inline constexpr absl::Duration kDefaultBarrierTimeout = absl::Minutes(10);

struct BarrierOptions {
  absl::Duration timeout = kDefaultBarrierTimeout;
  TimeoutPolicy on_timeout = TimeoutPolicy::kFail;
};

// The outcome of ArriveWithPolicy.
struct BarrierResult {
  absl::Status status;     // what Arrive returned
  bool timed_out = false;  // status is DEADLINE_EXCEEDED
  // The caller may go on: all arrived, or timed out under kContinue. When
  // false, `status` is the error to report.
  bool proceed = false;
  std::string warning;  // set when proceeding despite a time-out
};

// Calls barrier.Arrive(options.timeout) and applies options.on_timeout.
// Errors other than DEADLINE_EXCEEDED never proceed.
BarrierResult ArriveWithPolicy(Barrier& barrier, const BarrierOptions& options);

// Reads an environment variable; std::nullopt when unset. Injected so tests
// need not touch the process environment.
using EnvLookup = std::function<std::optional<std::string>(const char* name)>;
EnvLookup ProcessEnv();

// "2.5" -> 2.5 s. Accepts non-negative decimal seconds only. Errors are
// INVALID_ARGUMENT and name `source` (e.g. "--timeout" or
// "TPJIT_BARRIER_TIMEOUT").
absl::StatusOr<absl::Duration> ParseTimeoutSeconds(absl::string_view text,
                                                   absl::string_view source);
// "fail" or "continue".
absl::StatusOr<TimeoutPolicy> ParseTimeoutPolicy(absl::string_view text,
                                                 absl::string_view source);

// Options from, in order of precedence, the flag values (std::nullopt: flag
// not given), the environment (TPJIT_BARRIER_TIMEOUT in seconds,
// TPJIT_BARRIER_ON_TIMEOUT), and the defaults.
absl::StatusOr<BarrierOptions> ResolveBarrierOptions(
    std::optional<std::string> timeout_flag,
    std::optional<std::string> on_timeout_flag, const EnvLookup& env);

}  // namespace tpjit

#endif  // TPJIT_SRC_BARRIER_BARRIER_H_
