// tpjitd: the per-node compile daemon. See daemon/daemon.h.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/server.h"
#include "daemon/socket_claim.h"

int main(int argc, char** argv) {
  tpjit::BlockTerminationSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  std::error_code ec;
  std::string exe_dir =
      std::filesystem::read_symlink("/proc/self/exe", ec).parent_path();
  auto config = tpjit::ParseDaemonConfig(args, exe_dir);
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kCancelled) {
      std::cout << config.status().message();
      return 0;
    }
    std::cerr << "tpjitd: " << config.status().message() << "\n";
    return 2;
  }
  // Before anything starts: a second daemon on a live socket stops here.
  auto claim = tpjit::SocketClaim::Take(config->socket);
  if (!claim.ok()) {
    std::cerr << "tpjitd: " << claim.status().message() << "\n";
    return 1;
  }
  auto daemon = tpjit::Daemon::Create(*config, tpjit::DaemonDeps{});
  if (!daemon.ok()) {
    std::cerr << "tpjitd: " << daemon.status() << "\n";
    return 1;
  }
  if (absl::Status s = (*daemon)->Start(); !s.ok()) {
    std::cerr << "tpjitd: cannot start: " << s << "\n";
    return 1;
  }
  absl::Status s = tpjit::RunServer(**daemon);
  if (!s.ok()) {
    std::cerr << "tpjitd: " << s << "\n";
    return 1;
  }
  return 0;
}
