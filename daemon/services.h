// Services: every gRPC service tpjitd hosts and the HTTP page, in one typed
// object (tpjit.v1.Tpjit, RecipeService, the barrier service, /metrics and
// the status page). RunServer (server.h) and the in-process test harness
// build the server with it. The daemon must outlive it.
//
// Shutdown runs in this order (RunServer does steps 1-4):
//   1. the health monitor stops and health says NOT_SERVING;
//   2. Daemon::Stop(): queued work fails, workers are killed, so every
//      warm-up and compile call gets its answer;
//   3. BeginShutdown(): ranks waiting at the barrier are answered
//      UNAVAILABLE at once (they would otherwise wait for step 4's deadline);
//   4. grpc::Server::Shutdown(deadline): calls still open at the deadline
//      are cancelled;
//   5. ~Services: the HTTP page stops (it reads the daemon), then the
//      services are freed (after the server, which calls into them).
// Thread-compatible: Start, BeginShutdown and the destructor come from one
// thread; the services themselves are thread-safe.
#ifndef TPJIT_DAEMON_SERVICES_H_
#define TPJIT_DAEMON_SERVICES_H_

#include <memory>

#include "daemon/barrier_service.h"
#include "daemon/daemon.h"
#include "daemon/http_server.h"
#include "daemon/recipe_service.h"
#include "daemon/service.h"
#include "grpcpp/server_builder.h"

namespace tpjit {

class Services {
 public:
  // Registers the gRPC services on `builder` (before BuildAndStart) and
  // starts the HTTP page when config.http_port is set; a port that cannot be
  // bound is logged and left off (gRPC serving goes on without it).
  static std::unique_ptr<Services> Start(grpc::ServerBuilder& builder,
                                         Daemon& daemon);
  ~Services();
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  // Step 3 above. Idempotent.
  void BeginShutdown();

  // The HTTP page, or nullptr when it is off.
  HttpServer* http() { return http_.get(); }

 private:
  explicit Services(Daemon& daemon);

  TpjitService tpjit_;
  RecipeServiceImpl recipes_;
  std::unique_ptr<BarrierServiceImpl> barrier_;
  std::unique_ptr<HttpServer> http_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SERVICES_H_
