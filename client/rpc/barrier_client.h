// The client side of tpjit.v1.BarrierService:
//  - DaemonBarrier: the daemon transport of Barrier (ranks of one node meet
//    in tpjitd, which names late ranks on time-out);
//  - RendezvousClient: the Rendezvous that hands NcclBarrier's ncclUniqueId
//    from rank 0 to the others.
// Both depend on the generated StubInterface, so tests can swap in a mock.
// Every RPC carries a gRPC deadline of the barrier timeout plus a margin, and
// does not wait for a missing daemon: it fails fast with UNAVAILABLE naming
// the socket. Thread-safe (DaemonBarrier: one Arrive at a time).
#ifndef TPJIT_CLIENT_RPC_BARRIER_CLIENT_H_
#define TPJIT_CLIENT_RPC_BARRIER_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "src/barrier/barrier.h"
#include "src/barrier/rendezvous.h"
#include "tpjit/v1/barrier.grpc.pb.h"

namespace tpjit {

// $TPJIT_SOCKET, else $XDG_RUNTIME_DIR/tpjit/tpjitd.sock, else
// /run/tpjit/tpjitd.sock (the same default as tpjitd).
std::string DefaultBarrierSocket(const EnvLookup& env);

// A channel to tpjitd's Unix socket; `path` may carry the "unix:" prefix.
std::shared_ptr<grpc::Channel> UnixSocketChannel(const std::string& path);

// absl::Status for a grpc::Status; UNAVAILABLE gets a hint naming `target`.
absl::Status FromGrpcStatus(const grpc::Status& status,
                            const std::string& target);

struct DaemonBarrierOptions {
  std::string group;
  int rank = 0;
  int world = 1;
  // std::nullopt: the daemon numbers this rank's calls in the group.
  std::optional<uint64_t> epoch;
  // Added to the timeout for the RPC's own deadline; the daemon answers at
  // the timeout, this only bounds a daemon that stopped answering.
  absl::Duration rpc_margin = absl::Seconds(1);
  std::string target = "tpjitd";  // for error messages (e.g. the socket)
};

class DaemonBarrier final : public Barrier {
 public:
  DaemonBarrier(std::shared_ptr<tpjit::v1::BarrierService::StubInterface> stub,
                DaemonBarrierOptions options);
  // A barrier on tpjitd's Unix socket at `socket_path`.
  static std::unique_ptr<DaemonBarrier> Connect(const std::string& socket_path,
                                                DaemonBarrierOptions options);

  absl::Status Arrive(absl::Duration timeout) override;
  // The epoch the last successful or timed-out Arrive was counted in.
  uint64_t last_epoch() const { return last_epoch_; }

 private:
  std::shared_ptr<tpjit::v1::BarrierService::StubInterface> stub_;
  DaemonBarrierOptions options_;
  uint64_t last_epoch_ = 0;
};

class RendezvousClient final : public Rendezvous {
 public:
  RendezvousClient(
      std::shared_ptr<tpjit::v1::BarrierService::StubInterface> stub,
      std::string target, absl::Duration rpc_margin = absl::Seconds(1));
  static std::unique_ptr<RendezvousClient> Connect(
      const std::string& socket_path);

  absl::StatusOr<RendezvousReply> Exchange(const std::string& group,
                                           uint64_t epoch, int rank, int world,
                                           const std::string& value,
                                           absl::Duration timeout) override;
  absl::StatusOr<RendezvousReply> Peek(const std::string& group, uint64_t epoch,
                                       int rank, int world,
                                       absl::Duration timeout) override;

 private:
  absl::StatusOr<RendezvousReply> Call(
      const tpjit::v1::RendezvousRequest& request, absl::Duration timeout);

  std::shared_ptr<tpjit::v1::BarrierService::StubInterface> stub_;
  const std::string target_;
  const absl::Duration rpc_margin_;
};

}  // namespace tpjit

#endif  // TPJIT_CLIENT_RPC_BARRIER_CLIENT_H_
