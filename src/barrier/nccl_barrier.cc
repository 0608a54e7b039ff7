#include "src/barrier/nccl_barrier.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/common/status_macros.h"

namespace tpjit {
namespace {

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

}  // namespace

// Owns one NCCL communicator: aborted on destruction unless finalized.
class NcclBarrier::Communicator {
 public:
  Communicator(NcclApi* nccl, Clock* clock) : nccl_(nccl), clock_(clock) {}
  ~Communicator() { Abort(); }
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  ncclComm_t* out() { return &comm_; }
  ncclComm_t get() const { return comm_; }

  // ncclCommAbort; returns how long it took. Harmless when already gone.
  absl::Duration Abort() {
    if (comm_ == nullptr) return absl::ZeroDuration();
    const absl::Time start = clock_->MonotonicNow();
    nccl_->CommAbort(comm_);
    comm_ = nullptr;
    return clock_->MonotonicNow() - start;
  }

  // ncclCommFinalize, polled until done or `deadline`, then ncclCommDestroy.
  // On failure the communicator is left for Abort().
  bool Finalize(absl::Duration poll, absl::Time deadline) {
    ncclResult_t r = nccl_->CommFinalize(comm_);
    while (r == ncclSuccess || r == ncclInProgress) {
      ncclResult_t async = ncclSuccess;
      if (nccl_->CommGetAsyncError(comm_, &async) != ncclSuccess) return false;
      if (async == ncclSuccess) break;
      if (async != ncclInProgress) return false;
      if (clock_->MonotonicNow() >= deadline) return false;
      clock_->SleepFor(poll);
    }
    if (r != ncclSuccess && r != ncclInProgress) return false;
    if (nccl_->CommDestroy(comm_) != ncclSuccess) return false;
    comm_ = nullptr;
    return true;
  }

