#include "src/plan/planner.h"

#include <fstream>
#include <set>
#include <sstream>

#include "gtest/gtest.h"
#include "src/plan/m_list.h"
#include "src/plan/spec.h"

namespace tpjit {
namespace {

using tpjit::v1::MPolicy;
using tpjit::v1::WarmupSpec;

WarmupSpec Load(const std::string& name) {
  std::ifstream in(std::string(TPJIT_SPECS_DIR) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  auto spec = ParseSpecJson(s.str());
  EXPECT_TRUE(spec.ok()) << spec.status();
  return *spec;
}

class ShippedSpecTest : public testing::TestWithParam<std::string> {};

TEST_P(ShippedSpecTest, FullPlanCoversEveryMExactlyOnce) {
  WarmupSpec spec = Load(GetParam());
  auto plan = PlanWarmup(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->m_max, 16384);
  EXPECT_GE(plan->kernels.size(), 10u);
  EXPECT_LE(plan->kernels.size(), 100u);
  for (size_t s = 0; s < plan->shapes.size(); ++s) {
    const auto& ranges = plan->shapes[s].ranges;
    ASSERT_FALSE(ranges.empty());
    EXPECT_EQ(ranges.front().lo, 1);
    EXPECT_EQ(ranges.back().hi, plan->m_max);
    for (size_t i = 1; i < ranges.size(); ++i) {
      EXPECT_EQ(ranges[i].lo, ranges[i - 1].hi + 1);  // no gap, no overlap
      EXPECT_NE(ranges[i].kernel, ranges[i - 1].kernel);
    }
    for (int64_t m = 1; m <= plan->m_max; ++m) {
      auto k = plan->Lookup(static_cast<int>(s), m);
      ASSERT_TRUE(k.ok()) << "shape " << s << " m " << m;
      const KernelSpec& ks = plan->kernels[*k].spec;
      EXPECT_EQ(ks.n, spec.shapes(s).n());
      EXPECT_EQ(ks.k, spec.shapes(s).k());
    }
    EXPECT_FALSE(plan->Lookup(static_cast<int>(s), plan->m_max + 1).ok());
  }
  EXPECT_DOUBLE_EQ(FullCoverage(*plan, spec), 1.0);
}

TEST_P(ShippedSpecTest, KernelsAreDistinctAndCanonicallyOrdered) {
  auto plan = *PlanWarmup(Load(GetParam()));
  std::set<std::string> names;
  int64_t served = 0;
  for (size_t i = 0; i < plan.kernels.size(); ++i) {
    EXPECT_TRUE(names.insert(ToString(plan.kernels[i].spec)).second);
    EXPECT_GT(plan.kernels[i].est_compile_seconds, 0);
    served += plan.kernels[i].m_values;
    if (i > 0) {
      EXPECT_LE(static_cast<int>(plan.kernels[i - 1].spec.family),
                static_cast<int>(plan.kernels[i].spec.family));
    }
  }
  int64_t m_values = 0;
  for (const auto& s : plan.shapes) m_values += s.m_values;
  EXPECT_EQ(served, m_values);
}

TEST_P(ShippedSpecTest, DigestIsStableAndSensitive) {
  WarmupSpec spec = Load(GetParam());
  auto a = *PlanWarmup(spec);
  WarmupSpec renamed = spec;
  renamed.set_name("other name");
  EXPECT_EQ(a.digest, PlanWarmup(renamed)->digest);
  EXPECT_EQ(a.digest.size(), 64u);
  WarmupSpec fewer_sms = spec;
  fewer_sms.mutable_target()->set_num_sms(114);
  EXPECT_NE(a.digest, PlanWarmup(fewer_sms)->digest);
  WarmupSpec fast = spec;
  fast.mutable_m_policy()->set_kind(MPolicy::FAST);
  EXPECT_NE(a.digest, PlanWarmup(fast)->digest);
}

TEST_P(ShippedSpecTest, FastPlanCoversItsListButNeverMore) {
  WarmupSpec spec = Load(GetParam());
  spec.mutable_m_policy()->set_kind(MPolicy::FAST);
  auto plan = *PlanWarmup(spec);
  auto values = *PolicyMValues(spec.m_policy());
  for (size_t s = 0; s < plan.shapes.size(); ++s) {
    for (int64_t m : values) {
      if (spec.shapes(s).family().find("contig") != std::string::npos &&
          m % 128 != 0) {
        continue;
      }
      EXPECT_TRUE(plan.Lookup(static_cast<int>(s), m).ok()) << m;
    }
    EXPECT_FALSE(plan.Lookup(static_cast<int>(s), 16384).ok());
  }
  EXPECT_LE(FullCoverage(plan, spec), 1.0);
}

INSTANTIATE_TEST_SUITE_P(Specs, ShippedSpecTest,
                         testing::Values("deepseek-v3-tp8.json",
                                         "qwen3-30b-a3b-tp4.json"));

TEST(PlannerTest, ExplicitPolicyAndInvalidSpec) {
  WarmupSpec spec = Load("qwen3-30b-a3b-tp4.json");
  spec.mutable_m_policy()->set_kind(MPolicy::EXPLICIT);
  for (int m : {1, 7, 129, 4097}) spec.mutable_m_policy()->add_m_values(m);
  auto plan = PlanWarmup(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->Lookup(0, 7).ok());
  EXPECT_FALSE(plan->Lookup(2, 128).ok());  // contig keeps multiples of 128
  // Contig shapes (2 and 3) round M up to the padded row count.
  auto full = *PlanWarmup(Load("qwen3-30b-a3b-tp4.json"));
  EXPECT_EQ(*full.Lookup(2, 4097), *full.Lookup(2, 4224));
  EXPECT_EQ(*full.Lookup(2, 1), *full.Lookup(2, 128));
  EXPECT_FALSE(plan->Lookup(0, 8000).ok());
  spec.mutable_shapes(0)->set_k(100);
  EXPECT_EQ(PlanWarmup(spec).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(PlannerTest, FullCoverageDropsWhenAConfigIsMissing) {
  WarmupSpec spec = Load("qwen3-30b-a3b-tp4.json");
  auto plan = *PlanWarmup(spec);
  plan.kernels.pop_back();
  EXPECT_LT(FullCoverage(plan, spec), 1.0);
}

}  // namespace
}  // namespace tpjit
