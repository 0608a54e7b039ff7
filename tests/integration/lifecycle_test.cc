// tpjitd's lifecycle and cache trust against the real binary (issue 12):
// SIGTERM during a warm-up, a second daemon on a live socket, a stale
// socket, the health port's address, a world-writable cache dir, planted or
// foreign cache entries, and the lease of a daemon killed with SIGKILL.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "src/cache/entry_format.h"
#include "src/plan/spec.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kSpecs = TPJIT_SPECS_DIR;

// Waits (tests/testlib WaitUntil) until `done` holds or `limit` passes.
bool WaitFor(const std::function<bool()>& done, milliseconds limit) {
  return WaitUntil(done, absl::FromChrono(limit));
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Local addresses (hex, as in /proc/net/tcp*) that listen on `port`.
std::set<std::string> ListeningAddresses(int port) {
  std::set<std::string> out;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream in(ReadWholeFile(table));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::vector<std::string> f =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (f.size() < 4 || f[3] != "0A") continue;  // LISTEN
      std::vector<std::string> addr = absl::StrSplit(f[1], ':');
      int p = 0;
      if (addr.size() == 2 && absl::SimpleHexAtoi(addr[1], &p) && p == port) {
        out.insert(addr[0]);
      }
    }
  }
  return out;
}

tpjit::v1::CompileRequest KernelRequest(int n) {
  tpjit::v1::CompileRequest req;
  req.set_backend(tpjit::v1::NVRTC);
  req.set_arch("sm_90a");
  req.set_timeout_seconds(120);
  auto* src = req.add_sources();
  src->set_name("k.cu");
  src->set_source(R"(
template <int N> __global__ void k(float* x) {
#pragma unroll
  for (int i = 0; i < N; ++i) x[i] = x[i] * 1.0001f + x[(i * 7) % N];
})");
  src->add_name_expressions(absl::StrCat("k<", n, ">"));
  return req;
}

tpjit::v1::CompileResult Compile(Daemon& d, int n) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(3));
  tpjit::v1::CompileResponse resp;
  grpc::Status s = d.stub().Compile(&ctx, KernelRequest(n), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.results_size(), 1);
  return resp.results_size() == 1 ? resp.results(0)
                                  : tpjit::v1::CompileResult();
}

TEST(LifecycleTest, SigtermDuringAWarmupExitsWithinTheGrace) {
  TempDir dir;
  Daemon daemon(dir.path(),
                {"--slots", "1", "--procs", "1", "--shutdown-grace", "4"});
  ASSERT_TRUE(daemon.WaitServing());
  auto rank = Subprocess::Spawn(
      {TPJIT_TEST_RANK, daemon.socket(), kSpecs + "/qwen3-30b-a3b-tp4.json",
       "0", "2", dir.path() + "/r0.manifest"},
      dir.path() + "/r0.out");
  ASSERT_TRUE(rank.ok()) << rank.status();
  // Wait until the warm-up compiles (its job has started work).
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext ctx;
        tpjit::v1::StatusResponse st;
        daemon.stub().Status(&ctx, tpjit::v1::StatusRequest(), &st);
        return st.jobs_size() > 0 && daemon.Stats().queue_depth() > 0;
      },
      seconds(60)));
  // Our open channel stays open: an idle connection must not hold it up.
  const auto start = std::chrono::steady_clock::now();
  kill(daemon.pid(), SIGTERM);
  const int rc = daemon.WaitExitWithin(seconds(4 + 2));
  ASSERT_NE(rc, -1) << "tpjitd still runs 6 s after SIGTERM (grace 4 s)";
  EXPECT_EQ(rc, 0) << "only the watchdog ended it:\n" << daemon.Log();
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(6));
  // The rank is answered (an error), not left hanging.
  std::optional<int> code = rank->Wait(absl::Seconds(10));
  ASSERT_TRUE(code.has_value()) << "the rank still waits";
  EXPECT_NE(*code, 0);
}

