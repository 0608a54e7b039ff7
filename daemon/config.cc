#include "daemon/config.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "src/cache/redis_client.h"
#include "src/common/flags.h"
#include "src/common/socket_path.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

const std::vector<FlagDef>& Table() {
  static const auto* defs = new std::vector<FlagDef>{
      {"config", true, "config file of `name = value` lines", "TPJIT_CONFIG"},
      {"socket", true, "Unix socket to serve on", "TPJIT_SOCKET"},
      {"cache-dir", true, "cubin cache directory", "TPJIT_CACHE_DIR"},
      {"cache-max-bytes", true, "cache size cap (0 = none)",
       "TPJIT_CACHE_MAX_BYTES"},
      {"allow-shared-cache", false,
       "accept a cache dir that other users may write (warns; their entries "
       "are still refused)"},
      {"slots", true, "worker slots (0 = one per GPU, 1 without)",
       "TPJIT_SLOTS"},
      {"procs", true, "compile processes per slot (0 = cores / slots)",
       "TPJIT_PROCS"},
      {"gpus", true, "GPUs to use (-1 = detect, 0 = none)", "TPJIT_GPUS"},
      {"health-port", true, "TCP port for gRPC health probes (0 = off)",
       "TPJIT_HEALTH_PORT"},
      {"health-address", true,
       "address the health port binds (default 127.0.0.1; the pod IP in "
       "Kubernetes)",
       "TPJIT_HEALTH_ADDRESS"},
      {"shutdown-grace", true,
       "seconds from SIGTERM to exit, whatever still runs",
       "TPJIT_SHUTDOWN_GRACE"},
      {"http-port", true, "port of /metrics and the status page (0 = off)",
       "TPJIT_HTTP_PORT"},
      {"http-address", true, "address the HTTP port binds",
       "TPJIT_HTTP_ADDRESS"},
      {"salt", true, "cache key salt; bump to disown a cache", "TPJIT_SALT"},
      {"compile-timeout", true, "seconds before a compile is killed",
       "TPJIT_COMPILE_TIMEOUT"},
      {"worker-binary", true, "path of tpjit-worker", "TPJIT_WORKER_BINARY"},
      {"include-allowlist", true,
       "colon-separated roots generic compiles may include from",
       "TPJIT_INCLUDE_ALLOWLIST"},
      {"nvcc", true, "nvcc for the NVCC back end", "TPJIT_NVCC"},
      {"max-compile-timeout", true,
       "the largest per-source time limit a client may ask for (seconds)",
       "TPJIT_MAX_COMPILE_TIMEOUT"},
      {"sandbox-user", true,
       "user nvcc runs as (default: nobody when tpjitd is root; \"-\" = "
       "tpjitd's own)",
       "TPJIT_SANDBOX_USER"},
      {"compile-memory-limit", true,
       "address-space limit of each nvcc process, bytes (0 = none)",
       "TPJIT_COMPILE_MEMORY_LIMIT"},
      {"max-request-bytes", true, "largest gRPC request accepted (bytes)",
       "TPJIT_MAX_REQUEST_BYTES"},
      {"max-client-timeout", true,
       "seconds; longer client timeouts (barrier, compile) are clamped",
       "TPJIT_MAX_CLIENT_TIMEOUT"},
      {"plan-threads", true, "threads planning warm-ups", "TPJIT_PLAN_THREADS"},
      {"max-queued-plans", true,
       "warm-ups waiting to be planned before RESOURCE_EXHAUSTED",
       "TPJIT_MAX_QUEUED_PLANS"},
      {"prepare-threads", true, "threads preparing generic compiles",
       "TPJIT_PREPARE_THREADS"},
      {"max-queued-prepares", true,
       "compile requests waiting to be prepared before RESOURCE_EXHAUSTED",
       "TPJIT_MAX_QUEUED_PREPARES"},
      {"job-retention", true,
       "seconds a finished warm-up job is remembered (for late ranks and "
       "fetches)",
       "TPJIT_JOB_RETENTION"},
      {"max-queued-compiles", true,
       "queued compile tasks before Compile is refused and health is "
       "NOT_SERVING",
       "TPJIT_MAX_QUEUED_COMPILES"},
      {"max-barrier-groups", true,
       "barrier groups and rendezvous entries remembered at once",
       "TPJIT_MAX_BARRIER_GROUPS"},
      {"remote-cache", true,
       "Redis tier behind the cache dir: redis://HOST:PORT[/DB] or "
       "unix:///PATH[?db=DB] (password: TPJIT_REMOTE_CACHE_PASSWORD or "
       "--remote-cache-password-file)",
       "TPJIT_REMOTE_CACHE"},
      {"remote-cache-prefix", true, "Redis key prefix, one per deployment",
       "TPJIT_REMOTE_CACHE_PREFIX"},
      {"remote-cache-ttl", true, "seconds a Redis entry lives after its put",
       "TPJIT_REMOTE_CACHE_TTL"},
      {"remote-cache-timeout", true,
       "seconds bounding each Redis connect and command",
       "TPJIT_REMOTE_CACHE_TIMEOUT"},
      {"remote-cache-max-entry-bytes", true,
       "larger entries are not sent to Redis",
       "TPJIT_REMOTE_CACHE_MAX_ENTRY_BYTES"},
      {"remote-cache-password-file", true,
       "file holding the Redis password (AUTH)",
       "TPJIT_REMOTE_CACHE_PASSWORD_FILE"},
      {"trace-compiles", false,
       "log each compile request's tasks and each compile's timings"},
      {"help", false, "show this help"},
  };
  return *defs;
}