 private:
  NcclApi* const nccl_;
  Clock* const clock_;
  ncclComm_t comm_ = nullptr;
};

NcclBarrier::NcclBarrier(NcclApi* nccl, CudaRuntime* cuda,
                         Rendezvous* rendezvous, Clock* clock,
                         NcclBarrierOptions options)
    : nccl_(nccl),
      cuda_(cuda),
      rendezvous_(rendezvous),
      clock_(clock),
      options_(std::move(options)),
      epoch_(options_.first_epoch) {}

NcclBarrier::~NcclBarrier() {
  if (kept_ != nullptr) {
    kept_->Finalize(options_.poll_interval,
                    clock_->MonotonicNow() + options_.teardown_timeout);
    kept_.reset();  // aborts when finalize did not finish
  }
  if (buffer_ != nullptr) cuda_->Free(buffer_);
  if (stream_ != nullptr) cuda_->StreamDestroy(stream_);
}

std::string NcclBarrier::Where(uint64_t epoch) const {
  return absl::StrCat("nccl barrier group '", options_.group, "' epoch ", epoch,
                      " (rank ", options_.rank, " of ", options_.world, ")");
}

absl::Status NcclBarrier::NcclError(const char* call, ncclResult_t result) {
  return absl::InternalError(absl::StrCat(call, " failed in ", timings_.phase,
                                          ": ", nccl_->ErrorString(result)));
}

absl::Status NcclBarrier::CudaError(const char* call, cudaError_t error) {
  return absl::InternalError(absl::StrCat(call, " failed in ", timings_.phase,
                                          ": ", cuda_->ErrorString(error)));
}

absl::Status NcclBarrier::Arrive(absl::Duration timeout) {
  const absl::Time start = clock_->MonotonicNow();
  const uint64_t epoch = epoch_++;
  timings_ = NcclBarrierTimings();
  timed_out_waiting_ = false;
  absl::Status status;
  {
    std::unique_ptr<Communicator> comm = std::move(kept_);
    const bool reused = comm != nullptr;
    if (!reused) comm = std::make_unique<Communicator>(nccl_, clock_);
    timings_.reused = reused;
    status = Run(epoch, timeout, start + timeout, *comm, reused);
    if (!status.ok() && comm->get() != nullptr) {
      timings_.abort = comm->Abort();
      timings_.aborted = true;
    } else if (status.ok() && options_.keep_communicator &&
               comm->get() != nullptr) {
      kept_ = std::move(comm);
    }
  }
  if (timed_out_waiting_) {
    status = NameLate(epoch, timeout, status);
  } else if (!status.ok() && !absl::IsDeadlineExceeded(status)) {
    status = absl::Status(status.code(),
                          absl::StrCat(Where(epoch), ": ", status.message()));
  }
  timings_.total = clock_->MonotonicNow() - start;
  return status;
}

absl::Status NcclBarrier::Run(uint64_t epoch, absl::Duration timeout,
                              absl::Time deadline, Communicator& comm,
                              bool reused) {
  absl::Time t = clock_->MonotonicNow();
  timings_.phase = "device setup";
  TPJIT_RETURN_IF_ERROR(PrepareDevice());
  timings_.phase = "rendezvous";
  TPJIT_ASSIGN_OR_RETURN(ncclUniqueId id,
                         ExchangeId(epoch, timeout, deadline, !reused));
  timings_.rendezvous = clock_->MonotonicNow() - t;
  if (reused) {
    t = clock_->MonotonicNow();
    TPJIT_RETURN_IF_ERROR(AllReduce(comm, deadline));
    timings_.all_reduce = clock_->MonotonicNow() - t;
    return absl::OkStatus();
  }

  t = clock_->MonotonicNow();
  timings_.phase = "communicator init";
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  const ncclResult_t r = nccl_->CommInitRankConfig(comm.out(), options_.world,
                                                   id, options_.rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    return NcclError("ncclCommInitRankConfig", r);
  }
  TPJIT_RETURN_IF_ERROR(WaitComm(comm.get(), deadline));
  timings_.init = clock_->MonotonicNow() - t;

  t = clock_->MonotonicNow();
  TPJIT_RETURN_IF_ERROR(AllReduce(comm, deadline));
  timings_.all_reduce = clock_->MonotonicNow() - t;

  if (options_.keep_communicator) return absl::OkStatus();
  t = clock_->MonotonicNow();
  timings_.phase = "teardown";
  if (!comm.Finalize(options_.poll_interval, t + options_.teardown_timeout)) {
    timings_.abort = comm.Abort();  // the barrier itself succeeded
    timings_.aborted = true;
  }
  timings_.teardown = clock_->MonotonicNow() - t;
  return absl::OkStatus();
}

absl::Status NcclBarrier::PrepareDevice() {
  cudaError_t e = cuda_->SetDevice(options_.device);
  if (e != cudaSuccess) return CudaError("cudaSetDevice", e);
  if (stream_ == nullptr) {
    e = cuda_->StreamCreateNonBlocking(&stream_);
    if (e != cudaSuccess) return CudaError("cudaStreamCreateWithFlags", e);
  }
  if (buffer_ == nullptr) {
    void* ptr = nullptr;
    e = cuda_->Malloc(&ptr, sizeof(int));
    if (e != cudaSuccess) return CudaError("cudaMalloc", e);
    buffer_ = static_cast<int*>(ptr);
  }
  return absl::OkStatus();
}

absl::StatusOr<ncclUniqueId> NcclBarrier::ExchangeId(uint64_t epoch,
                                                     absl::Duration timeout,
                                                     absl::Time deadline,
                                                     bool need_id) {
  ncclUniqueId id;
  std::memset(&id, 0, sizeof(id));
  std::string value;
  if (options_.rank == 0 && need_id) {
    const ncclResult_t r = nccl_->GetUniqueId(&id);
    if (r != ncclSuccess) return NcclError("ncclGetUniqueId", r);
    value.assign(id.internal, sizeof(id.internal));
  } else if (options_.rank == 0) {
    value = "kept";  // the rendezvous wants a value; peers ignore it
  }
  const absl::Duration left =
      std::max(absl::ZeroDuration(), deadline - clock_->MonotonicNow());
  auto reply = rendezvous_->Exchange(options_.group, epoch, options_.rank,
                                     options_.world, value, left);
  if (absl::IsDeadlineExceeded(reply.status())) timed_out_waiting_ = true;
  if (!reply.ok()) return reply.status();
  // Peers that came more than `timeout` ago have given up on this epoch.
  std::vector<std::string> gone;
  for (const RendezvousArrival& a : reply->arrivals) {
    if (a.rank != options_.rank && a.age > timeout) {
      gone.push_back(absl::StrCat("rank ", a.rank, " ", Seconds(a.age)));
    }
  }
  if (!gone.empty()) {
    return absl::DeadlineExceededError(absl::StrCat(
        Where(epoch), ": this rank arrived after its peers gave up (timeout ",
        Seconds(timeout), "; they came earlier by: ", absl::StrJoin(gone, ", "),
        "); late: rank ", options_.rank));
  }
  if (options_.rank != 0 && need_id) {
    if (reply->value.size() != sizeof(id.internal)) {
      return absl::DataLossError(absl::StrCat(
          "rendezvous returned ", reply->value.size(),
          " bytes, want an ncclUniqueId of ", sizeof(id.internal)));
    }
    std::memcpy(id.internal, reply->value.data(), sizeof(id.internal));
  }
  return id;
}

absl::Status NcclBarrier::AllReduce(Communicator& comm, absl::Time deadline) {
  timings_.phase = "all-reduce";
  const int one = 1;
  cudaError_t e =
      cuda_->Memcpy(buffer_, &one, sizeof(one), cudaMemcpyHostToDevice);
  if (e != cudaSuccess) return CudaError("cudaMemcpy", e);
  const ncclResult_t r = nccl_->AllReduce(buffer_, buffer_, 1, ncclInt32,
                                          ncclSum, comm.get(), stream_);
  if (r != ncclSuccess && r != ncclInProgress) {
    return NcclError("ncclAllReduce", r);
  }
  TPJIT_RETURN_IF_ERROR(WaitComm(comm.get(), deadline));
  TPJIT_RETURN_IF_ERROR(WaitStream(comm.get(), deadline));
  int sum = 0;
  e = cuda_->Memcpy(&sum, buffer_, sizeof(sum), cudaMemcpyDeviceToHost);
  if (e != cudaSuccess) return CudaError("cudaMemcpy", e);
  if (sum != options_.world) {
    return absl::AbortedError(absl::StrCat(
        "all-reduce of 1s returned ", sum, ", want the world size ",
        options_.world, " (a peer aborted or left the barrier)"));
  }
  return absl::OkStatus();
}

absl::Status NcclBarrier::WaitComm(ncclComm_t comm, absl::Time deadline) {
  while (true) {
    ncclResult_t async = ncclSuccess;
    const ncclResult_t r = nccl_->CommGetAsyncError(comm, &async);
    if (r != ncclSuccess) return NcclError("ncclCommGetAsyncError", r);
    if (async == ncclSuccess) return absl::OkStatus();
    if (async != ncclInProgress) return NcclError("NCCL (async)", async);
    if (clock_->MonotonicNow() >= deadline) {
      timed_out_waiting_ = true;
      return absl::DeadlineExceededError(timings_.phase);
    }
    clock_->SleepFor(options_.poll_interval);
  }
}

absl::Status NcclBarrier::WaitStream(ncclComm_t comm, absl::Time deadline) {
  while (true) {
    const cudaError_t e = cuda_->StreamQuery(stream_);
    if (e == cudaSuccess) return absl::OkStatus();
    if (e != cudaErrorNotReady) return CudaError("cudaStreamQuery", e);
    ncclResult_t async = ncclSuccess;
    const ncclResult_t r = nccl_->CommGetAsyncError(comm, &async);
    if (r != ncclSuccess) return NcclError("ncclCommGetAsyncError", r);
    if (async != ncclSuccess && async != ncclInProgress) {
      return NcclError("NCCL (async)", async);
    }
    if (clock_->MonotonicNow() >= deadline) {
      timed_out_waiting_ = true;
      return absl::DeadlineExceededError(timings_.phase);
    }
    clock_->SleepFor(options_.poll_interval);
  }
}

absl::Status NcclBarrier::NameLate(uint64_t epoch, absl::Duration timeout,
                                   const absl::Status& cause) {
  std::string late;
  auto seen = rendezvous_->Peek(options_.group, epoch, options_.rank,
                                options_.world, options_.peek_timeout);
  if (!seen.ok()) {
    late = absl::StrCat("late: unknown (could not ask the rendezvous: ",
                        seen.status().message(), ")");
  } else {
    std::vector<bool> came(options_.world, false);
    const RendezvousArrival* first = nullptr;
    const RendezvousArrival* last = nullptr;
    for (const RendezvousArrival& a : seen->arrivals) {
      if (a.rank < 0 || a.rank >= options_.world) continue;
      came[a.rank] = true;
      if (first == nullptr || a.age > first->age) first = &a;
      if (last == nullptr || a.age < last->age) last = &a;
    }
    std::vector<std::string> missing;
    for (int rank = 0; rank < options_.world; ++rank) {
      if (!came[rank]) missing.push_back(absl::StrCat("rank ", rank));
    }
    if (!missing.empty()) {
      late = absl::StrCat("late: ", absl::StrJoin(missing, ", "),
                          " (never reached the rendezvous)");
    } else if (first != nullptr && last != nullptr) {
      late =
          absl::StrCat("all ranks reached the rendezvous; late: rank ",
                       last->rank, " (came ", Seconds(first->age - last->age),
                       " after rank ", first->rank, ")");
    }
  }
  std::string detail;
  if (cause.message() != timings_.phase) {
    detail = absl::StrCat(" (", cause.message(), ")");
  }
  return absl::DeadlineExceededError(
      absl::StrCat(Where(epoch), ": timed out after ", Seconds(timeout), " in ",
                   timings_.phase, detail, "; ", late));
}

}  // namespace tpjit
