#include "client/rpc/barrier_client.h"

#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "src/common/socket_path.h"

namespace tpjit {
namespace {

std::chrono::system_clock::time_point RpcDeadline(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

std::string UnixTarget(const std::string& path) {
  return absl::StartsWith(path, "unix:") ? path : absl::StrCat("unix:", path);
}

}  // namespace

std::string DefaultBarrierSocket(const EnvLookup& env) {
  return SocketPathFor(env("TPJIT_SOCKET").value_or(""),
                       env("XDG_RUNTIME_DIR").value_or(""));
}

std::shared_ptr<grpc::Channel> UnixSocketChannel(const std::string& path) {
  return grpc::CreateChannel(UnixTarget(path),
                             grpc::InsecureChannelCredentials());
}

absl::Status FromGrpcStatus(const grpc::Status& status,
                            const std::string& target) {
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return absl::UnavailableError(absl::StrCat(
        "tpjitd not reachable at ", target,
        " (is it running? --socket / TPJIT_SOCKET): ", status.error_message()));
  }
  return absl::Status(code, status.error_message());
}

DaemonBarrier::DaemonBarrier(
    std::shared_ptr<tpjit::v1::BarrierService::StubInterface> stub,
    DaemonBarrierOptions options)
    : stub_(std::move(stub)), options_(std::move(options)) {}

std::unique_ptr<DaemonBarrier> DaemonBarrier::Connect(
    const std::string& socket_path, DaemonBarrierOptions options) {
  options.target = UnixTarget(socket_path);
  return std::make_unique<DaemonBarrier>(
      tpjit::v1::BarrierService::NewStub(UnixSocketChannel(socket_path)),
      std::move(options));
}

absl::Status DaemonBarrier::Arrive(absl::Duration timeout) {
  tpjit::v1::BarrierRequest request;
  request.set_group(options_.group);
  request.set_rank(options_.rank);
  request.set_world(options_.world);
  if (options_.epoch.has_value()) request.set_epoch(*options_.epoch);
  request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  grpc::ClientContext context;
  context.set_deadline(RpcDeadline(timeout + options_.rpc_margin));
  tpjit::v1::BarrierReply reply;
  const grpc::Status status = stub_->Barrier(&context, request, &reply);
  if (status.ok() ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    last_epoch_ = reply.epoch();
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED &&
      !absl::StrContains(status.error_message(), "barrier group")) {
    return absl::DeadlineExceededError(
        absl::StrCat("barrier group '", options_.group, "': ", options_.target,
                     " did not answer within the timeout + margin (",
                     absl::FormatDuration(timeout + options_.rpc_margin),
                     "); late ranks unknown"));
  }
  return FromGrpcStatus(status, options_.target);
}

RendezvousClient::RendezvousClient(
    std::shared_ptr<tpjit::v1::BarrierService::StubInterface> stub,
    std::string target, absl::Duration rpc_margin)
    : stub_(std::move(stub)),
      target_(std::move(target)),
      rpc_margin_(rpc_margin) {}

std::unique_ptr<RendezvousClient> RendezvousClient::Connect(
    const std::string& socket_path) {
  return std::make_unique<RendezvousClient>(
      tpjit::v1::BarrierService::NewStub(UnixSocketChannel(socket_path)),
      UnixTarget(socket_path));
}

absl::StatusOr<RendezvousReply> RendezvousClient::Call(
    const tpjit::v1::RendezvousRequest& request, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(RpcDeadline(timeout + rpc_margin_));
  tpjit::v1::RendezvousReply reply;
  const grpc::Status status = stub_->Rendezvous(&context, request, &reply);
  if (!status.ok()) return FromGrpcStatus(status, target_);
  RendezvousReply out;
  out.value = reply.value();
  for (const auto& a : reply.arrivals()) {
    out.arrivals.push_back({a.rank(), absl::Milliseconds(a.age_ms())});
  }
  return out;
}

absl::StatusOr<RendezvousReply> RendezvousClient::Exchange(
    const std::string& group, uint64_t epoch, int rank, int world,
    const std::string& value, absl::Duration timeout) {
  tpjit::v1::RendezvousRequest request;
  request.set_group(group);
  request.set_epoch(epoch);
  request.set_rank(rank);
  request.set_world(world);
  request.set_value(value);
  request.set_timeout_ms(absl::ToInt64Milliseconds(timeout));
  return Call(request, timeout);
}

absl::StatusOr<RendezvousReply> RendezvousClient::Peek(const std::string& group,
                                                       uint64_t epoch, int rank,
                                                       int world,
                                                       absl::Duration timeout) {
  tpjit::v1::RendezvousRequest request;
  request.set_group(group);
  request.set_epoch(epoch);
  request.set_rank(rank);
  request.set_world(world);
  request.set_peek(true);
  return Call(request, timeout);
}

}  // namespace tpjit
