// The real tpjitd serving generic compiles on the CPU: minitl (a header-only
// library that needs host headers and --expt-relaxed-constexpr) through the
// NVCC back end, the same library at a second absolute path hitting the
// cache, NVRTC with include directories, include escapes and bad options
// refused, and a hung nvcc killed at its limit while the daemon stays up.
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/compile/cubin.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using tpjit::v1::CompileRequest;
using tpjit::v1::CompileResponse;

const std::string kMinitl = std::string(TPJIT_MINITL_DIR) + "/include";

std::string MinitlKernel(int unroll, int block) {
  return absl::StrCat(
      "#include \"minitl/minitl.cuh\"\n"
      "extern \"C\" __global__ void minitl_acc(float* y, const float* x, "
      "int n) {\n  minitl::Accumulate<float, ",
      unroll, ", ", block, ">(y, x, n);\n}\n");
}

class GenericDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    allowed_ = fs::canonical(dir_->path()).string() + "/allowed";
    fs::create_directories(allowed_);
    // nvcc runs as an unprivileged user when the tests run as root: it must
    // be able to read the include trees.
    fs::permissions(dir_->path(), fs::perms(0755));
    fs::permissions(allowed_, fs::perms(0755));
    fs::create_directories(dir_->path() + "/outside");
    daemon_ = new Daemon(dir_->path(),
                         {"--slots", "2", "--procs", "1", "--include-allowlist",
                          allowed_ + ":/nonexistent"});
    ASSERT_TRUE(daemon_->WaitServing());
  }
  static void TearDownTestSuite() {
    EXPECT_EQ(daemon_->Stop(), 0);
    delete daemon_;
    delete dir_;
  }

  static std::string CopyMinitl(const std::string& name) {
    std::string dst = allowed_ + "/" + name;
    if (!fs::exists(dst)) {
      fs::create_directories(dst);
      fs::copy(kMinitl, dst, fs::copy_options::recursive);
    }
    return dst;
  }

  static CompileRequest Request(tpjit::v1::Backend backend,
                                const std::string& include_dir) {
    CompileRequest r;
    r.set_backend(backend);
    r.set_arch("sm_90a");
    if (!include_dir.empty()) r.add_include_dirs(include_dir);
    if (backend == tpjit::v1::NVCC) r.add_options("--expt-relaxed-constexpr");
    return r;
  }

  static grpc::Status Compile(const CompileRequest& r, CompileResponse* out) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(90));
    return daemon_->stub().Compile(&ctx, r, out);
  }

  static std::string Fetch(const std::string& key) {
    grpc::ClientContext ctx;
    tpjit::v1::FetchRequest req;
    req.set_key(key);
    auto reader = daemon_->stub().Fetch(&ctx, req);
    std::string bytes;
    tpjit::v1::FetchChunk chunk;
    while (reader->Read(&chunk)) bytes += chunk.data();
    EXPECT_TRUE(reader->Finish().ok());
    return bytes;
  }

  static void ExpectCudaElf(const std::string& cubin,
                            const std::string& symbol) {
    ASSERT_GT(cubin.size(), 64u);
    EXPECT_EQ(cubin.substr(0, 4),
              "\x7f"
              "ELF");
    EXPECT_EQ(static_cast<unsigned char>(cubin[18]), 190);  // EM_CUDA
    auto info = InspectCubin(cubin, symbol);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->sm, 90);
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string allowed_;
  static inline Daemon* daemon_ = nullptr;
};

