#include "daemon/http_server.h"

#include <httplib.h>

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "daemon/daemon.h"
#include "google/protobuf/util/json_util.h"

namespace tpjit {
namespace {

using tpjit::v1::SlotStatus;
using tpjit::v1::StatsResponse;
using tpjit::v1::StatusResponse;

constexpr char kMetricsType[] = "text/plain; version=0.0.4; charset=utf-8";
// Each open connection holds a handler thread until it sends a request or
// its keep-alive / read timeout ends: enough threads that a handful of idle
// connections leave /metrics free, and short timeouts so they do not linger.
constexpr int kHandlerThreads = 16;
constexpr int kReadTimeoutSeconds = 2;
constexpr int kWriteTimeoutSeconds = 5;
constexpr int kKeepAliveSeconds = 2;
constexpr int kKeepAliveMaxRequests = 100;

// Prometheus label values escape backslash, double quote and newline.
std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Num(double v) { return absl::StrFormat("%.10g", v); }

// Appends metric families in the text exposition format.
class MetricsWriter {
 public:
  // Starts a family: `# HELP` and `# TYPE` lines.
  void Family(const std::string& name, const char* type, const char* help) {
    absl::StrAppend(&out_, "# HELP ", name, " ", help, "\n# TYPE ", name, " ",
                    type, "\n");
  }
  void Sample(const std::string& name, const std::string& labels,
              const std::string& value) {
    absl::StrAppend(&out_, name, labels.empty() ? "" : "{", labels,
                    labels.empty() ? "" : "}", " ", value, "\n");
  }
  // A one-sample family without labels.
  void Scalar(const std::string& name, const char* type, const char* help,
              double value) {
    Family(name, type, help);
    Sample(name, "", Num(value));
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

void WriteCounters(const StatsResponse& s, MetricsWriter& w) {
  const char* c = "counter";
  w.Scalar("tpjit_compiles_total", c, "Kernels compiled.", s.compiles());
  w.Scalar("tpjit_compile_failures_total", c, "Kernel compiles that failed.",
           s.compile_failures());
  w.Scalar("tpjit_cache_hits_total", c, "Kernels served from the cache.",
           s.cache_hits());
  w.Scalar("tpjit_cache_misses_total", c, "Kernels not found in the cache.",
           s.cache_misses());
  w.Scalar("tpjit_worker_restarts_total", c,
           "Worker processes restarted after a crash or a hung compile.",
           s.worker_restarts());
  w.Scalar("tpjit_warmup_calls_total", c, "Warmup calls received.",
           s.warmup_calls());
  w.Scalar("tpjit_jobs_total", c, "Warm-up jobs created.", s.jobs());
  w.Scalar("tpjit_barrier_waits_total", c, "Barrier calls served.",
           s.barrier_waits());
  w.Scalar("tpjit_barrier_timeouts_total", c,
           "Barrier calls that ended at their deadline.", s.barrier_timeouts());
  w.Scalar("tpjit_cache_evictions_total", c,
           "Cache entries evicted to stay under the size cap.",
           s.cache_evictions());
  w.Scalar("tpjit_cache_corrupt_entries_total", c,
           "Cache entries that failed verification.", s.cache_corrupt());
}

void WriteGauges(const StatsResponse& s, const StatusResponse& st,
                 MetricsWriter& w) {
  const char* g = "gauge";
  w.Scalar("tpjit_serving", g, "1 when tpjitd serves (health SERVING).",
           s.serving() ? 1 : 0);
  w.Scalar("tpjit_queue_depth", g, "Kernels queued for a compile slot.",
           s.queue_depth());
  w.Scalar("tpjit_cache_bytes", g, "Bytes in the cache directory.",
           s.cache_bytes());
  w.Scalar("tpjit_cache_entries", g, "Entries in the cache directory.",
           s.cache_entries());
  w.Scalar("tpjit_slots", g, "Worker slots.", s.slots());
  w.Scalar("tpjit_gpus", g, "GPUs in use.", s.gpus());
  w.Scalar("tpjit_procs_per_slot", g, "Compile processes per slot.",
           s.procs_per_slot());
  w.Scalar("tpjit_uptime_seconds", g, "Seconds since tpjitd started.",
           s.uptime_seconds());
  int active = 0;
  for (const auto& job : st.jobs()) {
    const std::string& phase = job.progress().phase();
    if (phase != "done" && phase != "failed") ++active;
  }
  w.Scalar("tpjit_jobs_active", g, "Warm-up jobs not yet done or failed.",
           active);
  w.Family("tpjit_build_info", g, "Toolchain of this tpjitd; always 1.");
  w.Sample(
      "tpjit_build_info",
      absl::StrCat("nvrtc_version=\"", EscapeLabel(s.nvrtc_version()), "\""),
      "1");
}

void WriteHistogram(const StatsResponse& s, const DaemonCounters& c,
                    MetricsWriter& w) {
  const std::string name = "tpjit_compile_seconds";
  w.Family(name, "histogram", "Wall time of one kernel compile.");
  int64_t cumulative = 0;
  for (size_t b = 0; b < c.compile_histogram.size(); ++b) {
    cumulative += c.compile_histogram[b].load();
    std::string le = b < DaemonCounters::kHistogramBounds.size()
                         ? Num(DaemonCounters::kHistogramBounds[b])
                         : "+Inf";
    w.Sample(name + "_bucket", absl::StrCat("le=\"", le, "\""),
             absl::StrCat(cumulative));
  }
  w.Sample(name + "_sum", "", Num(s.compile_seconds()));
  w.Sample(name + "_count", "", absl::StrCat(cumulative));
}

// The Redis tier's counters, up gauge and call latency histogram; nothing
// without a remote tier.
void WriteRemote(const StatsResponse& s, MetricsWriter& w) {
  const auto& r = s.remote_cache();
  if (r.address().empty()) return;
  const char* c = "counter";
  struct Counter {
    const char* name;
    const char* help;
    int64_t value;
  };
  const Counter counters[] = {
      {"hits", "Entries found in the remote cache.", r.hits()},
      {"misses", "Entries not found in the remote cache.", r.misses()},
      {"errors", "Remote cache calls that failed.", r.errors()},
      {"corrupt", "Remote values that failed verification (ignored).",
       r.corrupt()},
      {"bytes_read", "Bytes read from the remote cache.", r.bytes_read()},
      {"bytes_written", "Bytes written to the remote cache.",
       r.bytes_written()},
      {"put_drops", "Remote puts not sent (queue full, entry too large).",
       r.put_drops()},
      {"full", "Remote puts refused by a full Redis.", r.full()},
      {"leases_won", "Kernels this node compiled under a fleet lease.",
       r.leases_won()},
      {"lease_waits", "Kernels another node was compiling.", r.lease_waits()},
      {"lease_timeouts", "Lease waits that ended at their deadline.",
       r.lease_timeouts()},
      {"evictions", "Keys Redis evicted since start (server-wide).",
       r.evictions()},
      {"lost", "Entries put earlier and later found gone.", r.lost()},
      {"recipe_hits", "Recipe files found in the remote cache.",
       r.recipe_hits()},
      {"recipe_misses", "Recipe files not found in the remote cache.",
       r.recipe_misses()},
      {"recipe_errors", "Remote recipe calls that failed.", r.recipe_errors()},
      {"recipe_corrupt", "Remote recipe values that failed verification.",
       r.recipe_corrupt()},
      {"recipe_bytes_read", "Recipe bytes read from the remote cache.",
       r.recipe_bytes_read()},
      {"recipe_bytes_written", "Recipe bytes written to the remote cache.",
       r.recipe_bytes_written()},
  };
  for (const Counter& k : counters) {
    w.Scalar(absl::StrCat("tpjit_remote_cache_", k.name, "_total"), c, k.help,
             static_cast<double>(k.value));
  }
  w.Scalar("tpjit_remote_cache_up", "gauge",
           "1 while the remote cache answers.", r.healthy() ? 1 : 0);
  const std::string name = "tpjit_remote_cache_call_seconds";
  w.Family(name, "histogram", "Latency of one remote cache call.");
  int64_t cumulative = 0;
  for (int b = 0; b < r.latency_counts_size(); ++b) {
    cumulative += r.latency_counts(b);
    std::string le = b < r.latency_bounds_ms_size()
                         ? Num(r.latency_bounds_ms(b) / 1000)
                         : "+Inf";
    w.Sample(name + "_bucket", absl::StrCat("le=\"", le, "\""),
             absl::StrCat(cumulative));
  }
  w.Sample(name + "_count", "", absl::StrCat(cumulative));
}

void WriteSlots(const StatusResponse& st, MetricsWriter& w) {
  struct Column {
    const char* name;
    const char* type;
    const char* help;
    int64_t (*get)(const SlotStatus&);
  };
  static const Column kColumns[] = {
      {"tpjit_slot_procs_alive", "gauge", "Live compile processes of a slot.",
       [](const SlotStatus& s) -> int64_t { return s.procs_alive(); }},
      {"tpjit_slot_busy", "gauge", "Compile processes of a slot at work.",
       [](const SlotStatus& s) -> int64_t { return s.busy(); }},
      {"tpjit_slot_queued", "gauge", "Kernels queued on a slot.",
       [](const SlotStatus& s) -> int64_t { return s.queued(); }},
      {"tpjit_slot_rss_bytes", "gauge", "Resident memory of a slot's workers.",
       [](const SlotStatus& s) -> int64_t { return s.rss_bytes(); }},
      {"tpjit_slot_compiles_total", "counter", "Kernels compiled by a slot.",
       [](const SlotStatus& s) -> int64_t { return s.compiled(); }},
      {"tpjit_slot_restarts_total", "counter", "Worker restarts of a slot.",
       [](const SlotStatus& s) -> int64_t { return s.restarts(); }},
  };
  for (const Column& col : kColumns) {
    w.Family(col.name, col.type, col.help);
    for (const SlotStatus& slot : st.slots()) {
      w.Sample(
          col.name,
          absl::StrCat("slot=\"", slot.slot(), "\",gpu=\"", slot.gpu(), "\""),
          absl::StrCat(col.get(slot)));
    }
  }
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(m, &out, options).ok()) {
    return "null";
  }
  return out;
}

}  // namespace

std::string RenderMetrics(const StatsResponse& stats,
                          const StatusResponse& status,
                          const DaemonCounters& counters) {
  MetricsWriter w;
  WriteCounters(stats, w);
  WriteGauges(stats, status, w);
  WriteHistogram(stats, counters, w);
  WriteSlots(status, w);
  WriteRemote(stats, w);
  return w.Take();
}

std::string RenderStatusJson(const StatsResponse& stats,
                             const StatusResponse& status) {
  return absl::StrCat("{\"stats\":", ToJson(stats),
                      ",\"status\":", ToJson(status), "}");
}

HttpServer::HttpServer(Daemon& daemon)
    : daemon_(daemon), server_(std::make_unique<httplib::Server>()) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    Daemon& daemon, const std::string& address, int port) {
  std::unique_ptr<HttpServer> http(new HttpServer(daemon));
  http->Route();
  httplib::Server& s = *http->server_;
  s.new_task_queue = [] { return new httplib::ThreadPool(kHandlerThreads); };
  s.set_read_timeout(kReadTimeoutSeconds, 0);
  s.set_write_timeout(kWriteTimeoutSeconds, 0);
  s.set_keep_alive_timeout(kKeepAliveSeconds);
  s.set_keep_alive_max_count(kKeepAliveMaxRequests);
  if (port == 0) {
    http->port_ = s.bind_to_any_port(address);
  } else if (s.bind_to_port(address, port)) {
    http->port_ = port;
  }
  if (http->port_ <= 0) {
    return absl::UnavailableError(absl::StrCat(
        "--http-port: cannot listen on ", address, ":", port,
        " (port in use, or --http-address not an address of this host)"));
  }
  http->listener_ = std::thread(
      [server = http->server_.get()] { server->listen_after_bind(); });
  // stop() is a no-op until the listener runs: wait for it, so that a
  // server destroyed at once still stops.
  for (int i = 0; i < 1000 && !s.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return http;
}

HttpServer::~HttpServer() {
  server_->stop();
  if (listener_.joinable()) listener_.join();
}

void HttpServer::Route() {
  server_->Get(
      "/metrics", [this](const httplib::Request&, httplib::Response& res) {
        res.set_content(RenderMetrics(daemon_.Stats(), daemon_.Status(),
                                      daemon_.counters()),
                        kMetricsType);
      });
  server_->Get(
      "/status.json", [this](const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "no-store");
        res.set_content(RenderStatusJson(daemon_.Stats(), daemon_.Status()),
                        "application/json");
      });
  server_->Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(StatusPageHtml(), "text/html; charset=utf-8");
  });
}

