#include "daemon/server.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <iostream>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "daemon/service.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server.h"

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

absl::Status PrepareSocket(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(),
                                      ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--socket: cannot create the folder of ", path, ": ", ec.message()));
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::FailedPreconditionError(
        absl::StrCat("--socket: cannot remove stale ", path));
  }
  return absl::OkStatus();
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

absl::Status RunServer(Daemon& daemon, const ServiceHook& hook) {
  const DaemonConfig& config = daemon.config();
  if (absl::Status s = PrepareSocket(config.socket); !s.ok()) return s;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  TpjitService service(&daemon);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + config.socket,
                           grpc::InsecureServerCredentials());
  builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  builder.RegisterService(&service);
  std::shared_ptr<void> extra = hook ? hook(builder, daemon) : nullptr;
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
    hb.AddListeningPort(absl::StrCat("0.0.0.0:", config.health_port),
                        grpc::InsecureServerCredentials());
    health_server = hb.BuildAndStart();
    if (!health_server) {
      return absl::UnavailableError(absl::StrCat(
          "--health-port: cannot listen on port ", config.health_port));
    }
  }
  std::cerr << "tpjitd: serving on unix:" << config.socket
            << (config.health_port > 0
                    ? absl::StrCat(", health on :", config.health_port)
                    : "")
            << "; cache " << config.cache_dir << "; " << config.slots
            << " slot(s) x " << config.procs << " procs; " << daemon.gpus()
            << " GPU(s)\n";
  absl::Notification stop;
  std::thread monitor([&] {
    std::optional<bool> last;
    do {
      const bool serving = daemon.Serving();
      if (serving != last) {
        SetHealth(server.get(), serving);
        SetHealth(health_server.get(), serving);
        std::cerr << "tpjitd: health " << (serving ? "SERVING" : "NOT_SERVING")
                  << "\n";
        last = serving;
      }
    } while (!stop.WaitForNotificationWithTimeout(absl::Milliseconds(500)));
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  std::cerr << "tpjitd: signal " << sig << ", shutting down\n";
  stop.Notify();
  monitor.join();
  SetHealth(server.get(), false);
  daemon.Stop();
  const auto deadline =
      std::chrono::system_clock::now() + std::chrono::seconds(5);
  server->Shutdown(deadline);
  if (health_server) health_server->Shutdown(deadline);
  unlink(config.socket.c_str());
  return absl::OkStatus();
}

}  // namespace tpjit
