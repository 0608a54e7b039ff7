// Unit tests of the compile part without real compiles: kernel sources and
// digests, kernel keys, spec validation, NvrtcCompiler error paths through a
// fault-injecting NvrtcApi, and cubin checks on malformed input.
#include <elf.h>

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/embedded.h"
#include "src/compile/cubin.h"
#include "src/compile/kernel_key.h"
#include "src/compile/kernel_source.h"
#include "src/compile/nvrtc_compiler.h"
#include "tests/testlib/cubin.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;

KernelSpec Fp8Spec() {
  KernelSpec s;
  s.family = Family::kFp8GemmNt;
  s.n = 2112;
  s.k = 7168;
  s.config = {64, 64, 128, 4, 2, 2};
  return s;
}

TEST(KernelSourceTest, EveryFamilyHasSourceAndDigest) {
  std::set<std::string> digests;
  for (const FamilyInfo& info : AllFamilies()) {
    const std::string& d = FamilySourceDigest(info.family);
    EXPECT_EQ(d.size(), 64u) << info.id;
    digests.insert(d);
  }
  EXPECT_EQ(digests.size(), AllFamilies().size());
}

TEST(KernelSourceTest, SourceNamesExpressionAndHeaders) {
  absl::StatusOr<KernelSource> src = MakeKernelSource(Fp8Spec());
  ASSERT_TRUE(src.ok()) << src.status();
  EXPECT_EQ(src->source_name, "fp8_gemm_nt.cu");
  EXPECT_EQ(src->name_expression,
            "tpjit_kernels::fp8_gemm_nt<2112, 7168, 1, 64, 64, 128, 4, 2, 2>");
  ASSERT_EQ(src->headers.size(), 1u);
  EXPECT_EQ(src->headers[0].first, "tpjit_gemm.cuh");
  EXPECT_THAT(src->options,
              ::testing::ElementsAre("-arch=sm_90a", "-std=c++17"));
  for (const std::string& o : src->options) {
    EXPECT_THAT(o, ::testing::Not(HasSubstr("/"))) << "host path in options";
  }
}

TEST(KernelSourceTest, EmbeddedNamesAreRelative) {
  for (const EmbeddedFile& f : EmbeddedKernelFiles()) {
    EXPECT_EQ(f.name.find('/'), absl::string_view::npos) << f.name;
    EXPECT_FALSE(f.content.empty());
  }
}

TEST(KernelSourceTest, RejectsUnsupportedSpecs) {
  KernelSpec s = Fp8Spec();
  s.config.block_k = 64;
  EXPECT_FALSE(ValidateKernelSpec(s).ok());
  s = Fp8Spec();
  s.k = 7000;
  EXPECT_FALSE(ValidateKernelSpec(s).ok());
  s = Fp8Spec();
  s.config.block_m = 24;
  EXPECT_FALSE(ValidateKernelSpec(s).ok());
  s = Fp8Spec();
  s.groups = 4;  // non-grouped family
  EXPECT_FALSE(ValidateKernelSpec(s).ok());
  s = Fp8Spec();
  s.config.stages = 40;  // shared memory
  EXPECT_FALSE(ValidateKernelSpec(s).ok());
  s = Fp8Spec();
  s.arch = "sm_90a -I/tmp";
  EXPECT_FALSE(ValidateKernelSpec(s).ok());
  EXPECT_TRUE(ValidateKernelSpec(Fp8Spec()).ok());
}

TEST(KernelKeyTest, DeterministicAndSensitiveToEveryField) {
  const Toolchain tc{"13.0", "", CanonicalOptions("sm_90a")};
  const KernelSpec base = Fp8Spec();
  const std::string key = KernelKey(base, tc);
  EXPECT_EQ(key, KernelKey(base, tc));
  EXPECT_EQ(key.size(), 64u);
  std::set<std::string> keys = {key};
  auto vary = [&](auto mutate) {
    KernelSpec s = base;
    mutate(s);
    keys.insert(KernelKey(s, tc));
  };
  vary([](KernelSpec& s) { s.family = Family::kFp8GroupedGemmNtMasked; });
  vary([](KernelSpec& s) { s.n = 4096; });
  vary([](KernelSpec& s) { s.k = 2048; });
  vary([](KernelSpec& s) { s.groups = 2; });
  vary([](KernelSpec& s) { s.config.block_m = 32; });
  vary([](KernelSpec& s) { s.config.block_n = 128; });
  vary([](KernelSpec& s) { s.config.stages = 3; });
  vary([](KernelSpec& s) { s.config.warps_m = 1; });
  vary([](KernelSpec& s) { s.config.warps_n = 4; });
  vary([](KernelSpec& s) { s.arch = "sm_100a"; });
  EXPECT_EQ(keys.size(), 11u);
  EXPECT_NE(KernelKey(base, Toolchain{"13.1", "", tc.options}), key);
  EXPECT_NE(KernelKey(base, Toolchain{"13.0", "bump", tc.options}), key);
  EXPECT_NE(KernelKey(base, Toolchain{"13.0", "", {"-arch=sm_90a"}}), key);
  EXPECT_NE(KernelKey(base, "other-digest", tc), key);
}

