#include "daemon/services.h"

#include "absl/strings/str_cat.h"

namespace tpjit {
namespace {

// The daemon barrier and the NCCL id rendezvous; a late rank is reported
// with its last known warm-up progress.
std::unique_ptr<BarrierServiceImpl> NewBarrier(Daemon& daemon) {
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
  return std::make_unique<BarrierServiceImpl>(options);
}

}  // namespace

Services::Services(Daemon& daemon)
    : tpjit_(&daemon), recipes_(&daemon), barrier_(NewBarrier(daemon)) {}

std::unique_ptr<Services> Services::Start(grpc::ServerBuilder& builder,
                                          Daemon& daemon) {
  std::unique_ptr<Services> s(new Services(daemon));
  builder.RegisterService(&s->tpjit_);
  builder.RegisterService(&s->recipes_);
  builder.RegisterService(s->barrier_.get());
  const DaemonConfig& c = daemon.config();
  if (c.http_port > 0) {
    auto http = HttpServer::Start(daemon, c.http_address, c.http_port);
    if (http.ok()) {
      s->http_ = std::move(*http);
      daemon.logger().Log(absl::StrCat("metrics and status page on http://",
                                       c.http_address, ":", s->http_->port(),
                                       "/"));
    } else {
      daemon.logger().Log(http.status().message());
    }
  }
  return s;
}

void Services::BeginShutdown() { barrier_->Shutdown(); }

Services::~Services() {
  http_.reset();  // stops serving pages before anything it reads goes
  barrier_->Shutdown();
}

}  // namespace tpjit
