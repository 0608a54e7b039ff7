// BarrierServiceImpl: tpjit.v1.BarrierService over gRPC's callback API. The
// Barrier RPC records the rank in an ArrivalTable, the Rendezvous RPC in a
// RendezvousTable; each call is answered when its table calls back (the last
// rank arrived, rank 0 published, or a deadline passed). Reactions never
// block: deadlines are served by one timer thread owned by the service.
// A client that goes away is withdrawn (it no longer counts as arrived).
//
// Register it with a grpc::ServerBuilder before BuildAndStart():
//   auto barrier = std::make_unique<BarrierServiceImpl>(
//       BarrierServiceImpl::Options{.progress = hook});
//   builder.RegisterService(barrier.get());
// On shutdown call barrier->Shutdown() (answers waiting ranks UNAVAILABLE),
// then server->Shutdown(), then destroy the service. Thread-safe.
#ifndef TPJIT_DAEMON_BARRIER_SERVICE_H_
#define TPJIT_DAEMON_BARRIER_SERVICE_H_

#include <functional>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "src/barrier/arrival_table.h"
#include "src/barrier/rendezvous_table.h"
#include "src/common/clock.h"
#include "tpjit/v1/barrier.grpc.pb.h"

namespace tpjit {

class BarrierServiceImpl final
    : public tpjit::v1::BarrierService::CallbackService {
 public:
  struct Options {
    // Real time only: the timer thread sleeps on a condition variable.
    Clock* clock = Clock::Real();
    // The daemon's "what is rank R of group G doing" hook; may be empty.
    ArrivalTable::ProgressLookup progress;
    // Called once per answered Barrier call (e.g. to count waits and
    // time-outs); may be empty. Must not block.
    std::function<void(const absl::Status&)> on_barrier_answer;
    ArrivalTable::Options arrivals;
    RendezvousTable::Options rendezvous;
    // The server's ceiling on a client's timeout_ms: larger values are
    // clamped to it; negative ones are INVALID_ARGUMENT.
    absl::Duration max_timeout = absl::Hours(1);
    // Largest serialized Barrier/Rendezvous request accepted (the fields'
    // own limits keep a valid one far below it).
    size_t max_request_bytes = 16 << 10;
  };

  explicit BarrierServiceImpl(Options options);
  ~BarrierServiceImpl() override;
  BarrierServiceImpl(const BarrierServiceImpl&) = delete;
  BarrierServiceImpl& operator=(const BarrierServiceImpl&) = delete;

  grpc::ServerUnaryReactor* Barrier(grpc::CallbackServerContext* context,
                                    const tpjit::v1::BarrierRequest* request,
                                    tpjit::v1::BarrierReply* reply) override;
  grpc::ServerUnaryReactor* Rendezvous(
      grpc::CallbackServerContext* context,
      const tpjit::v1::RendezvousRequest* request,
      tpjit::v1::RendezvousReply* reply) override;

  // Answers every waiting call UNAVAILABLE and stops the timer thread.
  // Idempotent; also called by the destructor.
  void Shutdown();

  ArrivalTable& arrivals() { return arrivals_; }
  RendezvousTable& rendezvous() { return rendezvous_; }

 private:
  class Reactor;
  void TimerLoop();
  void Wake();
  bool stopped();

  // INVALID_ARGUMENT for an oversized request or a negative timeout;
  // otherwise the timeout clamped to max_timeout_.
  absl::StatusOr<absl::Duration> Admit(absl::string_view rpc,
                                       const google::protobuf::Message& request,
                                       int64_t timeout_ms) const;

  Clock* const clock_;
  const std::function<void(const absl::Status&)> on_barrier_answer_;
  const absl::Duration max_timeout_;
  const size_t max_request_bytes_;
  ArrivalTable arrivals_;
  RendezvousTable rendezvous_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int wakeups_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread timer_;
};

// grpc::Status for an absl::Status (same code and message).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace tpjit

#endif  // TPJIT_DAEMON_BARRIER_SERVICE_H_
