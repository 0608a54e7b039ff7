// tpjit_barrier_testd --socket PATH: serves BarrierService alone until
// SIGTERM/SIGINT. Prints "ready" on stdout once it accepts calls.
#include <signal.h>

#include <cstring>
#include <iostream>
#include <string>

#include "tests/barrier/test_server.h"

int main(int argc, char** argv) {
  std::string socket;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--socket") == 0) socket = argv[i + 1];
  }
  if (socket.empty()) {
    std::cerr << "usage: tpjit_barrier_testd --socket PATH\n";
    return 2;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // before any thread starts
  auto server = tpjit::BarrierTestServer::Start(socket);
  if (!server.ok()) {
    std::cerr << server.status() << "\n";
    return 1;
  }
  std::cout << "ready" << std::endl;
  int signal = 0;
  sigwait(&signals, &signal);
  (*server)->Shutdown();
  return 0;
}
