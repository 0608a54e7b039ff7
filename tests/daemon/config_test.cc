#include "daemon/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"

namespace tpjit {
namespace {

std::string WriteConfig(const std::string& text) {
  std::string path = std::filesystem::temp_directory_path() /
                     ("tpjitd-config-" + std::to_string(getpid()) + ".conf");
  std::ofstream(path) << text;
  return path;
}

TEST(DaemonConfigTest, DefaultsFileEnvironmentAndFlagsInThatOrder) {
  unsetenv("TPJIT_SLOTS");
  auto d = ParseDaemonConfig({}, "/opt/tpjit/bin");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->worker_binary, "/opt/tpjit/bin/tpjit-worker");
  EXPECT_EQ(d->slots, 0);
  EXPECT_EQ(d->compile_timeout_seconds, 120);
  const std::string file = WriteConfig(
      "# tpjitd\nslots = 3\nprocs=5\ncache-dir = /var/cache/x\n"
      "include-allowlist = /opt/a:/opt/b\n");
  setenv("TPJIT_PROCS", "7", 1);
  auto c = ParseDaemonConfig({"--config", file, "--slots", "4"}, "/bin");
  unsetenv("TPJIT_PROCS");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->slots, 4);  // the command line beats the file
  EXPECT_EQ(c->procs, 5);  // the file beats the environment
  EXPECT_EQ(c->cache_dir, "/var/cache/x");
  EXPECT_EQ(c->include_allowlist,
            (std::vector<std::string>{"/opt/a", "/opt/b"}));
  std::filesystem::remove(file);
}

TEST(DaemonConfigTest, BadValuesNameTheOptionAndWhereItCameFrom) {
  auto a = ParseDaemonConfig({"--slots", "many"}, "/bin");
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(a.status().message().find("--slots"), std::string::npos);
  setenv("TPJIT_HEALTH_PORT", "70000", 1);
  auto b = ParseDaemonConfig({}, "/bin");
  unsetenv("TPJIT_HEALTH_PORT");
  EXPECT_NE(b.status().message().find("$TPJIT_HEALTH_PORT"), std::string::npos);
  auto c = ParseDaemonConfig({"--no-such-flag"}, "/bin");
  EXPECT_NE(c.status().message().find("--no-such-flag"), std::string::npos);
  const std::string file = WriteConfig("slots 3\n");
  auto d = ParseDaemonConfig({"--config", file}, "/bin");
  EXPECT_NE(d.status().message().find(":1:"), std::string::npos);
  std::filesystem::remove(file);
  EXPECT_FALSE(ParseDaemonConfig({"--config", "/no/such/file"}, "/bin").ok());
}

TEST(DaemonConfigTest, RemoteCacheIsCheckedAndKeepsNoSecretInArgv) {
  auto d = ParseDaemonConfig({}, "/bin");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->remote_cache, "");
  EXPECT_EQ(d->remote_cache_prefix, "tpjit:");
  auto ok = ParseDaemonConfig(
      {"--remote-cache", "redis://10.0.0.5:6379/2", "--remote-cache-prefix",
       "prod-a:", "--remote-cache-timeout", "0.1"},
      "/bin");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->remote_cache_prefix, "prod-a:");
  EXPECT_DOUBLE_EQ(ok->remote_cache_timeout_seconds, 0.1);
  for (const char* bad : {"http://x:1", "redis://x", "redis://u:hunter2@x:1"}) {
    auto b = ParseDaemonConfig({"--remote-cache", bad}, "/bin");
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(b.status().message().find("--remote-cache"), std::string::npos);
    EXPECT_EQ(b.status().message().find("hunter2"), std::string::npos);
  }
  EXPECT_FALSE(ParseDaemonConfig({"--remote-cache-timeout", "0"}, "/bin").ok());
}

TEST(DaemonConfigTest, RequestLimitsHaveDefaultsAndBounds) {
  auto d = ParseDaemonConfig({}, "/bin");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->max_request_bytes, int64_t{64} << 20);
  EXPECT_EQ(d->max_client_timeout_seconds, 3600);
  EXPECT_EQ(d->plan_threads, 2);
  EXPECT_EQ(d->max_queued_plans, 64);
  EXPECT_EQ(d->prepare_threads, 2);
  EXPECT_EQ(d->max_queued_prepares, 64);
  EXPECT_EQ(d->max_queued_compiles, 100000);
  EXPECT_EQ(d->max_barrier_groups, 4096);
  setenv("TPJIT_MAX_QUEUED_PLANS", "8", 1);
  auto c = ParseDaemonConfig(
      {"--max-client-timeout", "60", "--max-request-bytes", "2097152"}, "/bin");
  unsetenv("TPJIT_MAX_QUEUED_PLANS");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->max_client_timeout_seconds, 60);
  EXPECT_EQ(c->max_request_bytes, 2097152);
  EXPECT_EQ(c->max_queued_plans, 8);
  for (const char* bad :
       {"--max-client-timeout=0", "--max-request-bytes=1000",
        "--plan-threads=0", "--max-queued-plans=0", "--max-barrier-groups=1"}) {
    auto b = ParseDaemonConfig({bad}, "/bin");
    EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    const std::string name(bad, std::string(bad).find('='));
    EXPECT_NE(b.status().message().find(name), std::string::npos) << b.status();
  }
}

}  // namespace
}  // namespace tpjit
