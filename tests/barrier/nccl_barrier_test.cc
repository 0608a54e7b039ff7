// NcclBarrier under a fake NCCL, a fake CUDA runtime and a fake rendezvous,
// on a FakeClock: every wait runs out in simulated time.
#include "src/barrier/nccl_barrier.h"

#include <cstring>
#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;

class FakeNccl final : public NcclApi {
 public:
  // How many polls stay ncclInProgress: -1 forever.
  int init_polls = 2;
  int enqueue_polls = 1;
  ncclResult_t init_result = ncclInProgress;
  ncclResult_t async_error = ncclSuccess;  // reported once in progress ends
  int sum = -1;                            // -1: the world size
  int world = 2;
  int inits = 0, aborts = 0, finalizes = 0, destroys = 0, all_reduces = 0;
  ncclUniqueId last_id;

  ncclResult_t GetUniqueId(ncclUniqueId* id) override {
    std::memset(id->internal, 'x', sizeof(id->internal));
    return ncclSuccess;
  }
  ncclResult_t CommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId id,
                                  int rank, ncclConfig_t* config) override {
    ++inits;
    last_id = id;
    EXPECT_EQ(config->blocking, 0);
    *comm = reinterpret_cast<ncclComm_t>(&inits);
    pending_ = init_polls;
    return init_result;
  }
  ncclResult_t AllReduce(const void*, void* recv, size_t count, ncclDataType_t,
                         ncclRedOp_t op, ncclComm_t, cudaStream_t) override {
    ++all_reduces;
    EXPECT_EQ(count, 1u);
    EXPECT_EQ(op, ncclSum);
    *static_cast<int*>(recv) = sum < 0 ? world : sum;
    pending_ = enqueue_polls;
    return ncclInProgress;
  }
  ncclResult_t CommGetAsyncError(ncclComm_t, ncclResult_t* error) override {
    if (pending_ != 0) {
      if (pending_ > 0) --pending_;
      *error = ncclInProgress;
    } else {
      *error = async_error;
    }
    return ncclSuccess;
  }
  ncclResult_t CommFinalize(ncclComm_t) override {
    ++finalizes;
    pending_ = 1;
    return ncclInProgress;
  }
  ncclResult_t CommDestroy(ncclComm_t) override {
    ++destroys;
    return ncclSuccess;
  }
  ncclResult_t CommAbort(ncclComm_t) override {
    ++aborts;
    return ncclSuccess;
  }
  std::string ErrorString(ncclResult_t r) override {
    return r == ncclRemoteError ? "remote process exited or there was a "
                                  "network error"
                                : "nccl error";
  }

 private:
  int pending_ = 0;
};

class FakeCuda final : public CudaRuntime {
 public:
  int stream_polls = 1;  // cudaErrorNotReady this many times; -1 forever
  int frees = 0, streams_destroyed = 0, device = -1;

  cudaError_t SetDevice(int d) override {
    device = d;
    return cudaSuccess;
  }
  cudaError_t GetDeviceCount(int* count) override {
    *count = 2;
    return cudaSuccess;
  }
  cudaError_t StreamCreateNonBlocking(cudaStream_t* s) override {
    *s = reinterpret_cast<cudaStream_t>(&memory_);
    return cudaSuccess;
  }
  cudaError_t StreamQuery(cudaStream_t) override {
    if (pending_ < 0) pending_ = stream_polls;
    if (pending_ == 0) {
      pending_ = -1;
      return cudaSuccess;
    }
    if (pending_ > 0) --pending_;
    return cudaErrorNotReady;
  }
  cudaError_t StreamDestroy(cudaStream_t) override {
    ++streams_destroyed;
    return cudaSuccess;
  }
  cudaError_t Malloc(void** p, size_t bytes) override {
    EXPECT_EQ(bytes, sizeof(int));
    *p = &memory_;
    return cudaSuccess;
  }
  cudaError_t Free(void*) override {
    ++frees;
    return cudaSuccess;
  }
  cudaError_t Memcpy(void* dst, const void* src, size_t bytes,
                     cudaMemcpyKind) override {
    std::memcpy(dst, src, bytes);
    return cudaSuccess;
  }
  cudaError_t Memset(void* p, int v, size_t bytes) override {
    std::memset(p, v, bytes);
    return cudaSuccess;
  }
  cudaError_t DeviceSynchronize() override { return cudaSuccess; }
  std::string ErrorString(cudaError_t) override { return "cuda error"; }

 private:
  int memory_ = 0;
  int pending_ = -1;
};

