// tpjitd's HTTP port (--http-port, bound to --http-address): Prometheus
// metrics at /metrics, the daemon's state as JSON at /status.json and a small
// self-contained status page at / that polls it. Served by cpp-httplib on
// its own listener thread and a pool of 16 handler threads, with 2 s read and
// keep-alive timeouts so idle connections cannot starve it; every request
// reads the daemon through its thread-safe Stats(), Status() and counters().
//
// The Render* functions are pure and used by the server and by tests.
#ifndef TPJIT_DAEMON_HTTP_SERVER_H_
#define TPJIT_DAEMON_HTTP_SERVER_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "daemon/counters.h"
#include "tpjit/v1/tpjit.pb.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace tpjit {

class Daemon;

// Prometheus text exposition format (version 0.0.4) of the daemon's
// counters, gauges, compile-seconds histogram and per-slot gauges. Every
// family is prefixed `tpjit_`; counters end in `_total`.
std::string RenderMetrics(const tpjit::v1::StatsResponse& stats,
                          const tpjit::v1::StatusResponse& status,
                          const DaemonCounters& counters);

// {"stats": <StatsResponse>, "status": <StatusResponse>} in the protobuf
// JSON mapping (lowerCamelCase names, defaults printed, int64 as strings).
std::string RenderStatusJson(const tpjit::v1::StatsResponse& stats,
                             const tpjit::v1::StatusResponse& status);

// The status page: HTML with inline CSS and script, no external assets. The
// script fetches /status.json every two seconds and fills the summary, the
// job table (id `jobs`) and the slot table (id `slots`, one row "slot N"
// per worker slot).
const std::string& StatusPageHtml();

// An HTTP server over a Daemon. Not copyable; destroying it stops the
// listener and joins its threads. `daemon` must outlive it.
class HttpServer {
 public:
  // Binds `address`:`port` (port 0: any free port) and starts serving.
  // UNAVAILABLE naming the address when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      Daemon& daemon, const std::string& address, int port);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer(Daemon& daemon);
  void Route();

  Daemon& daemon_;
  std::unique_ptr<httplib::Server> server_;
  std::thread listener_;
  int port_ = 0;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_HTTP_SERVER_H_