TEST_F(GenericDaemonTest, NvccLibraryCompilesAndASecondCopyHitsTheCache) {
  CompileRequest r = Request(tpjit::v1::NVCC, CopyMinitl("site-a/include"));
  auto* s = r.add_sources();
  s->set_name("minitl_acc_4_128.cu");
  s->set_source(MinitlKernel(4, 128));
  CompileResponse first;
  ASSERT_TRUE(Compile(r, &first).ok());
  ASSERT_EQ(first.results_size(), 1);
  ASSERT_TRUE(first.results(0).ok()) << first.results(0).error();
  EXPECT_FALSE(first.results(0).cache_hit());
  ExpectCudaElf(Fetch(first.results(0).key()), "minitl_acc");
  const int64_t compiles = daemon_->Stats().compiles();

  // The same library installed elsewhere: same key, no compile.
  r.set_include_dirs(0, CopyMinitl("venv/lib/python3/site-b/include"));
  CompileResponse second;
  ASSERT_TRUE(Compile(r, &second).ok());
  ASSERT_TRUE(second.results(0).ok()) << second.results(0).error();
  EXPECT_EQ(second.results(0).key(), first.results(0).key());
  EXPECT_TRUE(second.results(0).cache_hit());
  EXPECT_EQ(daemon_->Stats().compiles(), compiles);
}

TEST_F(GenericDaemonTest, NvrtcWithIncludeDirsProducesACubin) {
  CompileRequest r = Request(tpjit::v1::NVRTC, CopyMinitl("site-a/include"));
  auto* s = r.add_sources();
  s->set_name("scale.cu");
  s->set_source(
      "#include \"minitl/plain.cuh\"\n"
      "template <int F> __global__ void scale(float* p, int n) {\n"
      "  minitl::ScaleInPlace<F>(p, n);\n}\n");
  s->add_name_expressions("scale<3>");
  CompileResponse out;
  ASSERT_TRUE(Compile(r, &out).ok());
  ASSERT_TRUE(out.results(0).ok()) << out.results(0).error();
  ASSERT_EQ(out.results(0).lowered_names_size(), 1);
  ExpectCudaElf(Fetch(out.results(0).key()), out.results(0).lowered_names(0));
}

TEST_F(GenericDaemonTest, NvccBackEndProducesACubinForATinyKernel) {
  CompileRequest r = Request(tpjit::v1::NVCC, "");
  for (int i = 0; i < 2; ++i) {  // a batch of two, one per slot
    auto* s = r.add_sources();
    s->set_name(absl::StrCat("tiny", i, ".cu"));
    s->set_source(absl::StrCat(
        "extern \"C\" __global__ void tiny(float* p) { p[threadIdx.x] *= ",
        i + 2, ".0f; }\n"));
  }
  CompileResponse out;
  ASSERT_TRUE(Compile(r, &out).ok());
  ASSERT_EQ(out.results_size(), 2);
  for (const auto& result : out.results()) {
    ASSERT_TRUE(result.ok()) << result.error();
    ExpectCudaElf(Fetch(result.key()), "tiny");
  }
  EXPECT_NE(out.results(0).key(), out.results(1).key());
  EXPECT_EQ(out.results(0).name(), "tiny0.cu");
}

