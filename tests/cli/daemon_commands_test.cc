// The tpjit daemon commands: exit codes for bad flags (2, naming the flag)
// and an absent daemon (1), and their output against a fake daemon.
#include "cli/daemon_commands.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/client/fake_daemon.h"

namespace tpjit::cli {
namespace {

using ::testing::HasSubstr;
using tpjit::testing::CubinFor;
using tpjit::testing::FakeDaemon;

using RunFn = int (*)(const std::vector<std::string>&, std::ostream&,
                      std::ostream&);

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome RunCli(RunFn fn, std::vector<std::string> args) {
  std::ostringstream out, err;
  const int code = fn(args, out, err);
  return {code, out.str(), err.str()};
}

constexpr char kSpec[] = R"({
  "name": "tiny", "target": {"arch": "sm_90a", "numSms": 132},
  "mPolicy": {"kind": "FULL"},
  "shapes": [{"family": "fp8_gemm_nt", "n": 4096, "k": 7168}]})";

class DaemonCommandsTest : public ::testing::Test {
 protected:
  DaemonCommandsTest() {
    spec_ = daemon_.dir() + "/spec.json";
    std::ofstream(spec_) << kSpec;
    nobody_ = daemon_.dir() + "/nobody.sock";
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = daemon_.dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  FakeDaemon daemon_;
  std::string spec_;
  std::string nobody_;  // a socket path nobody listens on
};

TEST_F(DaemonCommandsTest, BadFlagsExit2NamingTheFlag) {
  struct Case {
    RunFn fn;
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {RunWarmupCommand, {"--bogus"}, "--bogus"},
      {RunWarmupCommand, {"--rank", "0", "--world", "1"}, "--spec"},
      {RunWarmupCommand, {"--spec", spec_, "--world", "1"}, "--rank"},
      {RunWarmupCommand,
       {"--spec", spec_, "--rank", "8", "--world", "8"},
       "--rank"},
      {RunWarmupCommand,
       {"--spec", spec_, "--rank", "0", "--world", "0"},
       "--world"},
      {RunWarmupCommand,
       {"--spec", "/nonexistent.json", "--rank", "0", "--world", "1"},
       "/nonexistent.json"},
      {RunWarmupCommand,
       {"--spec", spec_, "--rank", "0", "--world", "1", "--timeout", "soon"},
       "--timeout"},
      {RunWarmupCommand, {"--spec"}, "--spec"},
      {RunWarmupCommand, {"extra"}, "extra"},
      {RunStatusCommand, {"--json=yes"}, "--json"},
      {RunStatsCommand, {"--verbose"}, "--verbose"},
      {RunHealthCommand, {"--json"}, "--json"},
      {RunCompileCommand, {"--arch", "sm_90a"}, "--source"},
      {RunCompileCommand,
       {"--source", spec_, "--backend", "clang"},
       "--backend"},
      {RunCompileCommand, {"--source", "/nonexistent.cu"}, "--source"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.insert(args.end(), {"--socket", nobody_});
    const Outcome o = RunCli(c.fn, args);
    EXPECT_EQ(o.code, 2) << ::testing::PrintToString(c.args) << ": " << o.err;
    EXPECT_THAT(o.err, HasSubstr(c.names)) << ::testing::PrintToString(c.args);
  }
}

TEST_F(DaemonCommandsTest, HelpExits0) {
  const Outcome o = RunCli(RunWarmupCommand, {"--help"});
  EXPECT_EQ(o.code, 0);
  EXPECT_THAT(o.out, HasSubstr("--spec"));
  EXPECT_THAT(o.out, HasSubstr("TPJIT_SOCKET"));
}

TEST_F(DaemonCommandsTest, NoDaemonExits1NamingTheSocket) {
  for (RunFn fn : {RunStatusCommand, RunStatsCommand, RunHealthCommand}) {
    const Outcome o = RunCli(fn, {"--socket", nobody_, "--timeout", "0.5"});
    EXPECT_EQ(o.code, 1) << o.err;
    EXPECT_THAT(o.err, HasSubstr(nobody_));
  }
  const Outcome o =
      RunCli(RunWarmupCommand, {"--spec", spec_, "--rank", "0", "--world", "1",
                                "--socket", nobody_, "--timeout", "0.5"});
  EXPECT_EQ(o.code, 1) << o.err;
  EXPECT_THAT(o.err, HasSubstr(nobody_));
}

TEST_F(DaemonCommandsTest, SocketFromEnvironment) {
  setenv("TPJIT_SOCKET", daemon_.socket().c_str(), 1);
  const Outcome o = RunCli(RunHealthCommand, {});
  unsetenv("TPJIT_SOCKET");
  EXPECT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("SERVING"));
}

TEST_F(DaemonCommandsTest, WarmupJson) {
  const std::string manifest = daemon_.dir() + "/manifest.json";
  const Outcome o =
      RunCli(RunWarmupCommand,
             {"--spec", spec_, "--rank", "1", "--world", "2", "--group", "tp",
              "--json", "--manifest", manifest, "--socket", daemon_.socket()});
  ASSERT_EQ(o.code, 0) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["manifest_digest"], "manifest-digest-0123");
  EXPECT_EQ(j["distinct_kernels"], 3);
  EXPECT_EQ(j["compiled"], 2);
  EXPECT_EQ(j["cache_hits"], 1);
  EXPECT_EQ(j["wall_seconds"], 1.5);
  EXPECT_EQ(daemon_.service().last_request.rank(), 1);
  EXPECT_EQ(daemon_.service().last_request.group(), "tp");
  EXPECT_EQ(daemon_.service().last_request.spec().name(), "tiny");
  // Not a terminal: plain progress lines.
  EXPECT_THAT(o.err, HasSubstr("3/3 kernels"));
  EXPECT_TRUE(std::filesystem::exists(manifest));
}

