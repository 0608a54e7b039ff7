// tpjitd's configuration: every option declared once in one table (name,
// default, environment variable, help). Sources, later ones winning: the
// default, the environment variable, the optional config file (`name = value`
// lines, named by --config), the command line. Errors name the option and
// where its bad value came from.
#ifndef TPJIT_DAEMON_CONFIG_H_
#define TPJIT_DAEMON_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace tpjit {

struct DaemonConfig {
  std::string socket;  // Unix socket path
  std::string cache_dir;
  int64_t cache_max_bytes = 0;  // 0: no cap
  // Accept a cache dir that others may write (with a warning); their entries
  // are still refused. See docs/security.md.
  bool allow_shared_cache = false;
  int slots = 0;        // 0: one per GPU (1 without GPUs)
  int procs = 0;        // per slot; 0: cores / slots
  int gpus = -1;        // -1: detect
  int health_port = 0;  // TCP port for gRPC health probes; 0: off
  std::string health_address = "127.0.0.1";  // what the health port binds
  // SIGTERM/SIGINT: calls are cancelled at half of it; at its end the
  // process exits whatever is still running (workers are killed).
  double shutdown_grace_seconds = 10;
  int http_port = 0;  // /metrics and status page; 0: off
  std::string http_address = "127.0.0.1";
  std::string salt;
  double compile_timeout_seconds = 120;
  std::string worker_binary;  // default: tpjit-worker beside tpjitd
  std::vector<std::string> include_allowlist;  // generic compiles
  std::string nvcc = "/usr/local/cuda/bin/nvcc";
  // Bounds on what clients may ask (see docs/security.md).
  int64_t max_request_bytes = 64 << 20;      // gRPC receive limit, every RPC
  double max_client_timeout_seconds = 3600;  // client timeouts clamp to it
  int plan_threads = 2;                      // warm-up planning pool
  int max_queued_plans = 64;                 // then RESOURCE_EXHAUSTED
  int prepare_threads = 2;                   // generic compile preparation pool
  int max_queued_prepares = 64;              // then RESOURCE_EXHAUSTED
  int64_t max_queued_compiles = 100000;      // compile tasks; then saturated
  int max_barrier_groups = 4096;  // barrier groups / rendezvous entries
  // Finished warm-up jobs are forgotten this long after they end (at most
  // Daemon::kMaxRememberedJobs are kept in any case); their cubins stay in
  // the cache.
  double job_retention_seconds = 600;
  // Generic compiles: the largest time limit a client may ask for.
  double max_compile_timeout_seconds = 600;
  // The user compiler processes run as (-1: the daemon's own; the default
  // when the daemon is root is "nobody").
  int sandbox_uid = -1;
  int sandbox_gid = -1;
  int64_t compile_memory_bytes = int64_t{16} << 30;  // RLIMIT_AS per nvcc
  // The Redis tier (docs/operations.md); empty: none. Its password comes
  // from remote_cache_password_file or $TPJIT_REMOTE_CACHE_PASSWORD, never a
  // flag.
  std::string remote_cache;
  std::string remote_cache_prefix = "tpjit:";
  double remote_cache_ttl_seconds = 7 * 24 * 3600;
  double remote_cache_timeout_seconds = 0.25;
  int64_t remote_cache_max_entry_bytes = 64 << 20;
  std::string remote_cache_password_file;
  // One log line per compile request's task (hit, joined, new) and per
  // compile (queue wait, lease wait, compile, load check), for diagnosing
  // a slow warm-up.
  bool trace_compiles = false;
};

// Parses argv[1..] (and the file named by --config). `exe_dir` locates the
// default worker binary. INVALID_ARGUMENT names the bad option.
absl::StatusOr<DaemonConfig> ParseDaemonConfig(
    const std::vector<std::string>& args, const std::string& exe_dir);

std::string DaemonUsage();

}  // namespace tpjit

#endif  // TPJIT_DAEMON_CONFIG_H_
