#include "daemon/server.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "daemon/services.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server.h"
#include "src/common/child_process.h"

namespace tpjit {
namespace {

constexpr char kServiceName[] = "tpjit.v1.Tpjit";
// Liveness: SERVING whenever the process answers health checks at all, so a
// liveness probe never restarts a daemon that is merely not ready (read-only
// cache, saturated queues). Readiness is "" and kServiceName.
constexpr char kLivenessName[] = "tpjit.v1.Liveness";

void SetHealth(grpc::Server* server, bool serving) {
  if (server == nullptr) return;
  auto* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(kLivenessName, true);
  // The named service first: once "" says SERVING, both are known.
  health->SetServingStatus(kServiceName, serving);
  health->SetServingStatus(serving);
}

// "host:port" for gRPC, bracketing an IPv6 address.
std::string HostPort(const std::string& address, int port) {
  const bool v6 = address.find(':') != std::string::npos && address[0] != '[';
  return v6 ? absl::StrCat("[", address, "]:", port)
            : absl::StrCat(address, ":", port);
}

// Ends the process `grace` after it is started unless the process has
// exited by then: children killed, socket removed, exit code 1. Detached: it
// guards everything after the signal, destructors included.
// `logger` must live until the process ends.
void StartShutdownWatchdog(absl::Duration grace, std::string socket,
                           Logger* logger) {
  std::thread([grace, socket = std::move(socket), logger] {
    absl::SleepFor(grace);
    logger->Log(absl::StrCat("shutdown still running after --shutdown-grace (",
                             absl::FormatDuration(grace),
                             "); killing workers and exiting"));
    KillChildProcesses();
    unlink(socket.c_str());
    _exit(1);
  }).detach();
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

absl::Status RunServer(Daemon& daemon) {
  const DaemonConfig& config = daemon.config();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + config.socket,
                           grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  std::unique_ptr<Services> services = Services::Start(builder, daemon);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on unix:", config.socket));
  }
  chmod(config.socket.c_str(), 0660);
  SetHealth(server.get(), false);  // NOT_SERVING until the monitor says so
  std::unique_ptr<grpc::Server> health_server;
  if (config.health_port > 0) {
    grpc::ServerBuilder hb;
    hb.AddListeningPort(HostPort(config.health_address, config.health_port),
                        grpc::InsecureServerCredentials());
    health_server = hb.BuildAndStart();
    if (!health_server) {
      return absl::UnavailableError(absl::StrCat(
          "--health-port: cannot listen on ",
          HostPort(config.health_address, config.health_port),
          " (port in use, or --health-address not an address of this host)"));
    }
  }
  daemon.logger().Log(absl::StrCat(
      "serving on unix:", config.socket,
      config.health_port > 0
          ? absl::StrCat(", health on ",
                         HostPort(config.health_address, config.health_port))
          : "",
      "; cache ", config.cache_dir, "; ", config.slots, " slot(s) x ",
      config.procs, " procs; ", daemon.gpus(), " GPU(s)"));
  absl::Notification stop;
  std::thread monitor([&] {
    std::optional<bool> last;
    // Until the first SERVING (workers starting), for at most 10 s: every
    // 50 ms, so that a rank waiting on health waits little past it.
    const absl::Time fast_until = absl::Now() + absl::Seconds(10);
    bool served = false;
    do {
      daemon.RefreshReadiness();  // the disk is read here, not in a reactor
      const bool serving = daemon.Serving();
      if (serving != last) {
        SetHealth(server.get(), serving);
        SetHealth(health_server.get(), serving);
        daemon.logger().Log(
            absl::StrCat("health ", serving ? "SERVING" : "NOT_SERVING"));
        last = serving;
      }
      served = served || serving;
    } while (!stop.WaitForNotificationWithTimeout(
        absl::Milliseconds(!served && absl::Now() < fast_until ? 50 : 500)));
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  daemon.logger().Log(absl::StrCat("signal ", sig, ", shutting down"));
  const absl::Duration grace = absl::Seconds(config.shutdown_grace_seconds);
  StartShutdownWatchdog(grace, config.socket, &daemon.logger());
  stop.Notify();
  monitor.join();
  SetHealth(server.get(), false);
  daemon.Stop();  // fails queued work, kills workers: jobs and calls end
  services->BeginShutdown();  // ranks waiting at the barrier are answered
  // Calls still open at half the grace are cancelled (OnCancel finishes them).
  const auto deadline =
      std::chrono::system_clock::now() + absl::ToChronoMilliseconds(grace / 2);
  server->Shutdown(deadline);
  if (health_server) health_server->Shutdown(deadline);
  services.reset();  // HTTP page, then the services (after the server)
  unlink(config.socket.c_str());
  return absl::OkStatus();
}

}  // namespace tpjit