TEST_F(DaemonCommandsTest, WarmupText) {
  const Outcome o =
      RunCli(RunWarmupCommand, {"--spec", spec_, "--rank", "0", "--world", "1",
                                "--socket", daemon_.socket()});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("manifest manifest-digest-0123"));
  EXPECT_THAT(o.out, HasSubstr("distinct kernels 3, compiled 2, cache hits 1"));
}

TEST_F(DaemonCommandsTest, WarmupDaemonErrorIsReported) {
  daemon_.service().warmup_status =
      grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "no slots");
  const Outcome o =
      RunCli(RunWarmupCommand, {"--spec", spec_, "--rank", "0", "--world", "1",
                                "--socket", daemon_.socket()});
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.err, HasSubstr("no slots"));
}

TEST_F(DaemonCommandsTest, StatsAndStatus) {
  Outcome o = RunCli(RunStatsCommand, {"--json", "--socket", daemon_.socket()});
  ASSERT_EQ(o.code, 0) << o.err;
  auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["compiles"], 7);
  EXPECT_EQ(j["cache_hits"], 11);
  EXPECT_EQ(j["nvrtc_version"], "13.0");
  o = RunCli(RunStatsCommand, {"--socket", daemon_.socket()});
  EXPECT_THAT(o.out, HasSubstr("compiles: 7"));
  o = RunCli(RunStatusCommand, {"--socket", daemon_.socket()});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("job-1 tiny: compiling 1/3"));
  o = RunCli(RunStatusCommand, {"--json", "--socket", daemon_.socket()});
  j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["jobs"][0]["attached_ranks"], 2);
  EXPECT_EQ(j["slots"][0]["gpu"], -1);
}

TEST(HealthCommandTest, NotServingExits1) {
  FakeDaemon daemon(/*serving=*/false);
  const Outcome o = RunCli(RunHealthCommand, {"--socket", daemon.socket()});
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.out, HasSubstr("NOT_SERVING"));
}

TEST_F(DaemonCommandsTest, CompileWritesCubins) {
  const std::string src = Write("a.cu", "__global__ void k() {}\n");
  const std::string out_dir = daemon_.dir() + "/out";
  Outcome o = RunCli(RunCompileCommand,
                     {"--source", src, "--backend", "nvrtc", "--arch", "sm_90a",
                      "--name-expression", "k", "--option", "-O3", "--out",
                      out_dir, "--socket", daemon_.socket()});
  ASSERT_EQ(o.code, 0) << o.err;
  EXPECT_THAT(o.out, HasSubstr("key0 miss 0.25 s"));
  std::ifstream in(out_dir + "/key0.cubin", std::ios::binary);
  std::stringstream got;
  got << in.rdbuf();
  EXPECT_EQ(got.str(), CubinFor(0));
  o = RunCli(RunCompileCommand, {"--source", src, "--backend", "nvcc", "--json",
                                 "--socket", daemon_.socket()});
  ASSERT_EQ(o.code, 0) << o.err;
  const auto j = nlohmann::json::parse(o.out);
  EXPECT_EQ(j["ok"], true);
  EXPECT_EQ(j["results"][0]["cache_hit"], true);
}

TEST_F(DaemonCommandsTest, CompileErrorExits1WithTheLog) {
  const std::string good = Write("good.cu", "__global__ void k() {}\n");
  const std::string bad = Write("bad.cu", "#error nope\n");
  const Outcome o =
      RunCli(RunCompileCommand,
             {"--source", good, "--source", bad, "--socket", daemon_.socket()});
  EXPECT_EQ(o.code, 1);
  EXPECT_THAT(o.err, HasSubstr("error: boom"));
  EXPECT_THAT(o.out, HasSubstr("bad.cu FAILED"));
  EXPECT_THAT(o.out, HasSubstr("key0"));
}

}  // namespace
}  // namespace tpjit::cli
