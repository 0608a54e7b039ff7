// The HTTP port of the real tpjitd (--http-port): /metrics in the Prometheus
// text format with the required families, /status.json, and the status page
// rendered by headless Chromium (skipped when /usr/bin/chromium is missing).
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <regex>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kChromium[] = "/usr/bin/chromium";

// A port that was free a moment ago (the daemon takes a port number).
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

// Runs argv (in its own process group) with stdout to `out` and stderr to
// `err`; kills the group after `timeout`. The exit code, or -1 on time-out.
int RunWithTimeout(const std::vector<std::string>& argv, const std::string& out,
                   const std::string& err, std::chrono::seconds timeout) {
  return RunToCompletion(argv, out, err, absl::FromChrono(timeout));
}

class HttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = FreePort();
    daemon_ = std::make_unique<Daemon>(
        dir_.path(), std::vector<std::string>{
                         "--http-port", std::to_string(port_), "--procs", "1"});
    ASSERT_TRUE(daemon_->WaitServing()) << Log();
  }
  std::string Log() { return ReadWholeFile(dir_.path() + "/tpjitd.1.log"); }
  std::string Url(const std::string& path) {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  httplib::Result Get(const std::string& path) {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    return client.Get(path.c_str());
  }

  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(HttpTest, MetricsParseAndHoldTheRequiredFamilies) {
  auto res = Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error()) << "\n" << Log();
  ASSERT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"),
              HasSubstr("text/plain; version=0.0.4"));
  const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? ([-+]?[0-9.eE+-]+|[-+]Inf|NaN)$)");
  std::istringstream in(res->body);
  std::string line;
  std::set<std::string> names;
  int samples = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, sample)) << line;
    names.insert(m[1]);
    ++samples;
  }
  EXPECT_GT(samples, 20);
  for (const char* name :
       {"tpjit_compiles_total", "tpjit_cache_hits_total",
        "tpjit_cache_misses_total", "tpjit_compile_seconds_bucket",
        "tpjit_compile_seconds_sum", "tpjit_compile_seconds_count",
        "tpjit_queue_depth", "tpjit_worker_restarts_total",
        "tpjit_barrier_waits_total", "tpjit_barrier_timeouts_total",
        "tpjit_cache_bytes", "tpjit_cache_evictions_total", "tpjit_serving",
        "tpjit_slot_procs_alive", "tpjit_slot_restarts_total"}) {
    EXPECT_EQ(names.count(name), 1u) << name;
  }
  EXPECT_THAT(res->body, HasSubstr("tpjit_serving 1\n"));
  EXPECT_THAT(res->body, HasSubstr("tpjit_slot_procs_alive{slot=\"0\""));
}

TEST_F(HttpTest, StatusJsonAndUnknownPath) {
  auto res = Get("/status.json");
  ASSERT_TRUE(res) << Log();
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"),
              HasSubstr("application/json"));
  EXPECT_THAT(res->body, HasSubstr("\"serving\":true"));
  EXPECT_THAT(res->body, HasSubstr("\"slots\":[{\"slot\":0"));
  auto missing = Get("/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(HttpTest, StatusPageRendersInHeadlessChromium) {
  if (access(kChromium, X_OK) != 0) {
    GTEST_SKIP() << kChromium
                 << " is missing: apt-get install chromium (scripts/"
                    "install-deps) to check the status page in a browser";
  }
  TempDir profile;
  const std::string dom = dir_.path() + "/dom.html";
  // --virtual-time-budget lets the page's fetch of /status.json finish
  // before --dump-dom serializes the DOM.
  int rc = RunWithTimeout(
      {kChromium, "--headless", "--no-sandbox", "--disable-gpu",
       "--disable-quic", "--no-first-run", "--disable-background-networking",
       "--disable-component-update", "--disable-sync",
       "--user-data-dir=" + profile.path(), "--virtual-time-budget=5000",
       "--dump-dom", Url("/")},
      dom, dir_.path() + "/chromium.log", std::chrono::seconds(120));
  ASSERT_EQ(rc, 0) << ReadWholeFile(dir_.path() + "/chromium.log");
  std::string html = ReadWholeFile(dom);
  size_t slots = html.find("id=\"slots\"");
  ASSERT_NE(slots, std::string::npos) << html;
  std::string table = html.substr(slots, html.find("</table>", slots) - slots);
  EXPECT_THAT(table, HasSubstr("<td>slot 0</td>")) << html;
  EXPECT_THAT(table, HasSubstr("<progress")) << html;
  EXPECT_THAT(html, HasSubstr("no jobs yet")) << html;
  EXPECT_THAT(html, HasSubstr(">SERVING</span>")) << html;
}

// Idle connections (opened, never used) must not stall /metrics: with two
// handler threads and 5 s keep-alive, eight of them held it for 20 s.
TEST_F(HttpTest, IdleConnectionsDoNotStallMetrics) {
  std::vector<int> idle;
  for (int i = 0; i < 8; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port_));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    idle.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  httplib::Result r = Get("/metrics");
  const auto took = std::chrono::steady_clock::now() - start;
  for (int fd : idle) close(fd);
  ASSERT_TRUE(r) << "no answer: " << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(took, std::chrono::milliseconds(1500));
}

}  // namespace
}  // namespace tpjit::testing
