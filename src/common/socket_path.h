// Where tpjitd listens by default; one definition for the daemon, the client
// library, the CLI and tpjit-nvcc. Thread-safe (reads the environment).
#ifndef TPJIT_SRC_COMMON_SOCKET_PATH_H_
#define TPJIT_SRC_COMMON_SOCKET_PATH_H_

#include <string>

namespace tpjit {

// $TPJIT_SOCKET, else $XDG_RUNTIME_DIR/tpjit/tpjitd.sock, else
// /run/tpjit/tpjitd.sock. (tpjitd's --socket table entry reads $TPJIT_SOCKET
// too, so daemon and clients agree.) Also declared in the public
// client/include/tpjit/client.h.
std::string DefaultSocketPath();

// The same rule on given values ("" = unset), for callers that read the
// environment through a seam.
std::string SocketPathFor(const std::string& tpjit_socket,
                          const std::string& xdg_runtime_dir);

}  // namespace tpjit

#endif  // TPJIT_SRC_COMMON_SOCKET_PATH_H_
