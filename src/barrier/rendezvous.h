// Rendezvous: how the ranks of an NCCL barrier hand rank 0's ncclUniqueId to
// the others (through tpjitd's Rendezvous RPC: RendezvousClient in
// client/rpc/barrier_client.h), and learn who came when. Implementations are
// thread-safe.
#ifndef TPJIT_SRC_BARRIER_RENDEZVOUS_H_
#define TPJIT_SRC_BARRIER_RENDEZVOUS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tpjit {

struct RendezvousArrival {
  int rank = 0;
  absl::Duration age;  // how long ago it arrived
};

struct RendezvousReply {
  std::string value;
  std::vector<RendezvousArrival> arrivals;  // sorted by rank
};

class Rendezvous {
 public:
  virtual ~Rendezvous() = default;
  // Rank 0 publishes `value` and returns at once; other ranks wait for rank
  // 0's value up to `timeout`: DEADLINE_EXCEEDED naming the ranks not seen.
  virtual absl::StatusOr<RendezvousReply> Exchange(const std::string& group,
                                                   uint64_t epoch, int rank,
                                                   int world,
                                                   const std::string& value,
                                                   absl::Duration timeout) = 0;
  // Who has arrived at (group, epoch) so far; records nothing.
  virtual absl::StatusOr<RendezvousReply> Peek(const std::string& group,
                                               uint64_t epoch, int rank,
                                               int world,
                                               absl::Duration timeout) = 0;
};

}  // namespace tpjit

#endif  // TPJIT_SRC_BARRIER_RENDEZVOUS_H_
