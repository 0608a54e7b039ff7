#include "src/plan/spec.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string ReadSpec(const std::string& name) {
  std::ifstream in(std::string(TPJIT_SPECS_DIR) + "/" + name);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ErrorOf(const std::string& json) {
  auto spec = ParseSpecJson(json);
  EXPECT_FALSE(spec.ok()) << json;
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(spec.status().message());
}

constexpr char kGood[] = R"({"name": "t", "target": {"arch": "sm_90a",
  "numSms": 132}, "mPolicy": {"kind": "FULL", "chunkedPrefillSize": 8192},
  "shapes": [{"family": "fp8_gemm_nt", "n": 2112, "k": 7168}]})";

std::string With(const std::string& from, const std::string& to) {
  std::string s = kGood;
  s.replace(s.find(from), from.size(), to);
  return s;
}

TEST(SpecTest, ShippedSpecsParse) {
  for (const char* name : {"deepseek-v3-tp8.json", "qwen3-30b-a3b-tp4.json"}) {
    auto spec = ParseSpecJson(ReadSpec(name));
    ASSERT_TRUE(spec.ok()) << name << ": " << spec.status();
    EXPECT_GT(spec->shapes_size(), 5);
    EXPECT_EQ(spec->target().arch(), "sm_90a");
  }
  auto ds = *ParseSpecJson(ReadSpec("deepseek-v3-tp8.json"));
  EXPECT_EQ(ds.shapes(6).num_groups(), 32);
  EXPECT_EQ(ds.m_policy().chunked_prefill_size(), 8192);
}

TEST(SpecTest, UnknownFieldIsNamed) {
  EXPECT_THAT(ErrorOf(With(R"("n": 2112)", R"("n": 2112, "bogus": 1)")),
              AllOf(HasSubstr("shapes[0]"), HasSubstr("bogus")));
}

TEST(SpecTest, BadValuesNameTheirField) {
  EXPECT_NE(ErrorOf(With("fp8_gemm_nt", "fp9_gemm")).find("shapes[0].family"),
            std::string::npos);
  EXPECT_NE(ErrorOf(With("7168", "7000")).find("shapes[0].k"),
            std::string::npos);
  EXPECT_NE(ErrorOf(With("2112", "100")).find("shapes[0].n"),
            std::string::npos);
  EXPECT_NE(ErrorOf(With("sm_90a", "gfx942")).find("target.arch"),
            std::string::npos);
  EXPECT_NE(ErrorOf(With("132", "0")).find("target.numSms"), std::string::npos);
  // (The JSON parser names the field as in the .proto: m_policy.)
  EXPECT_THAT(ErrorOf(With("\"FULL\"", "\"ALL\"")),
              AllOf(HasSubstr("m_policy.kind"), HasSubstr("\"ALL\"")));
  EXPECT_NE(ErrorOf(With(R"("k": 7168)", R"("k": 7168, "numGroups": 4)"))
                .find("numGroups"),
            std::string::npos);
  // A JSON type error names the field's full path and the bad value.
  EXPECT_THAT(ErrorOf(With(R"("n": 2112)", R"("n": "many")")),
              AllOf(StartsWith("spec JSON: "), HasSubstr("shapes[0].n"),
                    HasSubstr("\"many\""), HasSubstr("INT32")));
  EXPECT_NE(ErrorOf("{not json").find("spec JSON"), std::string::npos);
}

TEST(SpecTest, GroupedFamiliesNeedGroups) {
  std::string s = With("fp8_gemm_nt", "fp8_grouped_gemm_nt_masked");
  EXPECT_NE(ErrorOf(s).find("shapes[0].numGroups"), std::string::npos);
}

TEST(SpecTest, EmptyShapesAndExplicitWithoutValuesAreErrors) {
  std::string s = kGood;
  s = s.substr(0, s.find("\"shapes\"")) + "\"shapes\": []}";
  EXPECT_NE(ErrorOf(s).find("shapes"), std::string::npos);
  EXPECT_NE(ErrorOf(With("FULL", "EXPLICIT")).find("mPolicy.mValues"),
            std::string::npos);
}

}  // namespace
}  // namespace tpjit
