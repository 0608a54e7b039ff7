// RunServer: serves a Daemon over gRPC until SIGTERM/SIGINT, then shuts down
// within a deadline. Kept apart from main() so tests can start a server.
#ifndef TPJIT_DAEMON_SERVER_H_
#define TPJIT_DAEMON_SERVER_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "daemon/daemon.h"
#include "grpcpp/server_builder.h"

namespace tpjit {

// Extra services (barrier, metrics) register themselves through this hook.
// It returns an object that keeps its services alive until shutdown.
using ServiceHook =
    std::function<std::shared_ptr<void>(grpc::ServerBuilder&, Daemon&)>;

// Blocks until a termination signal, then shuts down: the daemon stops
// (queued work fails, workers are killed), open calls are cancelled at half
// of config.shutdown_grace_seconds, and a watchdog ends the process at the
// full grace, whatever still runs. REQUIRES: SIGTERM/SIGINT blocked in
// every thread (BlockTerminationSignals() before any thread starts); the
// socket claimed (socket_claim.h).
absl::Status RunServer(Daemon& daemon, const ServiceHook& hook);

void BlockTerminationSignals();

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SERVER_H_
