#include "cli/plan_command.h"

#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tpjit::cli {
namespace {

const std::string kSpec =
    std::string(TPJIT_SPECS_DIR) + "/deepseek-v3-tp8.json";

int RunPlan(const std::vector<std::string>& args, std::string* out,
            std::string* err) {
  std::ostringstream o, e;
  int rc = RunPlanCommand(args, o, e);
  *out = o.str();
  *err = e.str();
  return rc;
}

TEST(PlanCommandTest, JsonReportsFullCoverageAndTensOfKernels) {
  std::string out, err;
  ASSERT_EQ(RunPlan({"--spec", kSpec, "--workers", "8", "--json"}, &out, &err),
            0)
      << err;
  auto j = nlohmann::json::parse(out);
  EXPECT_DOUBLE_EQ(j["coverage"].get<double>(), 1.0);
  EXPECT_GE(j["distinct_kernels"].get<int>(), 10);
  EXPECT_LE(j["distinct_kernels"].get<int>(), 100);
  EXPECT_EQ(j["m_values"].get<int64_t>(), 147712);
  ASSERT_EQ(j["shards"].size(), 8u);
  size_t sharded = 0;
  for (const auto& s : j["shards"]) sharded += s["kernels"].size();
  EXPECT_EQ(sharded, j["distinct_kernels"].get<size_t>());
}

TEST(PlanCommandTest, TextNamesShapesRangesAndSlots) {
  std::string out, err;
  ASSERT_EQ(RunPlan({"--spec", kSpec, "--workers", "2"}, &out, &err), 0);
  EXPECT_NE(out.find("coverage 100.00%"), std::string::npos);
  EXPECT_NE(out.find("slot 1:"), std::string::npos);
  EXPECT_NE(out.find("M      1.."), std::string::npos);
}

TEST(PlanCommandTest, BadInputExitsTwoNamingTheProblem) {
  std::string out, err;
  EXPECT_EQ(RunPlan({"--spec", "/no/such/spec.json"}, &out, &err), 2);
  EXPECT_NE(err.find("/no/such/spec.json"), std::string::npos);
  EXPECT_EQ(RunPlan({"--spec", kSpec, "--workers", "0"}, &out, &err), 2);
  EXPECT_NE(err.find("--workers"), std::string::npos);
  EXPECT_EQ(RunPlan({"--spec", kSpec, "--policy", "SOME"}, &out, &err), 2);
  EXPECT_NE(err.find("--policy"), std::string::npos);
  EXPECT_EQ(RunPlan({"--bogus"}, &out, &err), 2);
  EXPECT_NE(err.find("--bogus"), std::string::npos);
  EXPECT_EQ(RunPlan({}, &out, &err), 2);
  EXPECT_NE(err.find("--spec"), std::string::npos);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace tpjit::cli
