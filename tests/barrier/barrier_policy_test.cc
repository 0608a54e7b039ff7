#include <map>
#include <string>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/barrier/barrier.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;

class FixedBarrier final : public Barrier {
 public:
  explicit FixedBarrier(absl::Status status) : status_(std::move(status)) {}
  absl::Status Arrive(absl::Duration timeout) override {
    last_timeout = timeout;
    return status_;
  }
  absl::Duration last_timeout;

 private:
  absl::Status status_;
};

EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ArriveWithPolicyTest, OkProceeds) {
  FixedBarrier barrier(absl::OkStatus());
  BarrierResult r = ArriveWithPolicy(barrier, {absl::Seconds(3)});
  EXPECT_TRUE(r.proceed);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(barrier.last_timeout, absl::Seconds(3));
}

TEST(ArriveWithPolicyTest, TimeoutFailsByDefault) {
  FixedBarrier barrier(absl::DeadlineExceededError("late: rank 7"));
  BarrierResult r = ArriveWithPolicy(barrier, {});
  EXPECT_FALSE(r.proceed);
  EXPECT_TRUE(r.timed_out);
  EXPECT_TRUE(absl::IsDeadlineExceeded(r.status));
  EXPECT_TRUE(r.warning.empty());
}

TEST(ArriveWithPolicyTest, TimeoutContinuesWithWarning) {
  FixedBarrier barrier(absl::DeadlineExceededError("late: rank 7"));
  BarrierResult r =
      ArriveWithPolicy(barrier, {absl::Seconds(1), TimeoutPolicy::kContinue});
  EXPECT_TRUE(r.proceed);
  EXPECT_TRUE(r.timed_out);
  EXPECT_THAT(r.warning, HasSubstr("late: rank 7"));
  EXPECT_THAT(r.warning, HasSubstr("lazily"));
}

TEST(ArriveWithPolicyTest, OtherErrorsNeverProceed) {
  FixedBarrier barrier(absl::UnavailableError("no daemon"));
  BarrierResult r =
      ArriveWithPolicy(barrier, {absl::Seconds(1), TimeoutPolicy::kContinue});
  EXPECT_FALSE(r.proceed);
  EXPECT_FALSE(r.timed_out);
}

TEST(ResolveBarrierOptionsTest, Defaults) {
  auto o = ResolveBarrierOptions(std::nullopt, std::nullopt, Env({}));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->timeout, kDefaultBarrierTimeout);
  EXPECT_EQ(o->on_timeout, TimeoutPolicy::kFail);
}

TEST(ResolveBarrierOptionsTest, EnvironmentThenFlag) {
  auto env =
      Env({{kBarrierTimeoutEnv, "2.5"}, {kBarrierOnTimeoutEnv, "continue"}});
  auto o = ResolveBarrierOptions(std::nullopt, std::nullopt, env);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->timeout, absl::Milliseconds(2500));
  EXPECT_EQ(o->on_timeout, TimeoutPolicy::kContinue);
  o = ResolveBarrierOptions("7", "fail", env);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->timeout, absl::Seconds(7));
  EXPECT_EQ(o->on_timeout, TimeoutPolicy::kFail);
}

TEST(ResolveBarrierOptionsTest, BadValuesNameTheirSource) {
  auto o = ResolveBarrierOptions(std::nullopt, std::nullopt,
                                 Env({{kBarrierTimeoutEnv, "soon"}}));
  ASSERT_TRUE(absl::IsInvalidArgument(o.status()));
  EXPECT_THAT(o.status().message(), HasSubstr("TPJIT_BARRIER_TIMEOUT"));
  o = ResolveBarrierOptions("-1", std::nullopt, Env({}));
  EXPECT_THAT(o.status().message(), HasSubstr("--timeout"));
  o = ResolveBarrierOptions(std::nullopt, "maybe", Env({}));
  EXPECT_THAT(o.status().message(), HasSubstr("--on-timeout"));
}

}  // namespace
}  // namespace tpjit
