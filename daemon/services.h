// The services tpjitd hosts beside tpjit.v1.Tpjit: the barrier service and
// the HTTP metrics and status page.
#ifndef TPJIT_DAEMON_SERVICES_H_
#define TPJIT_DAEMON_SERVICES_H_

#include "daemon/server.h"

namespace tpjit {

ServiceHook ExtraServices();

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SERVICES_H_
