#include "daemon/barrier_service.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/request_limits.h"

namespace tpjit {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

// One pending call. Finished exactly once: by its table's callback, or with
// CANCELLED when the client goes away and the table gives the call back.
// Deletes itself in OnDone.
class BarrierServiceImpl::Reactor final : public grpc::ServerUnaryReactor {
 public:
  // `withdraw` takes the call back from its table; true if it will not call.
  void Arm(std::function<bool()> withdraw) {
    absl::MutexLock lock(&mu_);
    withdraw_ = std::move(withdraw);
  }
  // Finish is called without the lock: gRPC may run OnDone (which deletes
  // this reactor) before Finish returns.
  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_) return;
      finished_ = true;
    }
    Finish(status);
  }
  void OnCancel() override {
    std::function<bool()> withdraw;
    {
      absl::MutexLock lock(&mu_);
      withdraw = withdraw_;
    }
    if (withdraw && withdraw()) {
      FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED,
                              "barrier: the client went away"));
    }
  }
  void OnDone() override { delete this; }

 private:
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  std::function<bool()> withdraw_ ABSL_GUARDED_BY(mu_);
};

BarrierServiceImpl::BarrierServiceImpl(Options options)
    : clock_(options.clock),
      on_barrier_answer_(std::move(options.on_barrier_answer)),
      max_timeout_(options.max_timeout),
      max_request_bytes_(options.max_request_bytes),
      arrivals_(options.clock, std::move(options.progress), options.arrivals),
      rendezvous_(options.clock, options.rendezvous),
      timer_([this] { TimerLoop(); }) {}

BarrierServiceImpl::~BarrierServiceImpl() { Shutdown(); }

void BarrierServiceImpl::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (stop_) return;
    stop_ = true;
  }
  timer_.join();
  const absl::Status down =
      absl::UnavailableError("barrier: tpjitd is shutting down");
  arrivals_.FailAll(down);
  rendezvous_.FailAll(down);
}

bool BarrierServiceImpl::stopped() {
  absl::MutexLock lock(&mu_);
  return stop_;
}

void BarrierServiceImpl::Wake() {
  absl::MutexLock lock(&mu_);
  ++wakeups_;
}

void BarrierServiceImpl::TimerLoop() {
  while (true) {
    std::optional<absl::Time> next = arrivals_.NextDeadline();
    if (auto r = rendezvous_.NextDeadline(); r && (!next || *r < *next)) {
      next = r;
    }
    // Sleep until the next deadline, a new call (which may bring an earlier
    // one), or shutdown; wake at least once a minute to collect garbage.
    absl::Duration wait = absl::Minutes(1);
    if (next) wait = std::min(wait, *next - clock_->MonotonicNow());
    {
      absl::MutexLock lock(&mu_);
      const int seen = wakeups_;
      auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || wakeups_ != seen;
      };
      if (wait > absl::ZeroDuration()) {
        mu_.AwaitWithTimeout(absl::Condition(&woken), wait);
      }
      if (stop_) return;
    }
    arrivals_.ExpireDue();
    rendezvous_.ExpireDue();
  }
}

absl::StatusOr<absl::Duration> BarrierServiceImpl::Admit(
    absl::string_view rpc, const google::protobuf::Message& request,
    int64_t timeout_ms) const {
  absl::Status s =
      CheckRequestBytes(rpc, request.ByteSizeLong(), max_request_bytes_);
  if (!s.ok()) return s;
  absl::StatusOr<absl::Duration> timeout =
      ClampTimeoutMs("timeout_ms", timeout_ms, max_timeout_);
  if (!timeout.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(rpc, ": ", timeout.status().message()));
  }
  return timeout;
}

grpc::ServerUnaryReactor* BarrierServiceImpl::Barrier(
    grpc::CallbackServerContext* context,
    const tpjit::v1::BarrierRequest* request, tpjit::v1::BarrierReply* reply) {
  (void)context;
  auto* reactor = new Reactor();
  if (stopped()) {
    reactor->FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "barrier: tpjitd is shutting down"));
    return reactor;
  }
  absl::StatusOr<absl::Duration> timeout =
      Admit("barrier", *request, request->timeout_ms());
  if (!timeout.ok()) {
    reactor->FinishOnce(ToGrpcStatus(timeout.status()));
    return reactor;
  }
  ArrivalTable::Arrival arrival;
  arrival.group = request->group();
  arrival.rank = request->rank();
  arrival.world = request->world();
  if (request->has_epoch()) arrival.epoch = request->epoch();
  arrival.timeout = *timeout;
  const ArrivalTable::Ticket ticket = arrivals_.Arrive(
      arrival, [this, reactor, reply](const ArrivalTable::Outcome& outcome) {
        if (on_barrier_answer_) on_barrier_answer_(outcome.status);
        reply->set_epoch(outcome.epoch);
        reply->set_waited_ms(absl::ToInt64Milliseconds(outcome.waited));
        reactor->FinishOnce(ToGrpcStatus(outcome.status));
      });
  reactor->Arm([this, ticket] { return arrivals_.Withdraw(ticket); });
  Wake();
  return reactor;
}

grpc::ServerUnaryReactor* BarrierServiceImpl::Rendezvous(
    grpc::CallbackServerContext* context,
    const tpjit::v1::RendezvousRequest* request,
    tpjit::v1::RendezvousReply* reply) {
  (void)context;
  auto* reactor = new Reactor();
  if (stopped()) {
    reactor->FinishOnce(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                     "rendezvous: tpjitd is shutting down"));
    return reactor;
  }
  absl::StatusOr<absl::Duration> timeout =
      Admit("rendezvous", *request, request->timeout_ms());
  if (!timeout.ok()) {
    reactor->FinishOnce(ToGrpcStatus(timeout.status()));
    return reactor;
  }
  RendezvousTable::Request r;
  r.group = request->group();
  r.epoch = request->epoch();
  r.rank = request->rank();
  r.world = request->world();
  r.value = request->value();
  r.timeout = *timeout;
  r.peek = request->peek();
  const RendezvousTable::Ticket ticket = rendezvous_.Exchange(
      r, [reactor, reply](const RendezvousTable::Outcome& outcome) {
        reply->set_value(outcome.reply.value);
        for (const RendezvousArrival& a : outcome.reply.arrivals) {
          auto* arrival = reply->add_arrivals();
          arrival->set_rank(a.rank);
          arrival->set_age_ms(absl::ToInt64Milliseconds(a.age));
        }
        reactor->FinishOnce(ToGrpcStatus(outcome.status));
      });
  reactor->Arm([this, ticket] { return rendezvous_.Withdraw(ticket); });
  Wake();
  return reactor;
}

}  // namespace tpjit