class FakeRendezvous final : public Rendezvous {
 public:
  absl::Status exchange_status;
  std::vector<RendezvousArrival> arrivals = {{0, absl::ZeroDuration()},
                                             {1, absl::ZeroDuration()}};
  std::vector<RendezvousArrival> peek_arrivals = {{0, absl::Seconds(3)}};
  std::string published;
  std::vector<uint64_t> epochs;
  Clock* clock = nullptr;

  absl::StatusOr<RendezvousReply> Exchange(const std::string& group,
                                           uint64_t epoch, int rank, int world,
                                           const std::string& value,
                                           absl::Duration timeout) override {
    epochs.push_back(epoch);
    if (!exchange_status.ok()) {
      clock->SleepFor(timeout);
      return exchange_status;
    }
    if (rank == 0) published = value;
    return RendezvousReply{std::string(sizeof(ncclUniqueId), 'y'), arrivals};
  }
  absl::StatusOr<RendezvousReply> Peek(const std::string&, uint64_t, int, int,
                                       absl::Duration) override {
    return RendezvousReply{"", peek_arrivals};
  }
};

class NcclBarrierTest : public ::testing::Test {
 protected:
  NcclBarrierTest() { rendezvous_.clock = &clock_; }
  std::unique_ptr<NcclBarrier> Make(int rank, int world = 2) {
    nccl_.world = world;
    NcclBarrierOptions o;
    o.group = "tp";
    o.rank = rank;
    o.world = world;
    o.device = rank;
    return std::make_unique<NcclBarrier>(&nccl_, &cuda_, &rendezvous_, &clock_,
                                         o);
  }
  absl::Duration Elapsed(absl::Time start) {
    return clock_.MonotonicNow() - start;
  }

  FakeClock clock_;
  FakeNccl nccl_;
  FakeCuda cuda_;
  FakeRendezvous rendezvous_;
};

TEST_F(NcclBarrierTest, OnTimePasses) {
  auto barrier = Make(1);
  ASSERT_TRUE(barrier->Arrive(absl::Seconds(3)).ok());
  EXPECT_EQ(cuda_.device, 1);
  EXPECT_EQ(nccl_.inits, 1);
  EXPECT_EQ(nccl_.all_reduces, 1);
  EXPECT_EQ(nccl_.aborts, 0);
  EXPECT_EQ(nccl_.last_id.internal[0], 'y');  // the id from rank 0
  EXPECT_EQ(barrier->last_timings().init, absl::Milliseconds(2));
  EXPECT_FALSE(barrier->last_timings().aborted);
  EXPECT_FALSE(barrier->last_timings().reused);
  EXPECT_EQ(nccl_.finalizes, 0);  // kept for the next epoch
  // Each Arrive is a new epoch on the same communicator: no init.
  ASSERT_TRUE(barrier->Arrive(absl::Seconds(3)).ok());
  EXPECT_EQ(rendezvous_.epochs, (std::vector<uint64_t>{0, 1}));
  EXPECT_EQ(nccl_.inits, 1);
  EXPECT_EQ(nccl_.all_reduces, 2);
  EXPECT_TRUE(barrier->last_timings().reused);
  EXPECT_EQ(barrier->last_timings().init, absl::ZeroDuration());
  barrier.reset();
  EXPECT_EQ(nccl_.finalizes, 1);  // at destruction
  EXPECT_EQ(nccl_.destroys, 1);
  EXPECT_EQ(nccl_.aborts, 0);
  EXPECT_EQ(cuda_.frees, 1);
  EXPECT_EQ(cuda_.streams_destroyed, 1);
}

TEST_F(NcclBarrierTest, AFailureDropsTheKeptCommunicator) {
  auto barrier = Make(1);
  ASSERT_TRUE(barrier->Arrive(absl::Seconds(3)).ok());
  nccl_.sum = 1;  // a peer left
  EXPECT_FALSE(barrier->Arrive(absl::Seconds(3)).ok());
  EXPECT_TRUE(barrier->last_timings().reused);
  EXPECT_EQ(nccl_.aborts, 1);
  nccl_.sum = -1;
  ASSERT_TRUE(barrier->Arrive(absl::Seconds(3)).ok());
  EXPECT_FALSE(barrier->last_timings().reused);
  EXPECT_EQ(nccl_.inits, 2);
}

TEST_F(NcclBarrierTest, RankZeroPublishesItsId) {
  auto barrier = Make(0);
  ASSERT_TRUE(barrier->Arrive(absl::Seconds(3)).ok());
  EXPECT_EQ(rendezvous_.published, std::string(sizeof(ncclUniqueId), 'x'));
  EXPECT_EQ(nccl_.last_id.internal[0], 'x');
}

