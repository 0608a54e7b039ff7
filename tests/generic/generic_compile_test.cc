// Generic compiles without the daemon: include-dir resolution against the
// allowlist, option validation, include scanning, content keys (NVRTC: by
// header content; NVCC: by the preprocessed TU, which runs nvcc -E), and the
// time-limited child process runner.
#include "daemon/generic_compile.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "daemon/nvcc.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using tpjit::v1::CompileRequest;

const std::string kMinitl = std::string(TPJIT_MINITL_DIR) + "/include";

class GenericCompileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = ScopedTempDir::Create("tpjit-generic-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    tmp_ = std::make_unique<ScopedTempDir>(std::move(*dir));
    root_ = fs::canonical(tmp_->path()).string();
    fs::create_directories(Allowed() + "/inc");
    fs::create_directories(root_ + "/outside");
    config_.include_allowlist = {Allowed()};
  }
  std::string Allowed() const { return root_ + "/allowed"; }
  void Write(const std::string& path, const std::string& text) {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path) << text;
  }
  // A copy of minitl's include tree at `dir`.
  void CopyMinitl(const std::string& dir) {
    fs::create_directories(dir);
    fs::copy(kMinitl, dir, fs::copy_options::recursive);
  }

  std::unique_ptr<ScopedTempDir> tmp_;
  std::string root_;
  DaemonConfig config_;
  GenericToolchain toolchain_{"13.0", "", "salt"};
};

TEST_F(GenericCompileTest, ResolveAllowedIncludeAcceptsDirsUnderTheAllowlist) {
  auto r = ResolveAllowedInclude(Allowed() + "/inc", config_.include_allowlist);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, Allowed() + "/inc");
  // A symlink that stays inside resolves to its target.
  fs::create_directory_symlink(Allowed() + "/inc", Allowed() + "/link");
  r = ResolveAllowedInclude(Allowed() + "/link", config_.include_allowlist);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, Allowed() + "/inc");
  EXPECT_TRUE(ResolveAllowedInclude(Allowed(), {Allowed() + "/"}).ok());
}

TEST_F(GenericCompileTest, ResolveAllowedIncludeRefusesEscapes) {
  const auto& allow = config_.include_allowlist;
  const std::vector<std::string> refused = {
      root_ + "/outside",                           // outside
      Allowed() + "/../outside",                    // `..` escape
      Allowed() + "/inc/../../outside",             // deeper `..` escape
      Allowed() + "/escape",                        // symlink out (made below)
      Allowed() + "-sibling",                       // a prefix is not a parent
      "relative/inc",                               // not absolute
      "",                                           // empty
      Allowed() + "/missing",                       // does not exist
      Allowed() + "/file.h",                        // not a directory
      Allowed() + std::string("/inc\0/../..", 11),  // NUL inside
  };
  fs::create_directory_symlink(root_ + "/outside", Allowed() + "/escape");
  fs::create_directories(Allowed() + "-sibling");
  Write(Allowed() + "/file.h", "");
  for (const std::string& dir : refused) {
    auto r = ResolveAllowedInclude(dir, allow);
    ASSERT_FALSE(r.ok()) << dir;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << dir;
    EXPECT_THAT(r.status().message(), HasSubstr("include_dirs"));
  }
  auto none = ResolveAllowedInclude(Allowed() + "/inc", {});
  EXPECT_THAT(none.status().message(), HasSubstr("no include allowlist"));
}

