#include "daemon/services.h"

#include <iostream>
#include <vector>

#include "daemon/barrier_service.h"
#include "daemon/http_server.h"

namespace tpjit {
namespace {

// The HTTP port (/metrics, status page) when --http-port is set. A port that
// cannot be bound is logged and left off: gRPC serving goes on without it.
std::shared_ptr<void> StartHttp(Daemon& daemon) {
  const DaemonConfig& c = daemon.config();
  if (c.http_port <= 0) return nullptr;
  auto http = HttpServer::Start(daemon, c.http_address, c.http_port);
  if (!http.ok()) {
    std::cerr << "tpjitd: " << http.status().message() << "\n";
    return nullptr;
  }
  std::cerr << "tpjitd: metrics and status page on http://" << c.http_address
            << ":" << (*http)->port() << "/\n";
  return std::shared_ptr<HttpServer>(std::move(*http));
}

// The daemon barrier and the NCCL id rendezvous; a late rank is reported
// with its last known warm-up progress.
std::shared_ptr<void> AddBarrier(grpc::ServerBuilder& builder, Daemon& daemon) {
  BarrierServiceImpl::Options options;
  options.progress = [&daemon](const std::string& group, int rank) {
    return daemon.RankProgress(group, rank);
  };
  options.on_barrier_answer = [&daemon](const absl::Status& s) {
    daemon.counters().barrier_waits.fetch_add(1);
    if (absl::IsDeadlineExceeded(s)) {
      daemon.counters().barrier_timeouts.fetch_add(1);
    }
  };
  const DaemonConfig& c = daemon.config();
  options.max_timeout = absl::Seconds(c.max_client_timeout_seconds);
  options.arrivals.max_groups = c.max_barrier_groups;
  options.rendezvous.max_entries = c.max_barrier_groups;
  auto service = std::make_shared<BarrierServiceImpl>(options);
  builder.RegisterService(service.get());
  return service;
}

}  // namespace

ServiceHook ExtraServices() {
  return [](grpc::ServerBuilder& builder,
            Daemon& daemon) -> std::shared_ptr<void> {
    auto keep = std::make_shared<std::vector<std::shared_ptr<void>>>();
    keep->push_back(AddBarrier(builder, daemon));
    keep->push_back(StartHttp(daemon));
    return keep;
  };
}

}  // namespace tpjit
