// The gRPC face of tpjitd: tpjit.v1.Tpjit on the callback API. Reactions
// never block: warm-ups are planned on the daemon's planning pool and
// generic compiles prepared on its preparation pool, fetched cubins read on
// its read pool (all bounded: RESOURCE_EXHAUSTED when full); Stats and
// Status read no file (readiness is probed by the monitor thread, see
// Daemon::RefreshReadiness). Progress is pushed by the job and written
// one message at a time, and every reactor deletes itself in OnDone. Each
// RPC checks its request's size against its own limit. Converts
// absl::Status to grpc::Status here only.
#ifndef TPJIT_DAEMON_SERVICE_H_
#define TPJIT_DAEMON_SERVICE_H_

#include "daemon/daemon.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit {

grpc::Status ToGrpc(const absl::Status& status);

class TpjitService final : public tpjit::v1::Tpjit::CallbackService {
 public:
  explicit TpjitService(Daemon* daemon) : daemon_(daemon) {}

  grpc::ServerWriteReactor<tpjit::v1::WarmupEvent>* Warmup(
      grpc::CallbackServerContext* context,
      const tpjit::v1::WarmupRequest* request) override;
  grpc::ServerUnaryReactor* Compile(
      grpc::CallbackServerContext* context,
      const tpjit::v1::CompileRequest* request,
      tpjit::v1::CompileResponse* response) override;
  grpc::ServerWriteReactor<tpjit::v1::FetchChunk>* Fetch(
      grpc::CallbackServerContext* context,
      const tpjit::v1::FetchRequest* request) override;
  grpc::ServerUnaryReactor* AwaitKeys(
      grpc::CallbackServerContext* context,
      const tpjit::v1::AwaitKeysRequest* request,
      tpjit::v1::AwaitKeysResponse* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* context,
                                  const tpjit::v1::StatsRequest* request,
                                  tpjit::v1::StatsResponse* response) override;
  grpc::ServerUnaryReactor* Status(
      grpc::CallbackServerContext* context,
      const tpjit::v1::StatusRequest* request,
      tpjit::v1::StatusResponse* response) override;

 private:
  Daemon* daemon_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_SERVICE_H_