absl::StatusOr<std::vector<std::string>> ReadConfigFile(
    const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config: cannot read ", path));
  }
  std::vector<std::string> args;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    absl::string_view l = absl::StripAsciiWhitespace(line);
    if (l.empty() || l[0] == '#') continue;
    std::vector<std::string> kv = absl::StrSplit(l, absl::MaxSplits('=', 1));
    if (kv.size() != 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", n, ": expected `name = value`, got \"", l, "\""));
    }
    args.push_back(absl::StrCat("--", absl::StripAsciiWhitespace(kv[0]), "=",
                                absl::StripAsciiWhitespace(kv[1])));
  }
  return args;
}

std::string HomeCache() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    return absl::StrCat(x, "/tpjit");
  }
  if (const char* h = std::getenv("HOME"); h && *h) {
    return absl::StrCat(h, "/.cache/tpjit");
  }
  return "/var/cache/tpjit";
}

// Resolves --sandbox-user ("-": no switch) into uid/gid.
absl::Status SetSandboxUser(const std::string& name, DaemonConfig* c) {
  if (name == "-" || name.empty()) return absl::OkStatus();
  struct passwd* pw = getpwnam(name.c_str());
  if (pw == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--sandbox-user: no user \"", name, "\" (\"-\" keeps tpjitd's own)"));
  }
  if (pw->pw_uid == 0) {
    return absl::InvalidArgumentError("--sandbox-user: must not be root");
  }
  c->sandbox_uid = static_cast<int>(pw->pw_uid);
  c->sandbox_gid = static_cast<int>(pw->pw_gid);
  return absl::OkStatus();
}

// The options that bound what clients may ask.
absl::Status ParseLimits(const ParsedFlags& f, DaemonConfig& c) {
  TPJIT_ASSIGN_OR_RETURN(c.max_request_bytes,
                         f.GetInt("max-request-bytes", int64_t{64} << 20,
                                  int64_t{1} << 20, int64_t{1} << 30));
  TPJIT_ASSIGN_OR_RETURN(c.max_client_timeout_seconds,
                         f.GetDouble("max-client-timeout", 3600, 1, 86400));
  TPJIT_ASSIGN_OR_RETURN(int64_t plan_threads,
                         f.GetInt("plan-threads", 2, 1, 64));
  TPJIT_ASSIGN_OR_RETURN(int64_t plans,
                         f.GetInt("max-queued-plans", 64, 1, 1 << 16));
  TPJIT_ASSIGN_OR_RETURN(int64_t prep_threads,
                         f.GetInt("prepare-threads", 2, 1, 64));
  TPJIT_ASSIGN_OR_RETURN(int64_t preps,
                         f.GetInt("max-queued-prepares", 64, 1, 1 << 16));
  TPJIT_ASSIGN_OR_RETURN(c.max_queued_compiles,
                         f.GetInt("max-queued-compiles", 100000, 1, 10000000));
  TPJIT_ASSIGN_OR_RETURN(int64_t groups,
                         f.GetInt("max-barrier-groups", 4096, 16, 1 << 20));
  c.plan_threads = static_cast<int>(plan_threads);
  c.max_queued_plans = static_cast<int>(plans);
  c.prepare_threads = static_cast<int>(prep_threads);
  c.max_queued_prepares = static_cast<int>(preps);
  c.max_barrier_groups = static_cast<int>(groups);
  return absl::OkStatus();
}

}  // namespace

std::string DaemonUsage() {
  return absl::StrCat("usage: tpjitd [FLAGS]\n", FlagHelp(Table()));
}

