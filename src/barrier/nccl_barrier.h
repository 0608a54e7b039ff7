// NcclBarrier: the NCCL transport of Barrier. Each Arrive builds a dedicated
// non-blocking communicator (ncclConfig_t.blocking = 0) from an ncclUniqueId
// that rank 0 hands to the others through a Rendezvous, runs a one-element
// sum all-reduce of 1s on its own non-blocking stream, and polls
// ncclCommGetAsyncError and cudaStreamQuery against one deadline that covers
// the rendezvous, communicator init, the enqueue (ncclInProgress until the
// peers connect) and completion. At the deadline, or on any error, the
// communicator is aborted (ncclCommAbort); the GPU stays usable. The reduced
// value must equal the world size, else the barrier failed (a late rank whose
// peers already aborted can see its all-reduce "succeed").
//
// Late ranks are named from the rendezvous record: ranks that never came, or
// (seen from a late rank) peers that arrived more than `timeout` earlier and
// so have given up; such a late rank fails at once without touching NCCL.
//
// The communicator is kept across a group's epochs (keep_communicator, the
// default): the first Arrive pays communicator init (~0.6-0.9 s), later ones
// a rendezvous round trip and a one-element all-reduce (milliseconds). Any
// failure aborts the kept communicator; the next Arrive builds a new one.
// Destruction finalizes it (bounded by teardown_timeout, then abort).
//
// Thread-compatible: one Arrive at a time.
#ifndef TPJIT_SRC_BARRIER_NCCL_BARRIER_H_
#define TPJIT_SRC_BARRIER_NCCL_BARRIER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "src/barrier/barrier.h"
#include "src/barrier/nccl_api.h"
#include "src/barrier/rendezvous.h"
#include "src/common/clock.h"

namespace tpjit {

struct NcclBarrierOptions {
  std::string group;
  int rank = 0;
  int world = 1;
  int device = 0;  // CUDA device ordinal of this rank
  uint64_t first_epoch = 0;
  bool keep_communicator = true;
  absl::Duration poll_interval = absl::Milliseconds(1);
  // Budget for ncclCommFinalize after a successful barrier (then abort).
  absl::Duration teardown_timeout = absl::Seconds(5);
  // Budget for asking the rendezvous who came, after a time-out.
  absl::Duration peek_timeout = absl::Milliseconds(300);
};

// Where the last Arrive spent its time.
struct NcclBarrierTimings {
  absl::Duration rendezvous;
  absl::Duration init;        // ncclCommInitRankConfig until ready
  absl::Duration all_reduce;  // enqueue + completion + copy back
  absl::Duration teardown;    // finalize + destroy on success
  absl::Duration abort;       // ncclCommAbort on failure
  absl::Duration total;       // whole Arrive
  bool aborted = false;
  bool reused = false;  // the communicator of an earlier epoch served
  std::string phase;    // last phase entered
};

class NcclBarrier final : public Barrier {
 public:
  // Pointers are not owned and must outlive the barrier.
  NcclBarrier(NcclApi* nccl, CudaRuntime* cuda, Rendezvous* rendezvous,
              Clock* clock, NcclBarrierOptions options);
  ~NcclBarrier() override;
  NcclBarrier(const NcclBarrier&) = delete;
  NcclBarrier& operator=(const NcclBarrier&) = delete;

  absl::Status Arrive(absl::Duration timeout) override;

  const NcclBarrierTimings& last_timings() const { return timings_; }
  uint64_t next_epoch() const { return epoch_; }

 private:
  class Communicator;

  absl::Status PrepareDevice();
  // With `need_id` false (a kept communicator) rank 0 publishes nothing and
  // the others expect nothing: the exchange only records the arrival.
  absl::StatusOr<ncclUniqueId> ExchangeId(uint64_t epoch,
                                          absl::Duration timeout,
                                          absl::Time deadline, bool need_id);
  absl::Status Run(uint64_t epoch, absl::Duration timeout, absl::Time deadline,
                   Communicator& comm, bool reused);
  absl::Status AllReduce(Communicator& comm, absl::Time deadline);
  absl::Status WaitComm(ncclComm_t comm, absl::Time deadline);
  absl::Status WaitStream(ncclComm_t comm, absl::Time deadline);
  absl::Status NameLate(uint64_t epoch, absl::Duration timeout,
                        const absl::Status& cause);
  absl::Status NcclError(const char* call, ncclResult_t result);
  absl::Status CudaError(const char* call, cudaError_t error);
  std::string Where(uint64_t epoch) const;

  NcclApi* const nccl_;
  CudaRuntime* const cuda_;
  Rendezvous* const rendezvous_;
  Clock* const clock_;
  const NcclBarrierOptions options_;
  uint64_t epoch_;
  bool timed_out_waiting_ = false;  // the last error was our own deadline
  cudaStream_t stream_ = nullptr;
  int* buffer_ = nullptr;               // one int32 on the device
  std::unique_ptr<Communicator> kept_;  // from the last successful epoch
  NcclBarrierTimings timings_;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_BARRIER_NCCL_BARRIER_H_
