// A gRPC server hosting only BarrierService on a Unix socket, for tests and
// for tpjit_barrier_testd (until tpjitd registers the service itself).
#ifndef TPJIT_TESTS_BARRIER_TEST_SERVER_H_
#define TPJIT_TESTS_BARRIER_TEST_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/barrier_service.h"
#include "grpcpp/grpcpp.h"

namespace tpjit {

class BarrierTestServer {
 public:
  static absl::StatusOr<std::unique_ptr<BarrierTestServer>> Start(
      const std::string& socket_path, BarrierServiceImpl::Options options = {});
  ~BarrierTestServer();  // Shutdown()
  // Answers waiting calls UNAVAILABLE, stops the server. Idempotent.
  void Shutdown();
  BarrierServiceImpl& service() { return *service_; }

 private:
  std::unique_ptr<BarrierServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tpjit

#endif  // TPJIT_TESTS_BARRIER_TEST_SERVER_H_
