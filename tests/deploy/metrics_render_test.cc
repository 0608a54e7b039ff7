// RenderMetrics / RenderStatusJson / StatusPageHtml on hand-made daemon
// state: the Prometheus text is well formed, counters end in _total, the
// histogram is cumulative and ends with +Inf, and the page is self-contained.
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "daemon/http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct State {
  tpjit::v1::StatsResponse stats;
  tpjit::v1::StatusResponse status;
  DaemonCounters counters;
};

void Fill(State& s) {
  s.stats.set_compiles(3);
  s.stats.set_cache_hits(5);
  s.stats.set_cache_misses(3);
  s.stats.set_compile_seconds(2.75);
  s.stats.set_cache_bytes(123456);
  s.stats.set_serving(true);
  s.stats.set_nvrtc_version("13.0 \"q\"");
  s.counters.RecordCompile(0.05);
  s.counters.RecordCompile(0.7);
  s.counters.RecordCompile(100);
  for (int i = 0; i < 2; ++i) {
    auto* slot = s.status.add_slots();
    slot->set_slot(i);
    slot->set_gpu(-1);
    slot->set_procs_alive(2);
    slot->set_restarts(i);
  }
}

TEST(RenderMetrics, EveryLineParsesAndCountersEndInTotal) {
  State s;
  Fill(s);
  std::string text = RenderMetrics(s.stats, s.status, s.counters);
  const std::regex sample(
      R"(^(tpjit_[a-z_]+)(\{[a-z_]+="([^"\\]|\\.)*"(,[a-z_]+="([^"\\]|\\.)*")*\})? (-?[0-9.e+]+|\+Inf)$)");
  const std::regex type(
      R"(^# TYPE (tpjit_[a-z_]+) (counter|gauge|histogram)$)");
  std::istringstream in(text);
  std::string line;
  std::set<std::string> families;
  while (std::getline(in, line)) {
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) continue;
    if (std::regex_match(line, m, type)) {
      families.insert(m[1]);
      if (m[2] == "counter")
        EXPECT_THAT(m[1].str(), testing::EndsWith("_total"));
      continue;
    }
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
  }
  for (const char* f :
       {"tpjit_compiles_total", "tpjit_cache_hits_total",
        "tpjit_cache_misses_total", "tpjit_compile_seconds",
        "tpjit_queue_depth", "tpjit_worker_restarts_total",
        "tpjit_barrier_waits_total", "tpjit_barrier_timeouts_total",
        "tpjit_cache_bytes", "tpjit_cache_evictions_total", "tpjit_serving",
        "tpjit_slot_procs_alive", "tpjit_slot_restarts_total"}) {
    EXPECT_EQ(families.count(f), 1u) << f;
  }
  EXPECT_THAT(text, HasSubstr("tpjit_serving 1\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_cache_bytes 123456\n"));
  EXPECT_THAT(text, HasSubstr("nvrtc_version=\"13.0 \\\"q\\\"\""));
  EXPECT_THAT(
      text, HasSubstr("tpjit_slot_restarts_total{slot=\"1\",gpu=\"-1\"} 1\n"));
}

TEST(RenderMetrics, HistogramIsCumulative) {
  State s;
  Fill(s);
  std::string text = RenderMetrics(s.stats, s.status, s.counters);
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_bucket{le=\"0.1\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_bucket{le=\"0.5\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_bucket{le=\"30\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_count 3\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_compile_seconds_sum 2.75\n"));
}

TEST(RenderMetrics, RemoteCacheOnlyWithARemoteTier) {
  State s;
  Fill(s);
  EXPECT_THAT(RenderMetrics(s.stats, s.status, s.counters),
              Not(HasSubstr("tpjit_remote_cache")));
  auto* r = s.stats.mutable_remote_cache();
  r->set_address("redis://10.0.0.5:6379");
  r->set_healthy(false);
  r->set_hits(7);
  r->set_leases_won(2);
  r->set_evictions(11);
  r->set_recipe_corrupt(3);
  for (double b : {1.0, 10.0}) r->add_latency_bounds_ms(b);
  for (int64_t c : {3, 1, 1}) r->add_latency_counts(c);
  std::string text = RenderMetrics(s.stats, s.status, s.counters);
  EXPECT_THAT(text, HasSubstr("tpjit_remote_cache_hits_total 7\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_remote_cache_leases_won_total 2\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_remote_cache_evictions_total 11\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_remote_cache_recipe_corrupt_total 3\n"));
  EXPECT_THAT(text, HasSubstr("tpjit_remote_cache_up 0\n"));
  EXPECT_THAT(
      text,
      HasSubstr("tpjit_remote_cache_call_seconds_bucket{le=\"0.01\"} 4\n"));
  EXPECT_THAT(
      text,
      HasSubstr("tpjit_remote_cache_call_seconds_bucket{le=\"+Inf\"} 5\n"));
  EXPECT_THAT(
      RenderStatusJson(s.stats, s.status),
      HasSubstr("\"remoteCache\":{\"address\":\"redis://10.0.0.5:6379\""));
}

TEST(RenderStatusJson, HoldsStatsAndSlots) {
  State s;
  Fill(s);
  std::string json = RenderStatusJson(s.stats, s.status);
  EXPECT_THAT(json, HasSubstr("\"stats\":{"));
  EXPECT_THAT(json, HasSubstr("\"cacheHits\":\"5\""));
  EXPECT_THAT(json, HasSubstr("\"slots\":[{\"slot\":0"));
  EXPECT_THAT(json, HasSubstr("\"queueDepth\":\"0\""));  // defaults printed
}

TEST(StatusPageHtml, SelfContained) {
  const std::string& page = StatusPageHtml();
  EXPECT_THAT(page, HasSubstr("id=\"slots\""));
  EXPECT_THAT(page, HasSubstr("id=\"jobs\""));
  EXPECT_THAT(page, HasSubstr("fetch(\"status.json\""));
  EXPECT_THAT(page, Not(HasSubstr("src=")));
  EXPECT_THAT(page, Not(HasSubstr("href=")));
  EXPECT_THAT(page, Not(HasSubstr("http://")));
}

}  // namespace
}  // namespace tpjit