TEST_F(NcclBarrierTest, InitThatNeverCompletesIsAbortedAtTheDeadline) {
  nccl_.init_polls = -1;
  auto barrier = Make(0);
  const absl::Time start = clock_.MonotonicNow();
  absl::Status s = barrier->Arrive(absl::Seconds(3));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_LE(Elapsed(start), absl::Seconds(3) + absl::Milliseconds(2));
  EXPECT_EQ(nccl_.aborts, 1);
  EXPECT_EQ(nccl_.all_reduces, 0);
  EXPECT_TRUE(barrier->last_timings().aborted);
  EXPECT_THAT(s.message(), HasSubstr("in communicator init"));
  EXPECT_THAT(s.message(),
              HasSubstr("late: rank 1 (never reached the rendezvous)"));
}

TEST_F(NcclBarrierTest, EnqueueStuckInProgressIsAborted) {
  nccl_.enqueue_polls = -1;
  auto barrier = Make(0);
  const absl::Time start = clock_.MonotonicNow();
  absl::Status s = barrier->Arrive(absl::Seconds(2));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_LE(Elapsed(start), absl::Seconds(2) + absl::Milliseconds(2));
  EXPECT_THAT(s.message(), HasSubstr("in all-reduce"));
  EXPECT_EQ(nccl_.aborts, 1);
  EXPECT_EQ(nccl_.destroys, 0);
}

TEST_F(NcclBarrierTest, StreamThatNeverCompletesIsAborted) {
  cuda_.stream_polls = -1;
  rendezvous_.peek_arrivals = {{0, absl::Seconds(9)}, {1, absl::Seconds(2)}};
  auto barrier = Make(0);
  absl::Status s = barrier->Arrive(absl::Seconds(2));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(nccl_.aborts, 1);
  EXPECT_THAT(s.message(),
              HasSubstr("all ranks reached the rendezvous; late: rank 1 "
                        "(came 7.0s after rank 0)"));
}

TEST_F(NcclBarrierTest, WrongSumFails) {
  nccl_.sum = 1;  // the peer had already aborted
  auto barrier = Make(1);
  absl::Status s = barrier->Arrive(absl::Seconds(2));
  EXPECT_TRUE(absl::IsAborted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("returned 1, want the world size 2"));
  EXPECT_EQ(nccl_.aborts, 1);
}

TEST_F(NcclBarrierTest, AsyncErrorFailsAndAborts) {
  nccl_.async_error = ncclRemoteError;
  auto barrier = Make(0);
  const absl::Time start = clock_.MonotonicNow();
  absl::Status s = barrier->Arrive(absl::Seconds(60));
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_LT(Elapsed(start), absl::Seconds(1));
  EXPECT_THAT(s.message(), HasSubstr("remote process exited"));
  EXPECT_THAT(s.message(), HasSubstr("communicator init"));
  EXPECT_EQ(nccl_.aborts, 1);
}

TEST_F(NcclBarrierTest, InitErrorFails) {
  nccl_.init_result = ncclInvalidUsage;
  auto barrier = Make(0);
  absl::Status s = barrier->Arrive(absl::Seconds(2));
  EXPECT_TRUE(absl::IsInternal(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("ncclCommInitRankConfig"));
}

TEST_F(NcclBarrierTest, RendezvousTimeoutNamesMissingRanks) {
  rendezvous_.exchange_status =
      absl::DeadlineExceededError("rank 0 did not publish");
  rendezvous_.peek_arrivals = {{1, absl::Seconds(2)}};
  auto barrier = Make(1);
  const absl::Time start = clock_.MonotonicNow();
  absl::Status s = barrier->Arrive(absl::Seconds(2));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(Elapsed(start), absl::Seconds(2));
  EXPECT_EQ(nccl_.inits, 0);
  EXPECT_THAT(s.message(), HasSubstr("in rendezvous"));
  EXPECT_THAT(s.message(), HasSubstr("late: rank 0"));
}

TEST_F(NcclBarrierTest, LateRankFailsAtOnceWhenPeersGaveUp) {
  rendezvous_.arrivals = {{0, absl::Seconds(8)}, {1, absl::ZeroDuration()}};
  auto barrier = Make(1);
  const absl::Time start = clock_.MonotonicNow();
  absl::Status s = barrier->Arrive(absl::Seconds(3));
  EXPECT_TRUE(absl::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(Elapsed(start), absl::ZeroDuration());
  EXPECT_EQ(nccl_.inits, 0);
  EXPECT_THAT(s.message(), HasSubstr("late: rank 1"));
  EXPECT_THAT(s.message(), HasSubstr("rank 0 8.0s"));
}

}  // namespace
}  // namespace tpjit
