#include "src/common/socket_path.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace tpjit {

std::string SocketPathFor(const std::string& tpjit_socket,
                          const std::string& xdg_runtime_dir) {
  if (!tpjit_socket.empty()) return tpjit_socket;
  if (!xdg_runtime_dir.empty()) {
    return absl::StrCat(xdg_runtime_dir, "/tpjit/tpjitd.sock");
  }
  return "/run/tpjit/tpjitd.sock";
}

std::string DefaultSocketPath() {
  const char* s = std::getenv("TPJIT_SOCKET");
  const char* d = std::getenv("XDG_RUNTIME_DIR");
  return SocketPathFor(s == nullptr ? "" : s, d == nullptr ? "" : d);
}

}  // namespace tpjit