TEST_F(GenericDaemonTest, IncludeEscapesAndBadOptionsAreInvalidArgument) {
  CopyMinitl("site-a/include");
  fs::create_directory_symlink(dir_->path() + "/outside", allowed_ + "/escape");
  for (const std::string& dir :
       {dir_->path() + "/outside", allowed_ + "/../outside",
        allowed_ + "/site-a/include/../../../outside", allowed_ + "/escape",
        std::string("/usr/include")}) {
    for (auto backend : {tpjit::v1::NVCC, tpjit::v1::NVRTC}) {
      CompileRequest r = Request(backend, dir);
      r.add_sources()->set_source("__global__ void k() {}\n");
      CompileResponse out;
      grpc::Status st = Compile(r, &out);
      EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << dir;
      EXPECT_THAT(st.error_message(), HasSubstr("include_dirs")) << dir;
    }
  }
  // NVRTC reads headers itself: the scan must see every spelling.
  for (const std::string& source :
       {"#include \"/etc/passwd\"\n", "// x ?\?/\n#include \"/etc/passwd\"\n",
        "// x\r#include \"/etc/passwd\"\r", "#import \"/etc/passwd\"\n",
        "%:include \"/etc/passwd\"\n"}) {
    CompileRequest r = Request(tpjit::v1::NVRTC, "");
    r.add_sources()->set_source(source);
    CompileResponse out;
    grpc::Status st = Compile(r, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << source;
    EXPECT_THAT(st.error_message(), HasSubstr("/etc/passwd")) << source;
  }
  for (const std::string& option :
       {"-o=/tmp/x", "--run", "-ccbin=/bin", "-I/etc", "-Xcompiler=-fplugin",
        "-DX=$(id>/tmp/f;echo${IFS}1)", "-forward-unknown-to-host-compiler",
        "-B/dir/", "-Xptxas=--maxrregcount=32 --options-file /etc/passwd"}) {
    CompileRequest r = Request(tpjit::v1::NVCC, "");
    r.add_options(option);
    r.add_sources()->set_source("__global__ void k() {}\n");
    CompileResponse out;
    grpc::Status st = Compile(r, &out);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << option;
    EXPECT_THAT(st.error_message(), HasSubstr(option.substr(0, 12)));
  }
}

// Issue 12's disclosure inputs: every spelling of an include of a file
// outside the allowed roots fails, and nothing of the file comes back.
TEST_F(GenericDaemonTest, NvccNeverShowsFilesOutsideTheIncludeDirs) {
  const std::string secret = dir_->path() + "/outside/secret.h";
  std::ofstream(secret) << "TOPSECRET_LINE something\n";
  fs::permissions(dir_->path() + "/outside", fs::perms(0755));
  fs::permissions(secret, fs::perms(0644));
  for (const std::string& source :
       {"#include \"" + secret + "\"\n",
        "// x ?\?/\n#include \"" + secret + "\"\n",
        "// x\r#include \"" + secret + "\"\r", "#import \"" + secret + "\"\n",
        "#define F \"" + secret + "\"\n#include F\n",
        std::string("#include \"/etc/passwd\"\n")}) {
    CompileRequest r = Request(tpjit::v1::NVCC, "");
    r.add_sources()->set_source(source + "__global__ void k() {}\n");
    CompileResponse out;
    grpc::Status st = Compile(r, &out);
    ASSERT_TRUE(st.ok()) << st.error_message();
    const auto& res = out.results(0);
    EXPECT_FALSE(res.ok()) << source;
    EXPECT_THAT(res.error() + res.log(), Not(HasSubstr("TOPSECRET_LINE")))
        << source;
    EXPECT_THAT(res.error() + res.log(), Not(HasSubstr("root:x:"))) << source;
  }
}

// Eight callers, one kernel: one nvcc run; results identical.
TEST_F(GenericDaemonTest, ConcurrentCallersShareOneNvccCompile) {
  const std::string dir = CopyMinitl("single-flight/include");
  const int64_t before = daemon_->Stats().compiles();
  std::vector<std::thread> threads;
  std::vector<CompileResponse> outs(8);
  std::vector<grpc::Status> sts(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      CompileRequest r = Request(tpjit::v1::NVCC, dir);
      r.set_return_output(true);
      r.add_sources()->set_source(MinitlKernel(4, 32));
      sts[i] = Compile(r, &outs[i]);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(sts[i].ok()) << sts[i].error_message();
    ASSERT_TRUE(outs[i].results(0).ok()) << outs[i].results(0).error();
    EXPECT_EQ(outs[i].results(0).output(), outs[0].results(0).output());
  }
  ExpectCudaElf(outs[0].results(0).output(), "minitl_acc");
  EXPECT_EQ(daemon_->Stats().compiles() - before, 1);
}

// Issue 12's wrong-code input: a header included only under the arch
// feature macro that -cubin defines. Editing it must not hit the old cubin.
TEST_F(GenericDaemonTest, HeaderUnderArchFeatureMacroIsPartOfTheKey) {
  const std::string dir = allowed_ + "/feature/include";
  fs::create_directories(dir);
  std::ofstream(dir + "/feat.h") << "#define VALUE 1\n";
  CompileRequest r = Request(tpjit::v1::NVCC, dir);
  r.set_return_output(true);
  r.add_sources()->set_source(
      "#ifdef __CUDA_ARCH_FEAT_SM90_ALL\n#include \"feat.h\"\n#endif\n"
      "extern \"C\" __global__ void f(int* p) { *p = VALUE; }\n");
  CompileResponse first, second, third;
  ASSERT_TRUE(Compile(r, &first).ok());
  ASSERT_TRUE(first.results(0).ok()) << first.results(0).error();
  ASSERT_TRUE(Compile(r, &second).ok());
  EXPECT_TRUE(second.results(0).cache_hit());
  std::ofstream(dir + "/feat.h") << "#define VALUE 2\n";
  ASSERT_TRUE(Compile(r, &third).ok());
  ASSERT_TRUE(third.results(0).ok());
  EXPECT_FALSE(third.results(0).cache_hit());
  EXPECT_NE(third.results(0).output(), first.results(0).output());
}

TEST_F(GenericDaemonTest, NvccPtxOutputAndExitCode) {
  CompileRequest r = Request(tpjit::v1::NVCC, "");
  r.set_output(tpjit::v1::PTX);
  r.set_return_output(true);
  r.add_sources()->set_source("extern \"C\" __global__ void ptxk() {}\n");
  CompileResponse out;
  ASSERT_TRUE(Compile(r, &out).ok());
  ASSERT_TRUE(out.results(0).ok()) << out.results(0).error();
  EXPECT_THAT(out.results(0).output(), HasSubstr(".entry ptxk"));
  EXPECT_EQ(out.results(0).exit_code(), 0);
}

TEST_F(GenericDaemonTest, CompileErrorIsReportedWithTheLog) {
  CompileRequest r = Request(tpjit::v1::NVCC, CopyMinitl("site-a/include"));
  r.clear_options();  // minitl needs --expt-relaxed-constexpr
  r.add_sources()->set_source(MinitlKernel(2, 64));
  CompileResponse out;
  ASSERT_TRUE(Compile(r, &out).ok());
  EXPECT_FALSE(out.results(0).ok());
  EXPECT_THAT(out.results(0).error(), HasSubstr("expt-relaxed-constexpr"));
}

TEST_F(GenericDaemonTest, HungNvccIsKilledAtItsLimitAndTheDaemonServes) {
  CompileRequest r = Request(tpjit::v1::NVCC, "");
  r.set_timeout_seconds(3);
  // 200000 function template instantiations: nvcc works on it for minutes.
  r.add_sources()->set_source(
      "#include <utility>\n"
      "template <int I> __device__ int Term(int x) { return x * I + (I ^ x); "
      "}\n"
      "template <int... I>\n"
      "__device__ int Sum(int x, std::integer_sequence<int, I...>) {\n"
      "  return (Term<I>(x) + ...);\n}\n"
      "extern \"C\" __global__ void hang(int* p) {\n"
      "  *p = Sum(*p, std::make_integer_sequence<int, 200000>{});\n}\n");
  const absl::Time start = absl::Now();
  CompileResponse out;
  ASSERT_TRUE(Compile(r, &out).ok());
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  EXPECT_FALSE(out.results(0).ok());
  EXPECT_THAT(out.results(0).error(), HasSubstr("time limit"));
  EXPECT_LT(seconds, 20);
  EXPECT_EQ(daemon_->Health(""),
            grpc::health::v1::HealthCheckResponse::SERVING);
  // And it still compiles.
  CompileRequest next = Request(tpjit::v1::NVRTC, "");
  next.add_sources()->set_source("extern \"C\" __global__ void after() {}\n");
  ASSERT_TRUE(Compile(next, &out).ok());
  EXPECT_TRUE(out.results(0).ok()) << out.results(0).error();
}

}  // namespace
}  // namespace tpjit::testing