TEST_F(GenericCompileTest, ValidateCompileOptionsNamesTheRefusedOption) {
  const std::vector<std::string> refused = {"-o",
                                            "-o=/tmp/x",
                                            "--output-file=/tmp/x",
                                            "-odir",
                                            "--output-directory",
                                            "--run",
                                            "-run",
                                            "-E",
                                            "--preprocess",
                                            "-ccbin=/bin",
                                            "--compiler-bindir=/bin",
                                            "-Xcompiler=-fplugin=x.so",
                                            "-Xlinker",
                                            "-Xptxas",
                                            "-Xptxas=--output-file=x",
                                            "-I/etc",
                                            "-Irel",
                                            "--include-path=/etc",
                                            "-isystem=/usr/include",
                                            "--pre-include=/etc/passwd",
                                            "-MD",
                                            "-MF=deps",
                                            "--options-file=f",
                                            "-optf",
                                            "--keep",
                                            "-save-temps",
                                            "--time=t.csv",
                                            "-arch=sm_80",
                                            "-gencode=arch=compute_80",
                                            "-lcuda",
                                            "-L/usr/lib",
                                            "/etc/passwd",
                                            "c++17",
                                            "-",
                                            "--dryrun"};
  for (const std::string& o : refused) {
    absl::Status s = ValidateCompileOptions({"-O3", o}, /*nvcc=*/true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << o;
    EXPECT_THAT(s.message(), HasSubstr("\"" + o + "\"")) << o;
  }
  EXPECT_TRUE(
      ValidateCompileOptions({"-O3", "--expt-relaxed-constexpr", "-std=c++17",
                              "-DN=4", "-UX", "-lineinfo", "-Xptxas=-v,-O3",
                              "--use_fast_math", "-maxrregcount=128", "-w"},
                             true)
          .ok());
  for (const std::string& o : {"-I/etc", "--include-path=/etc", "--time=x",
                               "--create-pch=x", "-arch=sm_80", "a.cu"}) {
    EXPECT_EQ(ValidateCompileOptions({o}, /*nvcc=*/false).code(),
              absl::StatusCode::kInvalidArgument)
        << o;
  }
  EXPECT_TRUE(
      ValidateCompileOptions(
          {"-std=c++17", "--expt-relaxed-constexpr", "-default-device"}, false)
          .ok());
}

TEST_F(GenericCompileTest, IncludedNamesAndLineMarkers) {
  auto names = IncludedNames(
      "#include \"a/b.h\"\n  #  include <c.h>\n// #include \"no\"\n"
      "#include_next <d.h>\n#define X 1\n#include MACRO\n");
  ASSERT_EQ(names.size(), 4u);
  EXPECT_EQ(names[0].name, "a/b.h");
  EXPECT_TRUE(names[0].quoted);
  EXPECT_EQ(names[1].name, "c.h");
  EXPECT_FALSE(names[1].quoted);
  EXPECT_EQ(names[2].name, "d.h");  // include_next: a superset is harmless
  EXPECT_EQ(names[3].name, "");     // computed
  EXPECT_EQ(StripLineMarkers("# 1 \"/abs/x.h\"\nint a;\n#line 3 \"/y\"\n"
                             "  # 7 \"/z\" 2\n#pragma once\nint b;"),
            "int a;\n#pragma once\nint b;\n");
}

TEST_F(GenericCompileTest, SourcesIncludeOnlyThroughTheIncludeDirs) {
  const std::vector<std::string> refused = {
      "#include \"/etc/passwd\"\n",
      "#include <../x.h>\n",
      "#include \"a/../../x.h\"\n",
      "#/**/include \"/etc/passwd\"\n",
      "#inc\\\nlude \"/etc/passwd\"\n",
      "%:include \"/etc/passwd\"\n",
      "\?\?=include \"/etc/passwd\"\n",
      "/* a\n comment */ #include \"/etc/passwd\"\n",
      "const char* s = R\"x(/*)x\";\n#include \"/etc/passwd\"\n",
      "#define P \"/etc/passwd\"\n#include P\n",
      "int a;\r\n  #  include_next </etc/passwd>\r\n",
  };
  for (const std::string& src : refused) {
    EXPECT_EQ(CheckSourceIncludes(src).code(),
              absl::StatusCode::kInvalidArgument)
        << src;
  }
  const std::vector<std::string> accepted = {
      "#include \"minitl/minitl.cuh\"\n#include <utility>\n",
      "// #include \"/etc/passwd\"\n",
      "/* #include \"/etc/passwd\" */\n",
      "const char* s = \"#include \\\"/etc/passwd\\\"\";\n",
      "int x = 1'000;\n#include \"a.h\"\n",
      "const char* s = \"/*\";\n#include \"a.h\"\n",
  };
  for (const std::string& src : accepted) {
    EXPECT_TRUE(CheckSourceIncludes(src).ok()) << src;
  }
}

TEST_F(GenericCompileTest, WorkerTimeLimitLeavesAMargin) {
  EXPECT_DOUBLE_EQ(WorkerTimeLimit(3), 2.5);
  EXPECT_DOUBLE_EQ(WorkerTimeLimit(20), 18);
  EXPECT_DOUBLE_EQ(WorkerTimeLimit(120), 115);
  EXPECT_GT(WorkerTimeLimit(0.2), 0);
}

CompileRequest Request(tpjit::v1::Backend backend, const std::string& dir,
                       const std::string& source) {
  CompileRequest r;
  r.set_backend(backend);
  r.set_arch("sm_90a");
  r.add_include_dirs(dir);
  auto* s = r.add_sources();
  s->set_name("k.cu");
  s->set_source(source);
  return r;
}

TEST_F(GenericCompileTest, NvrtcKeysHeadersByContentNotPath) {
  CopyMinitl(Allowed() + "/a");
  CopyMinitl(Allowed() + "/b/deeper");
  const std::string src = "#include \"minitl/plain.cuh\"\n";
  auto a = BuildGenericTasks(Request(tpjit::v1::NVRTC, Allowed() + "/a", src),
                             config_, toolchain_);
  auto b =
      BuildGenericTasks(Request(tpjit::v1::NVRTC, Allowed() + "/b/deeper", src),
                        config_, toolchain_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)[0]->key, (*b)[0]->key);
  const auto& headers = (*a)[0]->request.headers();
  ASSERT_EQ(headers.size(), 2);  // plain.cuh and, relative to it, detail/
  EXPECT_EQ(headers[0].name(), "detail/device.cuh");
  EXPECT_EQ(headers[1].name(), "minitl/plain.cuh");
  // A changed header changes the key.
  Write(Allowed() + "/b/deeper/minitl/detail/device.cuh", "// changed\n");
  b = BuildGenericTasks(Request(tpjit::v1::NVRTC, Allowed() + "/b/deeper", src),
                        config_, toolchain_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)[0]->key, (*b)[0]->key);
}

