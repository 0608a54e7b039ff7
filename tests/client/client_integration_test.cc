// The client library, the C ABI and the `tpjit` CLI against the real tpjitd
// (TPJITD_BINARY) on a temp Unix socket and cache directory, without a GPU.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/include/tpjit/client.h"
#include "client/include/tpjit/tpjit_c.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "src/plan/spec.h"
#include "tests/testlib/subprocess.h"
#include "tests/testlib/temp_dir.h"

namespace tpjit {
namespace {

constexpr char kSpec[] = R"({
  "name": "client-it", "target": {"arch": "sm_90a", "numSms": 132},
  "mPolicy": {"kind": "EXPLICIT", "mValues": [1, 64, 512, 4096]},
  "shapes": [{"family": "bf16_gemm_nt", "n": 256, "k": 256}]})";

std::string Slurp(const std::string& path) {
  return ::tpjit::testing::ReadWholeFile(path);
}

// Runs argv to completion with stdout to `out_path`, stderr to
// `out_path`.err: the exit code.
int RunProcess(const std::vector<std::string>& argv,
               const std::string& out_path) {
  return ::tpjit::testing::RunToCompletion(argv, out_path, out_path + ".err");
}

class RealDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new ::tpjit::testing::TempDir("tpjit-cit-");
    dir_ = new std::string(tmp_->path());
    socket_ = new std::string(*dir_ + "/tpjitd.sock");
    auto daemon = ::tpjit::testing::Subprocess::Spawn(
        {TPJITD_BINARY, "--socket", *socket_, "--cache-dir", *dir_ + "/cache",
         "--gpus", "0", "--slots", "1", "--procs", "2"},
        *dir_ + "/tpjitd.log", *dir_ + "/tpjitd.log.err");
    if (daemon.ok()) {
      daemon_ = new ::tpjit::testing::Subprocess(std::move(*daemon));
    }
  }
  static void TearDownTestSuite() {
    if (daemon_ != nullptr) {
      daemon_->Signal(SIGTERM);
      daemon_->WaitForever();
      delete daemon_;
      daemon_ = nullptr;
    }
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    auto client =
        Client::Connect(*socket_, {.connect_timeout = absl::Seconds(30)});
    ASSERT_TRUE(client.ok()) << client.status() << "\n"
                             << Slurp(*dir_ + "/tpjitd.log");
    client_ = *std::move(client);
    for (int i = 0; i < 600; ++i) {  // NOT_SERVING until the self-test passed
      auto health = client_->Health();
      if (health.ok() && health->serving()) return;
      absl::SleepFor(absl::Milliseconds(100));
    }
    FAIL() << "tpjitd never became SERVING:\n" << Slurp(*dir_ + "/tpjitd.log");
  }

  static std::string* dir_;
  static std::string* socket_;
  static ::tpjit::testing::TempDir* tmp_;
  static ::tpjit::testing::Subprocess* daemon_;
  std::unique_ptr<Client> client_;
};

std::string* RealDaemonTest::dir_ = nullptr;
std::string* RealDaemonTest::socket_ = nullptr;
::tpjit::testing::TempDir* RealDaemonTest::tmp_ = nullptr;
::tpjit::testing::Subprocess* RealDaemonTest::daemon_ = nullptr;

TEST_F(RealDaemonTest, WarmupLookupFetchAndWarmAgain) {
  auto spec = ParseSpecJson(kSpec);
  ASSERT_TRUE(spec.ok()) << spec.status();
  int events = 0;
  auto cold = client_->Warmup(
      *spec, 0, 1, "", [&](auto&) { ++events; }, absl::Minutes(5));
  ASSERT_TRUE(cold.ok()) << cold.status();
  const auto& m = cold->manifest;
  EXPECT_GT(events, 0);
  EXPECT_EQ(cold->summary.distinct_kernels(), m.kernels_size());
  ASSERT_TRUE(ValidateManifest(m).ok());
  for (int64_t value : {1, 64, 512, 4096}) {
    auto k = LookupKernel(m, 0, value);
    ASSERT_TRUE(k.ok()) << value << ": " << k.status();
    auto bytes = client_->Fetch(m.kernels(*k));
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(static_cast<int64_t>(bytes->size()), m.kernels(*k).cubin_bytes());
  }
  auto warm = client_->Warmup(*spec, 0, 1, "", nullptr, absl::Minutes(5));
  ASSERT_TRUE(warm.ok()) << warm.status();
  EXPECT_EQ(warm->manifest.digest(), m.digest());
  // The daemon keeps the finished job: the second call attaches to it and
  // nothing is compiled again.
  EXPECT_TRUE(warm->summary.attached());
  auto stats = client_->Stats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->compiles(), m.kernels_size());
}

TEST_F(RealDaemonTest, CApi) {
  tpjit_client* c = nullptr;
  ASSERT_EQ(tpjit_connect(socket_->c_str(), 10, &c), TPJIT_OK)
      << tpjit_last_error();
  tpjit_manifest* m = nullptr;
  ASSERT_EQ(tpjit_warmup(c, kSpec, 0, 1, "capi", 300, nullptr, nullptr, &m),
            TPJIT_OK)
      << tpjit_last_error();
  int32_t kernel = -1;
  ASSERT_EQ(tpjit_lookup(m, 0, 64, &kernel), TPJIT_OK) << tpjit_last_error();
  size_t size = 0;
  ASSERT_EQ(tpjit_fetch(c, m, kernel, nullptr, 0, &size), TPJIT_OK)
      << tpjit_last_error();
  std::string cubin(size, '\0');
  ASSERT_EQ(tpjit_fetch(c, m, kernel, cubin.data(), size, &size), TPJIT_OK);
  EXPECT_EQ(cubin.substr(0, 4),
            "\x7f"
            "ELF");
  EXPECT_NE(std::string(tpjit_kernel_lowered_name(m, kernel)), "");
  tpjit_manifest_free(m);
  tpjit_client_free(c);
}

TEST_F(RealDaemonTest, Cli) {
  const std::string spec = *dir_ + "/spec.json", out = *dir_ + "/cli.out";
  std::ofstream(spec) << kSpec;
  EXPECT_EQ(RunProcess({TPJIT_CLI, "health", "--socket", *socket_}, out), 0)
      << Slurp(out) << Slurp(out + ".err");
  ASSERT_EQ(RunProcess({TPJIT_CLI, "warmup", "--spec", spec, "--rank", "0",
                        "--world", "1", "--json", "--socket", *socket_},
                       out),
            0)
      << Slurp(out + ".err");
  const auto j = nlohmann::json::parse(Slurp(out));
  for (const char* key : {"manifest_digest", "distinct_kernels", "compiled",
                          "cache_hits", "wall_seconds"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  ASSERT_EQ(
      RunProcess({TPJIT_CLI, "stats", "--json", "--socket", *socket_}, out), 0);
  const auto stats = nlohmann::json::parse(Slurp(out));
  EXPECT_TRUE(stats["compiles"].is_number());
  EXPECT_TRUE(stats["cache_hits"].is_number());
  EXPECT_EQ(RunProcess({TPJIT_CLI, "status", "--socket", *socket_}, out), 0);
  EXPECT_EQ(RunProcess({TPJIT_CLI, "health", "--socket", *dir_ + "/nobody",
                        "--timeout", "0.5"},
                       out),
            1);
}

}  // namespace
}  // namespace tpjit
