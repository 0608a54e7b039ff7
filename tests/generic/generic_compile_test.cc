// Generic compiles without the daemon: include-dir resolution against the
// allowlist, the option allow-list, include scanning, content keys (NVRTC: by
// header content; NVCC: by source and options, headers through the recorded
// dependencies), the dependency labels and log filter, and the time-limited
// child process runner.
#include "daemon/generic_compile.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/scoped_temp_dir.h"
#include "src/compile/compile_options.h"
#include "src/compile/nvcc.h"
#include "src/compile/nvcc_deps.h"
#include "tests/testlib/subprocess.h"
#include "tests/testlib/wait.h"

namespace tpjit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using ::tpjit::testing::ReadWholeFile;
using ::tpjit::testing::Running;
using ::tpjit::testing::WaitUntil;
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
  const std::vector<std::string> refused = {
      "-o", "-o=/tmp/x", "--output-file=/tmp/x", "-odir", "--output-directory",
      "--run", "-run", "-E", "--preprocess", "-ccbin=/bin",
      "--compiler-bindir=/bin", "-Xcompiler=-fplugin=x.so", "-Xlinker",
      "-Xptxas", "-Xptxas=--output-file=x", "-I/etc", "-Irel",
      "--include-path=/etc", "-isystem=/usr/include",
      "--pre-include=/etc/passwd", "-MD", "-MF=deps", "--options-file=f",
      "-optf", "--keep", "-save-temps", "--time=t.csv", "-arch=sm_80",
      "-gencode=arch=compute_80", "-lcuda", "-L/usr/lib", "/etc/passwd",
      "c++17", "-", "--dryrun",
      // issue 12's inputs
      "-DX=$(id>/tmp/f;echo${IFS}1)", "-DX=`id`", "-DX=1;id", "-D$(id)",
      "-forward-unknown-to-host-compiler", "-B/dir/",
      "-Xptxas=--maxrregcount=32 "
      "--options-file /etc/passwd",
      "--ptxas-options=-v,--options-file", "--compiler-options=-B/dir/",
      "--compiler-options=-Wno-x,-fplugin", "-std=c++17 -run", "-O3x",
      "-lineinfox", "-Wno-deprecated-gpu-targets=1"};
  for (const std::string& o : refused) {
    absl::Status s = ValidateCompileOptions({"-O3", o}, /*nvcc=*/true);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << o;
    EXPECT_THAT(s.message(), HasSubstr("\"" + o.substr(0, 20))) << o;
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

// DeepGEMM's exact flags (docs/design.md, field notes), debug variants
// included, pass and come out canonical.
TEST_F(GenericCompileTest, DeepGemmFlagsPassTheAllowList) {
  const std::vector<std::string> flags = {
      "-std=c++20",
      "--diag-suppress=39,161,174,177,186,940",
      "--ptxas-options=--register-usage-level=10",
      "--compiler-options=-fPIC,-O3,-fconcepts,-Wno-deprecated-declarations,"
      "-Wno-abi",
      "-O3",
      "--expt-relaxed-constexpr",
      "--expt-extended-lambda",
      "--ptxas-options=--verbose,--warn-on-spills",
      "-Xcompiler",
      "-rdynamic",
      "-lineinfo"};
  auto parsed = ParseCompileOptions(flags, CompilerKind::kNvcc);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->size(), flags.size() - 1);
  EXPECT_EQ((*parsed)[8], "--compiler-options=-rdynamic");
  EXPECT_EQ((*parsed)[2], "--ptxas-options=--register-usage-level=10");
  EXPECT_FALSE(ParseCompileOptions({"-Xcompiler"}, CompilerKind::kNvcc).ok());
  EXPECT_FALSE(
      ParseCompileOptions({"-Xcompiler", "-B/x"}, CompilerKind::kNvcc).ok());
  EXPECT_FALSE(
      ParseCompileOptions({"--ptxas-options=--register-usage-level=11"},
                          CompilerKind::kNvcc)
          .ok());
  // Host compiler options are NVCC only.
  EXPECT_FALSE(
      ParseCompileOptions({"--compiler-options=-fPIC"}, CompilerKind::kNvrtc)
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

// Reads files only: no nvcc runs for a key.
TEST_F(GenericCompileTest, NvccKeyLeavesPathsOutAndNeverRunsNvcc) {
  CopyMinitl(Allowed() + "/a");
  CopyMinitl(Allowed() + "/b/c");
  const std::string src =
      "#include \"minitl/minitl.cuh\"\n"
      "extern \"C\" __global__ void k(float* y, const float* x, int n) {\n"
      "  minitl::Accumulate<float, 2, 64>(y, x, n);\n}\n";
  auto request = [&](const std::string& dir) {
    auto r = Request(tpjit::v1::NVCC, dir, src);
    r.add_options("--expt-relaxed-constexpr");
    return r;
  };
  // A missing nvcc is only noticed by the worker: the key reads files.
  config_.nvcc = root_ + "/no-such-nvcc";
  EXPECT_EQ(BuildGenericTasks(request(Allowed() + "/a"), config_, toolchain_)
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
  config_.nvcc = "/usr/local/cuda/bin/nvcc";
  auto a = BuildGenericTasks(request(Allowed() + "/a"), config_, toolchain_);
  auto b = BuildGenericTasks(request(Allowed() + "/b/c"), config_, toolchain_);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)[0]->key, (*b)[0]->key);
  const auto& req = (*a)[0]->request;
  EXPECT_EQ(req.kind(), tpjit::v1::WorkerRequest::NVCC);
  EXPECT_EQ(req.options(0), config_.nvcc);
  EXPECT_EQ(req.include_dirs(0), Allowed() + "/a");
  EXPECT_TRUE(req.sandbox().new_network());
  EXPECT_EQ(req.sandbox().file_bytes(), int64_t{256} << 20);
  EXPECT_EQ(req.sandbox().address_space_bytes(), config_.compile_memory_bytes);
  ASSERT_TRUE((*a)[0]->accept_dependencies);
  // Options, the output kind and the salt change the key.
  auto r = request(Allowed() + "/a");
  r.add_options("-O2");
  auto c = BuildGenericTasks(r, config_, toolchain_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE((*a)[0]->key, (*c)[0]->key);
  r = request(Allowed() + "/a");
  r.set_output(tpjit::v1::PTX);
  c = BuildGenericTasks(r, config_, toolchain_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE((*a)[0]->key, (*c)[0]->key);
  EXPECT_TRUE((*c)[0]->request.ptx());
}

// Issue 12: a client asking for 1e9 s holds a compile slot at most the
// server's maxima (--max-compile-timeout, --max-client-timeout).
TEST_F(GenericCompileTest, ClientTimeoutsAreClampedToTheServerMaxima) {
  CompileRequest r;
  r.set_backend(tpjit::v1::NVRTC);
  r.set_arch("sm_90a");
  r.add_sources()->set_source("extern \"C\" __global__ void k() {}\n");
  r.set_timeout_seconds(1e9);
  auto tasks = BuildGenericTasks(r, config_, toolchain_);
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_EQ((*tasks)[0]->timeout_seconds, config_.max_compile_timeout_seconds);
  config_.max_client_timeout_seconds = 5;
  tasks = BuildGenericTasks(r, config_, toolchain_);
  ASSERT_TRUE(tasks.ok()) << tasks.status();
  EXPECT_EQ((*tasks)[0]->timeout_seconds, 5);
  r.set_timeout_seconds(-1);
  EXPECT_EQ(BuildGenericTasks(r, config_, toolchain_).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The dependency check that stands in for the headers in the key: a hit needs
// every recorded header, found through the request's own include dirs, to
// hold the recorded content.
TEST_F(GenericCompileTest, DependenciesAcceptMovedTreesAndRefuseEdits) {
  CopyMinitl(Allowed() + "/a");
  CopyMinitl(Allowed() + "/b");
  const std::string header = "minitl/detail/math.h";
  auto sha = FileHasher::Global().Hash(Allowed() + "/a/" + header);
  ASSERT_TRUE(sha.ok()) << sha.status();
  const std::vector<std::string> deps = {"I0/" + header + "\t" + *sha};
  DependencyRoots a, b;
  a.include_dirs = {Allowed() + "/a"};
  b.include_dirs = {Allowed() + "/b"};
  EXPECT_TRUE(FileHasher::Global().Matches(deps, a));
  EXPECT_TRUE(FileHasher::Global().Matches(deps, b));
  Write(Allowed() + "/b/" + header, "// edited\n");
  EXPECT_FALSE(FileHasher::Global().Matches(deps, b));
  EXPECT_TRUE(FileHasher::Global().Matches(deps, a));
  // Labels never resolve outside their root.
  EXPECT_EQ(ResolveLabel("I0/../../../etc/passwd", a), "");
  EXPECT_EQ(ResolveLabel("I1/x.h", a), "");
  EXPECT_EQ(ResolveLabel("S/etc/passwd", a), "");
  EXPECT_FALSE(FileHasher::Global().Matches({"I0/nothing.h\tabc"}, a));
}

// nvcc names toolkit headers by the toolkit's real path when the configured
// one is a symlink (/usr/local/cuda -> /usr/local/cuda-13.0).
TEST(NvccDepsTest, ToolkitThroughASymlinkKeepsItsLabel) {
  auto dir = ScopedTempDir::Create("tpjit-deps-test-");
  ASSERT_TRUE(dir.ok());
  const std::string real = dir->path() + "/cuda-13.0";
  fs::create_directories(real + "/targets/inc");
  std::ofstream(real + "/targets/inc/a.h") << "\n";
  fs::create_directory_symlink(real, dir->path() + "/cuda");
  DependencyRoots roots;
  roots.toolkit = dir->path() + "/cuda";
  auto label = LabelDependency(real + "/targets/inc/a.h", "/t", roots);
  ASSERT_TRUE(label.ok()) << label.status();
  EXPECT_EQ(*label, "T/targets/inc/a.h");
  EXPECT_EQ(ResolveLabel(*label, roots), roots.toolkit + "/targets/inc/a.h");
}

TEST(NvccDepsTest, LabelsAndLogFilter) {
  DependencyRoots roots;
  roots.include_dirs = {"/opt/dg/include"};
  roots.toolkit = ToolkitRoot("/usr/local/cuda/bin/nvcc");
  EXPECT_EQ(roots.toolkit, "/usr/local/cuda");
  EXPECT_EQ(*LabelDependency("/opt/dg/include/cute/tensor.hpp", "/t", roots),
            "I0/cute/tensor.hpp");
  EXPECT_EQ(*LabelDependency(
                "/usr/local/cuda/bin/../targets/x86_64-linux/include/a.h", "/t",
                roots),
            "T/targets/x86_64-linux/include/a.h");
  EXPECT_EQ(*LabelDependency("/usr/include/stdio.h", "/t", roots),
            "S/usr/include/stdio.h");
  auto bad = LabelDependency("/etc/passwd", "/t", roots);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("/etc/passwd"));
  EXPECT_FALSE(
      LabelDependency("/opt/dg/include/../../../etc/shadow", "/t", roots).ok());
  EXPECT_THAT(ParseDependencyFile("out.cubin : k.cu \\\n    /a/b.h \\\n"
                                  "    /c/with\\ space.h\n"),
              ::testing::ElementsAre("k.cu", "/a/b.h", "/c/with space.h"));
  const std::string log =
      "/etc/passwd(1): error: this declaration has no storage class\n"
      "  root:x:0:0:root:/root:/bin/bash\n"
      "  ^\n"
      "\n"
      "k.cu(3): error: identifier \"x\" is undefined\n"
      "    p[0] = x;\n"
      "/opt/dg/include/a.cuh(2): warning: something\n"
      "2 errors detected in the compilation of \"k.cu\".\n";
  std::string filtered = FilterCompilerLog(log, "k.cu", "/t", roots);
  EXPECT_THAT(filtered, Not(HasSubstr("root:x")));
  EXPECT_THAT(filtered, Not(HasSubstr("/etc/passwd")));
  EXPECT_THAT(filtered, HasSubstr("k.cu(3): error"));
  EXPECT_THAT(filtered, HasSubstr("p[0] = x;"));
  EXPECT_THAT(filtered, HasSubstr("a.cuh(2): warning"));
  EXPECT_THAT(filtered, HasSubstr("2 errors detected"));
  EXPECT_EQ(FilterCompilerLog("", "k.cu", "/t", roots), "");
  EXPECT_EQ(FilterCompilerLog("k.cu(1): warning: w\n", "k.cu", "/t", roots),
            "k.cu(1): warning: w\n");
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
  EXPECT_TRUE(WaitUntil([&] { return !Running(grandchild); }, absl::Seconds(1)))
      << "the shell's child outlived the limit";
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

// The sandbox a compiler process runs in: clean environment, limits, an
// empty network namespace and, when we are root, an unprivileged user.
TEST(RunCommandTest, SandboxedChildHasACleanEnvLimitsAndNoNetwork) {
  auto dir = ScopedTempDir::Create("tpjit-sandbox-test-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  setenv("TPJIT_SECRET_TOKEN", "hunter2", 1);
  SandboxSpec sandbox;
  sandbox.address_space_bytes = int64_t{1} << 30;
  sandbox.new_network = true;
  const bool root = geteuid() == 0;
  if (root) {
    sandbox.uid = sandbox.gid = 65534;
    ASSERT_EQ(chown(dir->path().c_str(), 65534, 65534), 0);
  }
  auto r = RunCommand({"/bin/sh", "-c",
                       "env; echo limit=$(ulimit -v); id -u; "
                       "cat /proc/net/dev; touch ok"},
                      dir->path(), 20, sandbox);
  unsetenv("TPJIT_SECRET_TOKEN");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->output;
  EXPECT_THAT(r->output, Not(HasSubstr("hunter2")));
  EXPECT_THAT(r->output, HasSubstr("limit=1048576"));
  EXPECT_THAT(r->output, HasSubstr("HOME=" + dir->path()));
  if (root) {
    EXPECT_THAT(r->output, HasSubstr("\n65534\n"));
    EXPECT_THAT(r->output, Not(HasSubstr("eth0")));
  }
  EXPECT_TRUE(fs::exists(dir->path() + "/ok"));
}

// The command holds only 0-2: none of the caller's other descriptors, not
// even those without close-on-exec (a worker's pipe to the daemon: a
// compromised compiler could write answers into it).
TEST(RunCommandTest, TheCommandInheritsNoOtherDescriptor) {
  auto dir = ScopedTempDir::Create("tpjit-fd-test-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  int leaky[2];
  ASSERT_EQ(pipe(leaky), 0);  // no O_CLOEXEC
  auto r = RunCommand({"/bin/sh", "-c", "cd /proc/self/fd && echo fds: *"},
                      dir->path(), 20);
  close(leaky[0]);
  close(leaky[1]);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0) << r->output;
  // The shell's own 0, 1, 2 and the directory the glob reads (3 or 10+).
  EXPECT_THAT(r->output, HasSubstr("fds: 0 1 2")) << r->output;
  EXPECT_THAT(r->output, Not(HasSubstr(" " + std::to_string(leaky[0]) + " ")))
      << "fd " << leaky[0] << " leaked: " << r->output;
  EXPECT_THAT(r->output, Not(HasSubstr(" " + std::to_string(leaky[1]))))
      << "fd " << leaky[1] << " leaked: " << r->output;
}

// A sandboxed compiler dies with the process that started it (a worker
// killed at its time limit or by a crash): as root the sandbox changes user,
// which clears the parent-death signal unless it is set again after.
TEST(RunCommandTest, SandboxedChildDiesWithItsParent) {
  auto dir = ScopedTempDir::Create("tpjit-pdeath-test-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  SandboxSpec sandbox;
  if (geteuid() == 0) {
    sandbox.uid = sandbox.gid = 65534;
    ASSERT_EQ(chown(dir->path().c_str(), 65534, 65534), 0);
  }
  const std::string pid_file = dir->path() + "/pid";
  const pid_t worker = fork();
  ASSERT_GE(worker, 0);
  if (worker == 0) {  // stands for tpjit-worker: runs a compile, is killed
    RunCommand({"/bin/sh", "-c",
                "echo $$ > pid.tmp && mv pid.tmp pid && "
                "exec sleep 60"},
               dir->path(), 120, sandbox)
        .IgnoreError();
    _exit(0);
  }
  pid_t compiler = 0;
  WaitUntil(
      [&] {
        compiler = std::atoi(ReadWholeFile(pid_file).c_str());
        return compiler > 0;
      },
      absl::Seconds(10));
  kill(worker, SIGKILL);
  waitpid(worker, nullptr, 0);
  ASSERT_GT(compiler, 0) << "the command never started";
  EXPECT_TRUE(WaitUntil([&] { return !Running(compiler); }, absl::Seconds(10)))
      << "the sandboxed command outlived its parent";
  if (Running(compiler)) kill(compiler, SIGKILL);
}

}  // namespace
}  // namespace tpjit
