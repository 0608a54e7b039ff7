// ParseNvccArgs, RewriteSourceName, QuotedIncludes, CheckOutput and
// InterpretResponse: which nvcc calls tpjitd serves, and what the request
// and the reply mean.
#include "client/nvcc/nvcc_args.h"

#include "absl/strings/str_cat.h"
#include "client/nvcc/remote_compile.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kCwd[] = "/cache/tmp";

// DeepGEMM's compile call (csrc/jit/compiler.hpp), without the program.
std::vector<std::string> DeepGemmArgs() {
  return {"/cache/tmp/uuid/kernel.cu",
          "-cubin",
          "-o",
          "/cache/tmp/uuid/kernel.cubin",
          "-std=c++20",
          "--diag-suppress=39,161,174,177,186,940",
          "--ptxas-options=--register-usage-level=10",
          "-I/opt/dg/deep_gemm/include",
          "--gpu-architecture=sm_90a",
          "--compiler-options=-fPIC,-O3,-fconcepts,-Wno-deprecated-"
          "declarations,-Wno-abi",
          "-O3",
          "--expt-relaxed-constexpr",
          "--expt-extended-lambda"};
}

TEST(ParseNvccArgs, DeepGemmCall) {
  auto call = ParseNvccArgs(DeepGemmArgs(), kCwd);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->source, "/cache/tmp/uuid/kernel.cu");
  EXPECT_EQ(call->source_abs, "/cache/tmp/uuid/kernel.cu");
  EXPECT_EQ(call->mode, NvccMode::kCubin);
  EXPECT_EQ(call->output, "/cache/tmp/uuid/kernel.cubin");
  EXPECT_EQ(call->arch, "sm_90a");
  EXPECT_THAT(call->include_dirs, ElementsAre("/opt/dg/deep_gemm/include"));
  EXPECT_THAT(
      call->options,
      ElementsAre("-std=c++20", "--diag-suppress=39,161,174,177,186,940",
                  "--ptxas-options=--register-usage-level=10",
                  "--compiler-options=-fPIC,-O3,-fconcepts,-Wno-"
                  "deprecated-declarations,-Wno-abi",
                  "-O3", "--expt-relaxed-constexpr", "--expt-extended-lambda"));
}

TEST(ParseNvccArgs, SplitFormsAreJoinedAndPathsMadeAbsolute) {
  auto call = ParseNvccArgs(
      {"k.cu",   "-ptx",       "-o",        "out/k.ptx", "-arch",
       "sm_90a", "-I",         "inc",       "-Iinc2",    "--include-path",
       "a,b",    "-Xcompiler", "-rdynamic", "-lineinfo", "-std",
       "c++17",  "-D",         "X=1",       "-DY",       "-x",
       "cu"},
      kCwd);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->mode, NvccMode::kPtx);
  EXPECT_EQ(call->source, "k.cu");
  EXPECT_EQ(call->source_abs, "/cache/tmp/k.cu");
  EXPECT_EQ(call->output, "/cache/tmp/out/k.ptx");
  EXPECT_EQ(call->arch, "sm_90a");
  EXPECT_THAT(call->include_dirs,
              ElementsAre("/cache/tmp/inc", "/cache/tmp/inc2", "/cache/tmp/a",
                          "/cache/tmp/b"));
  EXPECT_THAT(call->options,
              ElementsAre("-Xcompiler=-rdynamic", "-lineinfo", "-std=c++17",
                          "-DX=1", "-DY", "-x=cu"));
}

TEST(ParseNvccArgs, DefaultOutputIsBesideTheWorkingDirectory) {
  auto call = ParseNvccArgs({"/src/kern.cu", "-cubin", "-arch=sm_100a"}, kCwd);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->output, "/cache/tmp/kern.cubin");
  EXPECT_THAT(call->options, IsEmpty());
}