const std::string& StatusPageHtml() {
  static const auto* page = new std::string(R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tpjitd</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.4em}
table{border-collapse:collapse}
th,td{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
#jobs th:nth-child(-n+3),#jobs td:nth-child(-n+3){text-align:left}
dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}
dt{color:#666}.ok{color:#070}.bad{color:#b00}#error{color:#b00}
progress{width:9em}
</style></head><body>
<h1>tpjitd <span id="serving">(loading)</span></h1>
<p id="error"></p>
<dl id="summary"></dl>
<h2>Jobs</h2>
<table id="jobs"><thead><tr><th>job</th><th>spec</th><th>phase</th>
<th>progress</th><th>done / total</th><th>hits</th><th>compiled</th>
<th>failed</th><th>ranks</th><th>elapsed</th></tr></thead><tbody></tbody>
</table>
<h2>Slots</h2>
<table id="slots"><thead><tr><th>slot</th><th>GPU</th><th>busy</th>
<th>procs alive</th><th>queued</th><th>compiled</th><th>restarts</th>
<th>RSS</th></tr></thead><tbody></tbody></table>
<script>
"use strict";
const n = v => Number(v || 0);
function bytes(v) {
  v = n(v); const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return (i ? v.toFixed(1) : v) + " " + u[i];
}
function bar(value, max) {
  const p = document.createElement("progress");
  p.max = Math.max(1, n(max)); p.value = n(value); return p;
}
function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    if (c instanceof Node) td.appendChild(c); else td.textContent = c;
    tr.appendChild(td);
  }
  return tr;
}
function fill(id, rows, empty) {
  if (!rows.length) rows = [row([empty])];
  document.querySelector("#" + id + " tbody").replaceChildren(...rows);
}
function render(d) {
  const s = d.stats, st = d.status;
  const sv = document.getElementById("serving");
  sv.textContent = st.serving ? "SERVING" : "NOT SERVING";
  sv.className = st.serving ? "ok" : "bad";
  const summary = [
    ["uptime", n(s.uptimeSeconds).toFixed(0) + " s"],
    ["compiles", n(s.compiles) + " (" + n(s.compileFailures) + " failed, " +
        n(s.compileSeconds).toFixed(1) + " s)"],
    ["cache hits / misses", n(s.cacheHits) + " / " + n(s.cacheMisses)],
    ["queue depth", n(s.queueDepth)],
    ["cache", s.cacheDir + ": " + n(s.cacheEntries) + " entries, " +
        bytes(s.cacheBytes) + ", " + n(s.cacheEvictions) + " evicted, " +
        n(s.cacheCorrupt) + " corrupt"],
    ["remote cache", !(s.remoteCache || {}).address ? "none" :
        s.remoteCache.address + (s.remoteCache.healthy ? ": up, " :
        ": DEGRADED (" + s.remoteCache.detail + "), ") +
        n(s.remoteCache.hits) + " hits, " + n(s.remoteCache.misses) +
        " misses, " + n(s.remoteCache.errors) + " errors, " +
        bytes(s.remoteCache.bytesRead) + " read, leases " +
        n(s.remoteCache.leasesWon) + " won / " +
        n(s.remoteCache.leaseWaits) + " waited"],
    ["barrier waits / time-outs",
        n(s.barrierWaits) + " / " + n(s.barrierTimeouts)],
    ["slots x procs, GPUs", n(s.slots) + " x " + n(s.procsPerSlot) + ", " +
        n(s.gpus)],
    ["NVRTC", s.nvrtcVersion],
  ];
  const dl = document.getElementById("summary");
  dl.replaceChildren();
  for (const [k, v] of summary) {
    const dt = document.createElement("dt"); dt.textContent = k;
    const dd = document.createElement("dd"); dd.textContent = v;
    dl.append(dt, dd);
  }
  fill("jobs", (st.jobs || []).map(j => {
    const p = j.progress || {};
    return row([(j.jobId || "").slice(0, 12), j.specName, (p.phase || "") +
        (j.error ? ": " + j.error : ""), bar(p.done, p.total),
        n(p.done) + " / " + n(p.total), n(p.cacheHits), n(p.compiled),
        n(p.failed), n(j.attachedRanks),
        n(p.elapsedSeconds).toFixed(1) + " s"]);
  }), "no jobs yet");
  fill("slots", (st.slots || []).map(sl => row([
    "slot " + n(sl.slot), n(sl.gpu) < 0 ? "none" : "GPU " + n(sl.gpu),
    bar(sl.busy, sl.procsAlive), n(sl.procsAlive) + " / " + n(s.procsPerSlot),
    n(sl.queued), n(sl.compiled), n(sl.restarts), bytes(sl.rssBytes)])),
    "no slots");
}
async function refresh() {
  const err = document.getElementById("error");
  try {
    const r = await fetch("status.json", {cache: "no-store"});
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    err.textContent = "";
  } catch (e) {
    err.textContent = "cannot read status.json: " + e.message;
  }
}
refresh();
setInterval(refresh, 2000);
</script>
</body></html>
)html");
  return *page;
}

}  // namespace tpjit
