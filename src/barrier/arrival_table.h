// ArrivalTable: the daemon side of the barrier. Records which ranks of a group
// arrived at each (group, epoch), answers every waiting rank when the last one
// arrives, and fails the whole epoch when the first waiting rank's timeout
// runs out, naming the late ranks and their last known progress. A rank that
// arrives at an epoch that already failed is answered at once with the same
// error. Finished epochs are kept for `retention` (so late ranks still get a
// clear answer), then garbage-collected.
//
// Bounded: world is at most `max_world`, group names are short printable
// ASCII, at most `max_groups` groups are remembered (when a new group would
// exceed it, the least recently touched groups without waiting ranks are
// forgotten first; if every group has waiters the arrival is answered
// RESOURCE_EXHAUSTED), and at most `max_waiters` ranks wait at once.
//
// No threads inside: the owner calls ExpireDue() at NextDeadline() (the gRPC
// service runs a timer thread; tests move a FakeClock). Thread-safe.
#ifndef TPJIT_SRC_BARRIER_ARRIVAL_TABLE_H_
#define TPJIT_SRC_BARRIER_ARRIVAL_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/common/clock.h"
#include "src/common/request_limits.h"

namespace tpjit {

class ArrivalTable {
 public:
  // What `rank` of `group` was last doing (e.g. "compiling 12/40 kernels");
  // "" if unknown. Called without the table's lock held; must not block long.
  using ProgressLookup =
      std::function<std::string(const std::string& group, int rank)>;

  struct Options {
    // How long a finished epoch is remembered for late ranks.
    absl::Duration retention = absl::Minutes(10);
    // At most this many finished epochs per group are remembered.
    int max_finished_epochs_per_group = 64;
    // Largest world an arrival may name (INVALID_ARGUMENT above it).
    int max_world = kMaxWorld;
    // Groups remembered at once; oldest idle ones are forgotten first.
    int max_groups = 4096;
    // Ranks waiting at once over all groups.
    int max_waiters = 65536;
  };

  struct Arrival {
    std::string group;
    int rank = 0;
    int world = 0;
    // std::nullopt: this rank's k-th arrival in the group is epoch k.
    std::optional<uint64_t> epoch;
    absl::Duration timeout;  // counted from the arrival
  };

  struct Outcome {
    absl::Status status;
    uint64_t epoch = 0;     // meaningful unless the arrival was rejected
    absl::Duration waited;  // time between arrival and answer
  };
  using Done = std::function<void(const Outcome&)>;
  using Ticket = uint64_t;

  ArrivalTable(Clock* clock, ProgressLookup progress);
  ArrivalTable(Clock* clock, ProgressLookup progress, Options options);
  ArrivalTable(const ArrivalTable&) = delete;
  ArrivalTable& operator=(const ArrivalTable&) = delete;

  // Records the arrival. `done` is called exactly once and never under the
  // table's lock: before Arrive returns (a rejected arrival, the last rank of
  // the epoch, an epoch that already failed), from ExpireDue() or FailAll(),
  // unless Withdraw(ticket) returns true first.
  Ticket Arrive(const Arrival& arrival, Done done);

  // Takes back a waiting rank (its client went away): its `done` will not be
  // called and the rank counts as not arrived. False if `done` was already
  // called or is being called.
  bool Withdraw(Ticket ticket);

  // Fails every open epoch whose earliest deadline has passed and forgets old
  // finished epochs. Returns the number of waiting ranks answered.
  int ExpireDue();

  // The earliest deadline among open epochs, if any.
  std::optional<absl::Time> NextDeadline();

  // Answers every waiting rank with `status` (e.g. on shutdown).
  void FailAll(const absl::Status& status);

  // For tests and metrics.
  int waiting_ranks();
  int remembered_epochs();

 private:
  struct Waiter {
    Ticket ticket;
    int rank;
    bool auto_epoch;
    absl::Time arrived;
    absl::Time deadline;
    Done done;
  };
  enum class State { kOpen, kComplete, kFailed };
  struct Epoch {
    int world = 0;
    int opened_by = 0;
    State state = State::kOpen;
    absl::Time deadline = absl::InfiniteFuture();
    absl::Duration timeout;  // of the waiter whose deadline is earliest
    absl::Time finished;     // set when state != kOpen
    std::set<int> arrived;   // ranks that arrived (waiting or answered)
    std::vector<Waiter> waiters;
    // kFailed: which ranks were missing at the deadline, one bit per rank
    // (a finished epoch is remembered for a while: keep it small).
    std::vector<bool> late;
  };
  struct RankSeen {
    uint64_t epoch = 0;
    absl::Time at;
  };
  struct Group {
    std::map<int, uint64_t> next_epoch;  // per rank, for auto epochs
    std::map<int, RankSeen> last_seen;
    std::map<int, Ticket> waiting;  // rank -> ticket while it waits
    std::map<uint64_t, Epoch> epochs;
    absl::Time touched;
  };
  // One late rank, described outside the lock.
  struct LateInfo {
    int rank;
    std::optional<RankSeen> seen;
  };
  struct Reply {
    Done done;
    Outcome outcome;
  };
  // A failure whose message is built outside the lock.
  struct PendingFailure {
    std::string group;
    uint64_t epoch;
    std::string what;  // how the epoch failed, without the late list
    std::vector<LateInfo> late;
    std::vector<std::pair<Done, absl::Time>> waiters;  // done, arrived
  };

  absl::Status Validate(const Arrival& arrival, Group& group, uint64_t& epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<LateInfo> LateInfos(const Group& group,
                                  const std::vector<bool>& late)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Complete(Group& group, Epoch& epoch, uint64_t number, absl::Time now,
                std::vector<Reply>& replies) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  PendingFailure Fail(const std::string& name, Group& group, uint64_t number,
                      Epoch& epoch, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CollectGarbage(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes room for one more group (or waiter): forgets the least recently
  // touched groups without waiting ranks. RESOURCE_EXHAUSTED if none can go.
  absl::Status MakeRoom(const Arrival& arrival)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Builds the error message (calls progress_) and answers the waiters.
  void Deliver(PendingFailure failure, absl::Time now);
  std::string Describe(const std::string& group,
                       const std::vector<LateInfo>& late, absl::Time now);

  Clock* const clock_;
  const ProgressLookup progress_;
  const Options options_;
  absl::Mutex mu_;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, Group> groups_ ABSL_GUARDED_BY(mu_);
  // ticket -> (group, epoch) of a waiting rank.
  absl::flat_hash_map<Ticket, std::pair<std::string, uint64_t>> tickets_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_BARRIER_ARRIVAL_TABLE_H_