TEST(ParseNvccArgs, OtherCallsRunTheRealNvcc) {
  const std::vector<std::vector<std::string>> local = {
      {"--version"},
      {"-V"},
      {"k.cu", "-E", "-arch=sm_90a"},
      {"k.cu", "-cubin", "-c", "-arch=sm_90a"},
      {"k.cu", "-cubin"},                          // no arch
      {"k.cu", "-cubin", "-arch=native"},          // not one sm_ arch
      {"k.cu", "-cubin", "-arch=sm_80,sm_90"},     // several
      {"k.cu", "-cubin", "-arch=compute_90"},      // virtual
      {"k.cu", "-arch=sm_90a", "-o", "k.o"},       // no -cubin / -ptx
      {"a.cu", "b.cu", "-cubin", "-arch=sm_90a"},  // two sources
      {"k.cu", "-cubin", "-ptx", "-arch=sm_90a"},  // two modes
      {"k.cu", "-cubin", "-arch=sm_90a", "-gencode",
       "arch=compute_90,code=sm_90"},
      {"k.cu", "-cubin", "-arch=sm_90a", "-MD", "-MF", "k.d"},
      {"k.cu", "-cubin", "-arch=sm_90a", "--dryrun"},
      {"k.cu", "-cubin", "-arch=sm_90a", "-keep"},
      {"k.cu", "-cubin", "-arch=sm_90a", "-optf", "opts"},
      {"k.cu", "-cubin", "-arch"},  // missing value
      {"k.cu", "-cubin", "-arch=sm_90a", "-o", "-"},
  };
  for (const auto& args : local) {
    auto call = ParseNvccArgs(args, kCwd);
    EXPECT_EQ(call.status().code(), absl::StatusCode::kUnimplemented)
        << args[0] << " ... " << args.back();
  }
}

TEST(ParseNvccArgs, OptionsTheDaemonJudgesAreKept) {
  auto call = ParseNvccArgs({"k.cu", "-cubin", "-arch=sm_90a", "-ccbin",
                             "/usr/bin/g++", "-isystem", "/x", "-Xptxas", "-v"},
                            kCwd);
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_THAT(call->options,
              ElementsAre("-ccbin=/usr/bin/g++", "-isystem=/x", "-Xptxas=-v"));
}

TEST(RewriteSourceName, NamesTheSourceAsGiven) {
  const std::string log =
      "kernel.cu(2): error: identifier \"x\" is undefined\n"
      "  detected during instantiation at line 5 of kernel.cu\n"
      "/inc/kernel.cuh(3): note: not this one\n"
      "my_kernel.cu(1): nor this\n"
      "1 error detected in the compilation of \"kernel.cu\".\n";
  EXPECT_EQ(RewriteSourceName(log, "kernel.cu", "/c/tmp/u/kernel.cu"),
            "/c/tmp/u/kernel.cu(2): error: identifier \"x\" is undefined\n"
            "  detected during instantiation at line 5 of /c/tmp/u/kernel.cu\n"
            "/inc/kernel.cuh(3): note: not this one\n"
            "my_kernel.cu(1): nor this\n"
            "1 error detected in the compilation of \"/c/tmp/u/kernel.cu\".\n");
  EXPECT_EQ(RewriteSourceName(log, "kernel.cu", "kernel.cu"), log);
}

TEST(QuotedIncludes, FindsQuotedNamesOnly) {
  EXPECT_THAT(
      QuotedIncludes("#include <a/b.h>\n  #  include \"c.cuh\"\n"
                     "#include_next \"d.h\"\nint x; // #include \"e\"\n"),
      ElementsAre("c.cuh", "d.h"));
}

TEST(CheckOutput, CubinIsElfAndPtxIsNot) {
  constexpr char kElf[] = "\177ELF....";
  EXPECT_TRUE(CheckOutput(kElf, NvccMode::kCubin).ok());
  EXPECT_FALSE(CheckOutput("//\n.version 9.0", NvccMode::kCubin).ok());
  EXPECT_TRUE(CheckOutput("//\n.version 9.0", NvccMode::kPtx).ok());
  EXPECT_FALSE(CheckOutput(kElf, NvccMode::kPtx).ok());
  EXPECT_FALSE(CheckOutput("", NvccMode::kPtx).ok());
}