namespace {

absl::Status ParseRemoteCache(const ParsedFlags& f, DaemonConfig& c) {
  c.remote_cache = f.Get("remote-cache").value_or("");
  if (!c.remote_cache.empty()) {
    auto a = ParseRedisUrl(c.remote_cache);
    if (!a.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--remote-cache: ", a.status().message()));
    }
  }
  c.remote_cache_prefix = f.Get("remote-cache-prefix").value_or("tpjit:");
  c.remote_cache_password_file =
      f.Get("remote-cache-password-file").value_or("");
  TPJIT_ASSIGN_OR_RETURN(
      c.remote_cache_ttl_seconds,
      f.GetDouble("remote-cache-ttl", 7 * 24 * 3600, 1, 365 * 24 * 3600));
  TPJIT_ASSIGN_OR_RETURN(c.remote_cache_timeout_seconds,
                         f.GetDouble("remote-cache-timeout", 0.25, 0.001, 60));
  TPJIT_ASSIGN_OR_RETURN(
      c.remote_cache_max_entry_bytes,
      f.GetInt("remote-cache-max-entry-bytes", 64 << 20, 1024, 512 << 20));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<DaemonConfig> ParseDaemonConfig(
    const std::vector<std::string>& args, const std::string& exe_dir) {
  TPJIT_ASSIGN_OR_RETURN(ParsedFlags first, ParseFlags(Table(), args));
  std::vector<std::string> all;
  if (auto file = first.Get("config")) {
    TPJIT_ASSIGN_OR_RETURN(all, ReadConfigFile(*file));
  }
  all.insert(all.end(), args.begin(), args.end());
  TPJIT_ASSIGN_OR_RETURN(ParsedFlags f, ParseFlags(Table(), all));
  if (f.Has("help")) return absl::CancelledError(DaemonUsage());
  if (!f.positional().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument \"", f.positional()[0], "\""));
  }
  DaemonConfig c;
  c.socket = f.Get("socket").value_or(DefaultSocketPath());
  c.cache_dir = f.Get("cache-dir").value_or(HomeCache());
  TPJIT_ASSIGN_OR_RETURN(c.cache_max_bytes,
                         f.GetInt("cache-max-bytes", 0, 0, int64_t{1} << 50));
  TPJIT_ASSIGN_OR_RETURN(int64_t slots, f.GetInt("slots", 0, 0, 256));
  TPJIT_ASSIGN_OR_RETURN(int64_t procs, f.GetInt("procs", 0, 0, 1024));
  TPJIT_ASSIGN_OR_RETURN(int64_t gpus, f.GetInt("gpus", -1, -1, 64));
  TPJIT_ASSIGN_OR_RETURN(int64_t hp, f.GetInt("health-port", 0, 0, 65535));
  TPJIT_ASSIGN_OR_RETURN(int64_t wp, f.GetInt("http-port", 0, 0, 65535));
  TPJIT_ASSIGN_OR_RETURN(c.compile_timeout_seconds,
                         f.GetDouble("compile-timeout", 120, 0.1, 86400));
  TPJIT_ASSIGN_OR_RETURN(c.shutdown_grace_seconds,
                         f.GetDouble("shutdown-grace", 10, 0.5, 3600));
  TPJIT_ASSIGN_OR_RETURN(c.job_retention_seconds,
                         f.GetDouble("job-retention", 600, 0, 7 * 86400));
  TPJIT_RETURN_IF_ERROR(ParseLimits(f, c));
  c.slots = static_cast<int>(slots);
  c.procs = static_cast<int>(procs);
  c.gpus = static_cast<int>(gpus);
  c.health_port = static_cast<int>(hp);
  c.http_port = static_cast<int>(wp);
  c.http_address = f.Get("http-address").value_or("127.0.0.1");
  c.health_address = f.Get("health-address").value_or("127.0.0.1");
  c.allow_shared_cache = f.Has("allow-shared-cache");
  c.trace_compiles = f.Has("trace-compiles");
  c.salt = f.Get("salt").value_or("");
  c.worker_binary = f.Get("worker-binary").value_or(exe_dir + "/tpjit-worker");
  c.nvcc = f.Get("nvcc").value_or(c.nvcc);
  TPJIT_ASSIGN_OR_RETURN(c.max_compile_timeout_seconds,
                         f.GetDouble("max-compile-timeout", 600, 1, 86400));
  TPJIT_ASSIGN_OR_RETURN(
      c.compile_memory_bytes,
      f.GetInt("compile-memory-limit", int64_t{16} << 30, 0, int64_t{1} << 44));
  TPJIT_RETURN_IF_ERROR(SetSandboxUser(
      f.Get("sandbox-user").value_or(geteuid() == 0 ? "nobody" : "-"), &c));
  if (auto list = f.Get("include-allowlist")) {
    c.include_allowlist = absl::StrSplit(*list, ':', absl::SkipEmpty());
  }
  TPJIT_RETURN_IF_ERROR(ParseRemoteCache(f, c));
  if (c.socket.empty()) return absl::InvalidArgumentError("--socket: empty");
  if (c.cache_dir.empty()) {
    return absl::InvalidArgumentError("--cache-dir: empty");
  }
  return c;
}

}  // namespace tpjit
