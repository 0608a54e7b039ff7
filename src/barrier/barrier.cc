#include "src/barrier/barrier.h"

#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace tpjit {

BarrierResult ArriveWithPolicy(Barrier& barrier,
                               const BarrierOptions& options) {
  BarrierResult result;
  result.status = barrier.Arrive(options.timeout);
  result.timed_out = absl::IsDeadlineExceeded(result.status);
  result.proceed = result.status.ok();
  if (result.timed_out && options.on_timeout == TimeoutPolicy::kContinue) {
    result.proceed = true;
    result.warning = absl::StrCat(
        "barrier timed out; continuing as asked (missing kernels will compile "
        "lazily): ",
        result.status.message());
  }
  return result;
}

EnvLookup ProcessEnv() {
  return [](const char* name) -> std::optional<std::string> {
    const char* value = std::getenv(name);
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  };
}

absl::StatusOr<absl::Duration> ParseTimeoutSeconds(absl::string_view text,
                                                   absl::string_view source) {
  double seconds = 0;
  if (!absl::SimpleAtod(text, &seconds) || !std::isfinite(seconds) ||
      seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": bad timeout \"", text,
                     "\" (want non-negative seconds, e.g. 600 or 2.5)"));
  }
  return absl::Seconds(seconds);
}

absl::StatusOr<TimeoutPolicy> ParseTimeoutPolicy(absl::string_view text,
                                                 absl::string_view source) {
  if (text == "fail") return TimeoutPolicy::kFail;
  if (text == "continue") return TimeoutPolicy::kContinue;
  return absl::InvalidArgumentError(absl::StrCat(
      source, ": bad value \"", text, "\" (want \"fail\" or \"continue\")"));
}

absl::StatusOr<BarrierOptions> ResolveBarrierOptions(
    std::optional<std::string> timeout_flag,
    std::optional<std::string> on_timeout_flag, const EnvLookup& env) {
  BarrierOptions options;
  if (timeout_flag.has_value()) {
    TPJIT_ASSIGN_OR_RETURN(options.timeout,
                           ParseTimeoutSeconds(*timeout_flag, "--timeout"));
  } else if (auto value = env(kBarrierTimeoutEnv); value.has_value()) {
    TPJIT_ASSIGN_OR_RETURN(options.timeout,
                           ParseTimeoutSeconds(*value, kBarrierTimeoutEnv));
  }
  if (on_timeout_flag.has_value()) {
    TPJIT_ASSIGN_OR_RETURN(
        options.on_timeout,
        ParseTimeoutPolicy(*on_timeout_flag, "--on-timeout"));
  } else if (auto value = env(kBarrierOnTimeoutEnv); value.has_value()) {
    TPJIT_ASSIGN_OR_RETURN(options.on_timeout,
                           ParseTimeoutPolicy(*value, kBarrierOnTimeoutEnv));
  }
  return options;
}

}  // namespace tpjit