TEST(BuildCompileRequest, CarriesTheCall) {
  auto call = ParseNvccArgs(DeepGemmArgs(), kCwd);
  ASSERT_TRUE(call.ok());
  auto r = BuildCompileRequest(*call, "source text", "dsv3-tp8");
  EXPECT_EQ(r.backend(), tpjit::v1::NVCC);
  EXPECT_EQ(r.arch(), "sm_90a");
  EXPECT_EQ(r.output(), tpjit::v1::CUBIN);
  EXPECT_TRUE(r.return_output());
  EXPECT_EQ(r.group(), "dsv3-tp8");
  ASSERT_EQ(r.sources_size(), 1);
  EXPECT_EQ(r.sources(0).name(), "kernel.cu");
  EXPECT_EQ(r.sources(0).source(), "source text");
  EXPECT_THAT(r.include_dirs(), ElementsAre("/opt/dg/deep_gemm/include"));
  EXPECT_EQ(r.options_size(), 7);
}

tpjit::v1::CompileResponse Reply(bool ok, int exit_code, std::string log,
                                 std::string error) {
  tpjit::v1::CompileResponse response;
  auto* r = response.add_results();
  r->set_ok(ok);
  r->set_exit_code(exit_code);
  r->set_log(std::move(log));
  r->set_error(std::move(error));
  r->set_key(std::string(64, 'a'));
  return response;
}

TEST(InterpretResponse, CompilerVerdictsAndDaemonFailures) {
  auto ok = InterpretResponse(Reply(true, 0, "warning", ""));
  EXPECT_EQ(ok.kind, RemoteOutcome::kCompiled);
  EXPECT_EQ(ok.log, "warning");
  EXPECT_TRUE(ok.output.empty());  // fetched by key

  auto err = InterpretResponse(Reply(false, 2, "k.cu(1): error\n", "failed"));
  EXPECT_EQ(err.kind, RemoteOutcome::kCompileError);
  EXPECT_EQ(err.exit_code, 2);
  EXPECT_EQ(err.log, "k.cu(1): error\n");

  auto older = InterpretResponse(Reply(
      false, 0, "",
      "compiling k.cu: nvcc -cubin failed (exit status 1)\nk.cu(1): e\n"));
  EXPECT_EQ(older.kind, RemoteOutcome::kCompileError);
  EXPECT_EQ(older.exit_code, 1);
  EXPECT_EQ(older.log, "k.cu(1): e\n");

  auto crash =
      InterpretResponse(Reply(false, 0, "", "worker crashed\nretried once"));
  EXPECT_EQ(crash.kind, RemoteOutcome::kUnavailable);
  EXPECT_EQ(crash.reason,
            "tpjitd could not compile: worker crashed retried once");

  tpjit::v1::CompileResponse empty;
  EXPECT_EQ(InterpretResponse(empty).kind, RemoteOutcome::kUnavailable);
}

TEST(InterpretResponse, QueuedIsNeitherOutputNorFailure) {
  auto reply = Reply(false, 0, "", "queued (no_wait)");
  reply.mutable_results(0)->set_queued(true);
  reply.mutable_results(0)->set_key(std::string(64, 'a'));
  auto queued = InterpretResponse(reply);
  EXPECT_EQ(queued.kind, RemoteOutcome::kQueued);
  EXPECT_TRUE(queued.output.empty());
  // The key: a caller may await its compile (AwaitKeys).
  EXPECT_EQ(queued.reason,
            absl::StrCat("queued in tpjitd (key ", std::string(64, 'a'), ")"));
}

}  // namespace
}  // namespace tpjit
