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

// Serves every service of services.h until a termination signal, then
// shuts down in the order services.h documents: the daemon stops (queued
// work fails, workers are killed), barrier waiters are answered, open calls
// are cancelled at half of config.shutdown_grace_seconds, and a watchdog
// ends the process at the full grace, whatever still runs. A monitor thread
// refreshes the daemon's readiness (Daemon::RefreshReadiness, which reads
// the disk) every 500 ms and sets the health services from it. REQUIRES:
// SIGTERM/SIGINT blocked in every thread (BlockTerminationSignals() before any
// thread starts); the socket claimed (socket_claim.h).
absl::Status RunServer(Daemon& daemon);

void BlockTerminationSignals();

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SERVER_H_