TEST(LifecycleTest, SecondDaemonOnALiveSocketRefusesToStart) {
  TempDir dir;
  Daemon first(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(first.WaitServing());
  Daemon second(dir.path(), {"--procs", "1"});
  const int rc = second.WaitExitWithin(seconds(30));
  EXPECT_NE(rc, -1) << "the second daemon did not exit";
  EXPECT_NE(rc, 0);
  EXPECT_NE(second.Log().find(absl::StrCat("another tpjitd (pid ", first.pid(),
                                           ") is serving on")),
            std::string::npos)
      << second.Log();
  EXPECT_EQ(first.Health(""), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(LifecycleTest, StaleSocketOfAKilledDaemonIsReplaced) {
  TempDir dir;
  Daemon first(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(first.WaitServing());
  first.Kill9();
  struct stat st;
  ASSERT_EQ(stat(first.socket().c_str(), &st), 0) << "socket file is gone";
  Daemon second(dir.path(), {"--procs", "1"});
  EXPECT_TRUE(second.WaitServing()) << second.Log();
}

TEST(LifecycleTest, HealthPortBindsLoopbackByDefault) {
  TempDir dir;
  const int port = FreePort();
  Daemon daemon(dir.path(),
                {"--procs", "1", "--health-port", std::to_string(port)});
  ASSERT_TRUE(daemon.WaitServing());
  std::set<std::string> addrs;
  ASSERT_TRUE(
      WaitFor([&] { return !(addrs = ListeningAddresses(port)).empty(); },
              seconds(10)));
  // 127.0.0.1, as IPv4 or IPv4-mapped IPv6; never 0.0.0.0 or ::.
  const std::set<std::string> loopback = {"0100007F",
                                          "0000000000000000FFFF00000100007F"};
  for (const std::string& a : addrs) {
    EXPECT_TRUE(loopback.count(a)) << "health port listens on " << a;
  }
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  grpc::health::v1::HealthCheckResponse resp;
  EXPECT_TRUE(
      health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp).ok());
}

TEST(LifecycleTest, WorldWritableCacheDirIsRefusedUnlessAllowed) {
  TempDir dir;
  const std::string cache = dir.path() + "/cache";
  ASSERT_EQ(mkdir(cache.c_str(), 0700), 0);
  ASSERT_EQ(chmod(cache.c_str(), 0777), 0);
  Daemon refused(dir.path(), {"--procs", "1"});
  const int rc = refused.WaitExitWithin(seconds(30));
  EXPECT_NE(rc, -1);
  EXPECT_NE(rc, 0);
  EXPECT_NE(refused.Log().find("chmod go-w " + cache), std::string::npos)
      << refused.Log();
  Daemon allowed(dir.path(), {"--procs", "1", "--allow-shared-cache"});
  EXPECT_TRUE(allowed.WaitServing());
  EXPECT_NE(allowed.Log().find("WARNING"), std::string::npos);
}

// Rewrites `key`'s entry with a valid checksum around `payload` and
// metadata that claims a load-checked kernel.
void PlantEntry(const std::string& cache, const std::string& key,
                const std::string& symbol, const std::string& payload) {
  std::ofstream(cache + "/" + key, std::ios::binary | std::ios::trunc)
      << EncodeCacheEntry(key,
                          {{"lowered_names", symbol},
                           {"load_checked", "1"},
                           {"registers", "1"}},
                          payload);
}

TEST(LifecycleTest, PlantedOrForeignCacheEntriesAreNotServed) {
  TempDir dir;
  Daemon daemon(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(daemon.WaitServing());
  tpjit::v1::CompileResult first = Compile(daemon, 8);
  ASSERT_TRUE(first.ok()) << first.error();
  ASSERT_EQ(first.lowered_names_size(), 1);
  EXPECT_TRUE(Compile(daemon, 8).cache_hit());  // the honest entry is used
  const std::string cache = dir.path() + "/cache";
  // Not an ELF, though its checksum and metadata look right.
  PlantEntry(cache, first.key(), first.lowered_names(0), "#!/bin/sh\nid\n");
  tpjit::v1::CompileResult planted = Compile(daemon, 8);
  EXPECT_TRUE(planted.ok()) << planted.error();
  EXPECT_FALSE(planted.cache_hit());
  EXPECT_GE(daemon.Stats().cache_corrupt(), 1);
  EXPECT_TRUE(Compile(daemon, 8).cache_hit());  // recompiled and healed
  if (geteuid() != 0) GTEST_SKIP() << "needs root to chown an entry";
  ASSERT_EQ(chown((cache + "/" + first.key()).c_str(), 65534, 65534), 0);
  EXPECT_FALSE(Compile(daemon, 8).cache_hit());  // another owner's entry
}

// The lease file of `key` in `cache`, or "" when absent.
std::string LeaseText(const std::string& cache) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(cache, ec)) {
    const std::string name = e.path().filename();
    if (name.size() > 6 && name.substr(name.size() - 6) == ".lease") {
      return ReadWholeFile(e.path());
    }
  }
  return "";
}

// Big enough that its compile is seen under way, small enough to compile in
// a few seconds.
constexpr int kLeaseKernel = 600;

TEST(LifecycleTest, LeaseOfADaemonKilledMidCompileIsBrokenAtOnce) {
  TempDir dir;
  const std::string cache = dir.path() + "/cache";
  std::string lease;
  {
    Daemon first(dir.path(), {"--procs", "1"});
    ASSERT_TRUE(first.WaitServing());
    std::thread client([&] {
      grpc::ClientContext ctx;
      tpjit::v1::CompileResponse resp;
      first.stub().Compile(&ctx, KernelRequest(kLeaseKernel), &resp);
    });
    EXPECT_TRUE(WaitFor([&] { return !(lease = LeaseText(cache)).empty(); },
                        seconds(60)));
    first.Kill9();  // holds the lease: no release, no renewal
    client.join();
  }
  ASSERT_FALSE(lease.empty());
  ASSERT_FALSE(LeaseText(cache).empty()) << "the lease was released";
  int64_t expiry_ns = 0;
  for (absl::string_view line : absl::StrSplit(lease, '\n')) {
    if (absl::ConsumePrefix(&line, "expiry_ns=")) {
      ASSERT_TRUE(absl::SimpleAtoi(line, &expiry_ns));
    }
  }
  Daemon second(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(second.WaitServing());
  const auto start = std::chrono::steady_clock::now();
  tpjit::v1::CompileResult r = Compile(second, kLeaseKernel);
  std::cerr << "compile after restart: "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                             start)
                   .count()
            << " s\n";
  EXPECT_TRUE(r.ok()) << r.error();
  EXPECT_LT(absl::Now(), absl::FromUnixNanos(expiry_ns))
      << "the new daemon waited for the dead one's lease to expire";
  EXPECT_NE(second.Log().find("broke dead owner's lease"), std::string::npos)
      << second.Log();
}

}  // namespace
}  // namespace tpjit::testing