// An NvrtcApi that succeeds with canned output unless told to fail a step.
class FakeNvrtc : public NvrtcApi {
 public:
  enum Step { kNone, kCreate, kName, kCompile, kCubin, kLowered };
  Step fail = kNone;
  int destroyed = 0;
  std::vector<std::string> seen_options;

  int Version(int* major, int* minor) override {
    *major = 13;
    *minor = 0;
    return 0;
  }
  int CreateProgram(Program* p, const std::string&, const std::string&,
                    const HeaderList&) override {
    if (fail == kCreate) return 5;
    *p = this;
    return 0;
  }
  int AddNameExpression(Program, const std::string&) override {
    return fail == kName ? 7 : 0;
  }
  int CompileProgram(Program, const std::vector<std::string>& o) override {
    seen_options = o;
    return fail == kCompile ? 6 : 0;
  }
  int GetLog(Program, std::string* log) override {
    *log = fail == kCompile ? "k.cu(3): error: expected a \";\"" : "";
    return 0;
  }
  int GetCubin(Program, std::string* cubin) override {
    if (fail == kCubin) return 3;
    *cubin =
        "\x7f"
        "ELF";
    return 0;
  }
  int GetLoweredName(Program, const std::string&, std::string* out) override {
    if (fail == kLowered) return 7;
    *out = "_Z1kv";
    return 0;
  }
  int DestroyProgram(Program* p) override {
    ++destroyed;
    *p = nullptr;
    return 0;
  }
  std::string ErrorString(int r) override {
    return "NVRTC_ERROR_" + std::to_string(r);
  }
};

CompileRequest Request() {
  CompileRequest r;
  r.source_name = "k.cu";
  r.source = "__global__ void k() {}";
  r.name_expressions = {"k"};
  r.options = {"-arch=sm_90a"};
  return r;
}

TEST(NvrtcCompilerTest, SuccessRecordsTimesAndNames) {
  FakeNvrtc api;
  FakeClock clock;
  double cpu = 1.0;
  NvrtcCompiler compiler(&api, &clock, [&] { return cpu += 0.25; });
  absl::StatusOr<CompileOutput> out = compiler.Compile(Request());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->lowered_names, std::vector<std::string>{"_Z1kv"});
  EXPECT_DOUBLE_EQ(out->cpu_seconds, 0.25);
  EXPECT_EQ(api.seen_options, std::vector<std::string>{"-arch=sm_90a"});
  EXPECT_EQ(api.destroyed, 1);
  EXPECT_EQ(*compiler.Version(), "13.0");
}

TEST(NvrtcCompilerTest, CompileErrorCarriesLogAndDestroysProgram) {
  FakeNvrtc api;
  api.fail = FakeNvrtc::kCompile;
  NvrtcCompiler compiler(&api);
  absl::StatusOr<CompileOutput> out = compiler.Compile(Request());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(out.status().message(), HasSubstr("expected a \";\""));
  EXPECT_THAT(out.status().message(), HasSubstr("k.cu"));
  EXPECT_EQ(api.destroyed, 1);
}

TEST(NvrtcCompilerTest, EveryFailingStepIsAnError) {
  for (auto step : {FakeNvrtc::kCreate, FakeNvrtc::kName, FakeNvrtc::kCubin,
                    FakeNvrtc::kLowered}) {
    FakeNvrtc api;
    api.fail = step;
    absl::StatusOr<CompileOutput> out = NvrtcCompiler(&api).Compile(Request());
    EXPECT_FALSE(out.ok()) << step;
    EXPECT_EQ(api.destroyed, step == FakeNvrtc::kCreate ? 0 : 1) << step;
  }
}

using ::tpjit::testing::TinyCubin;

TEST(CubinTest, AcceptsWellFormedAndFindsSymbol) {
  absl::StatusOr<CubinKernelInfo> info =
      InspectCubin(TinyCubin("_Z1kv"), "_Z1kv");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->symbol, "_Z1kv");
  EXPECT_EQ(InspectCubin(TinyCubin("_Z1kv"), "_Z1xv").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CubinTest, RejectsMalformed) {
  const std::string good = TinyCubin("_Z1kv");
  EXPECT_FALSE(InspectCubin("", "_Z1kv").ok());
  EXPECT_FALSE(InspectCubin(good.substr(0, 40), "_Z1kv").ok());
  EXPECT_FALSE(InspectCubin(good.substr(0, good.size() - 10), "_Z1kv").ok());
  EXPECT_FALSE(
      InspectCubin(TinyCubin("_Z1kv", 90, 62), "_Z1kv").ok());  // x86-64
  std::string bad_class = good;
  bad_class[EI_CLASS] = ELFCLASS32;
  EXPECT_FALSE(InspectCubin(bad_class, "_Z1kv").ok());
  std::string bad_magic = good;
  bad_magic[1] = 'X';
  EXPECT_FALSE(InspectCubin(bad_magic, "_Z1kv").ok());
}

}  // namespace
}  // namespace tpjit
