#include "daemon/services.h"

namespace tpjit {

ServiceHook ExtraServices() {
  return [](grpc::ServerBuilder& builder,
            Daemon& daemon) -> std::shared_ptr<void> {
    (void)builder;
    (void)daemon;
    return nullptr;
  };
}

}  // namespace tpjit