TEST_F(GenericCompileTest, NvrtcRefusesHeaderSymlinkedOutOfTheAllowlist) {
  Write(root_ + "/outside/secret.h", "int secret;\n");
  fs::create_symlink(root_ + "/outside/secret.h", Allowed() + "/inc/s.h");
  auto t = BuildGenericTasks(
      Request(tpjit::v1::NVRTC, Allowed() + "/inc", "#include <s.h>\n"),
      config_, toolchain_);
  ASSERT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("outside the include allowlist"));
  t = BuildGenericTasks(Request(tpjit::v1::NVRTC, Allowed() + "/inc",
                                "#include \"../../outside/secret.h\"\n"),
                        config_, toolchain_);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GenericCompileTest, RequestValidation) {
  CopyMinitl(Allowed() + "/a");
  auto r = Request(tpjit::v1::NVCC, Allowed() + "/a", "int x;\n");
  r.add_options("--output-file=/etc/passwd");
  auto t = BuildGenericTasks(r, config_, toolchain_);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("--output-file"));
  r = Request(tpjit::v1::NVCC, Allowed() + "/a", "int x;\n");
  r.mutable_sources(0)->add_name_expressions("k<1>");
  EXPECT_EQ(BuildGenericTasks(r, config_, toolchain_).status().code(),
            absl::StatusCode::kInvalidArgument);
  r = Request(tpjit::v1::NVCC, Allowed() + "/a", "int x;\n");
  r.set_arch("sm_90a; rm -rf /");
  EXPECT_EQ(BuildGenericTasks(r, config_, toolchain_).status().code(),
            absl::StatusCode::kInvalidArgument);
  r = Request(tpjit::v1::NVCC, root_ + "/outside", "int x;\n");
  EXPECT_EQ(BuildGenericTasks(r, config_, toolchain_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Runs nvcc -E (about a second).
TEST_F(GenericCompileTest, NvccKeysThePreprocessedUnitNotThePath) {
  CopyMinitl(Allowed() + "/a");
  CopyMinitl(Allowed() + "/b/c");
  const std::string src =
      "#include \"minitl/minitl.cuh\"\n"
      "extern \"C\" __global__ void k(float* y, const float* x, int n) {\n"
      "  minitl::Accumulate<float, 2, 64>(y, x, n);\n}\n";
  auto request = [&](const std::string& dir) {
    auto r = Request(tpjit::v1::NVCC, dir, src);
    r.add_options("--expt-relaxed-constexpr");
    *r.add_sources() = r.sources(0);  // a batch of two: preprocessed in
    r.mutable_sources(1)->set_source(src + "// another\n");  // parallel
    return r;
  };
  auto a = BuildGenericTasks(request(Allowed() + "/a"), config_, toolchain_);
  auto b = BuildGenericTasks(request(Allowed() + "/b/c"), config_, toolchain_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0]->key, (*b)[0]->key);
  EXPECT_EQ((*a)[1]->key, (*b)[1]->key);  // a comment is not in the TU
  EXPECT_EQ((*a)[0]->key, (*a)[1]->key);
  const auto& req = (*a)[0]->request;
  EXPECT_EQ(req.kind(), tpjit::v1::WorkerRequest::NVCC);
  EXPECT_EQ(req.options(0), config_.nvcc);
  EXPECT_EQ(req.include_dirs(0), Allowed() + "/a");
  EXPECT_GT((*a)[0]->cost, 2.0);
  // A header change that reaches the TU changes the key.
  Write(Allowed() + "/b/c/minitl/detail/math.h",
        "namespace minitl::detail {\n"
        "constexpr int CeilDiv(int a, int b) { return (a + b - 1) / b; }\n"
        "constexpr float Scale(int s) { return 2.0f + s; }\n}\n");
  b = BuildGenericTasks(request(Allowed() + "/b/c"), config_, toolchain_);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE((*a)[0]->key, (*b)[0]->key);
  // So do options and the salt.
  auto r = request(Allowed() + "/a");
  r.add_options("-O2");
  auto c = BuildGenericTasks(r, config_, toolchain_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE((*a)[0]->key, (*c)[0]->key);
}

// Alive and not a zombie (a killed orphan may wait a while for its reaper).
bool Running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() &&
         line[paren + 2] != 'Z';
}

TEST(RunCommandTest, KillsTheWholeGroupAtTheLimit) {
  auto dir = ScopedTempDir::Create("tpjit-run-test-");
  ASSERT_TRUE(dir.ok());
  auto r = RunCommand({"/bin/sh", "-c", "sleep 30 & echo $!; wait"},
                      dir->path(), 0.5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->timed_out);
  EXPECT_LT(r->wall_seconds, 5);
  const pid_t grandchild = std::atoi(r->output.c_str());
  ASSERT_GT(grandchild, 0) << r->output;
  for (int i = 0; i < 100 && Running(grandchild); ++i) usleep(10000);
  EXPECT_FALSE(Running(grandchild)) << "the shell's child outlived the limit";
  r = RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"},
                 dir->path(), 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->timed_out);
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_THAT(r->output, HasSubstr("err"));
  EXPECT_FALSE(RunCommand({"sh"}, dir->path(), 1).ok());  // not absolute
  std::string path = dir->path();
  { ScopedTempDir moved = std::move(*dir); }
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace tpjit
