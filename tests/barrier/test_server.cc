#include "tests/barrier/test_server.h"

#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"

namespace tpjit {

absl::StatusOr<std::unique_ptr<BarrierTestServer>> BarrierTestServer::Start(
    const std::string& socket_path, BarrierServiceImpl::Options options) {
  ::unlink(socket_path.c_str());
  auto server = std::unique_ptr<BarrierTestServer>(new BarrierTestServer());
  server->service_ = std::make_unique<BarrierServiceImpl>(std::move(options));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", socket_path),
                           grpc::InsecureServerCredentials());
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve on unix:", socket_path));
  }
  return server;
}

void BarrierTestServer::Shutdown() {
  if (server_ == nullptr) return;
  service_->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

BarrierTestServer::~BarrierTestServer() { Shutdown(); }

}  // namespace tpjit
