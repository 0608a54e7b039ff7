// RendezvousTable: the daemon side of the Rendezvous RPC. Rank 0 of
// (group, epoch) publishes a small value (an ncclUniqueId); the other ranks
// wait for it until their own deadline. Every call is recorded with its time,
// so callers can tell which ranks never came (and which came too late to
// matter). A rank that asks again for a value it already received starts a
// new round (the job restarted with the same group and epoch numbers): the
// old value is dropped and the rank waits for a fresh publish. Entries
// untouched for `retention` are forgotten.
//
// Bounded: world is at most `max_world`, group names are short printable
// ASCII, values at most kMaxValueBytes, and at most `max_entries` (group,
// epoch) entries are kept: a new entry first forgets the least recently
// touched entries without waiters; if all have waiters the call is answered
// RESOURCE_EXHAUSTED.
//
// No threads inside: the owner calls ExpireDue() at NextDeadline().
// Thread-safe.
#ifndef TPJIT_SRC_BARRIER_RENDEZVOUS_TABLE_H_
#define TPJIT_SRC_BARRIER_RENDEZVOUS_TABLE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "src/barrier/rendezvous.h"
#include "src/common/clock.h"
#include "src/common/request_limits.h"

namespace tpjit {

class RendezvousTable {
 public:
  static constexpr size_t kMaxValueBytes = 4096;

  struct Options {
    absl::Duration retention = absl::Minutes(10);
    int max_world = kMaxWorld;
    int max_entries = 4096;
  };
  struct Request {
    std::string group;
    uint64_t epoch = 0;
    int rank = 0;
    int world = 0;
    std::string value;  // rank 0 only
    absl::Duration timeout;
    bool peek = false;  // only report arrivals; record and wait for nothing
  };
  struct Outcome {
    absl::Status status;
    RendezvousReply reply;  // arrivals are filled in on errors too
  };
  using Done = std::function<void(const Outcome&)>;
  using Ticket = uint64_t;

  explicit RendezvousTable(Clock* clock);
  RendezvousTable(Clock* clock, Options options);
  RendezvousTable(const RendezvousTable&) = delete;
  RendezvousTable& operator=(const RendezvousTable&) = delete;

  // `done` is called exactly once, never under the lock, unless
  // Withdraw(ticket) returns true first.
  Ticket Exchange(const Request& request, Done done);
  bool Withdraw(Ticket ticket);
  // Answers waiters whose deadline passed (DEADLINE_EXCEEDED) and forgets
  // idle entries. Returns the number answered.
  int ExpireDue();
  std::optional<absl::Time> NextDeadline();
  void FailAll(const absl::Status& status);
  int entries();

 private:
  using Key = std::pair<std::string, uint64_t>;
  struct Waiter {
    Ticket ticket;
    int rank;
    absl::Time deadline;
    absl::Duration timeout;
    Done done;
  };
  struct Entry {
    int world = 0;
    std::optional<std::string> value;
    std::map<int, absl::Time> arrivals;
    std::set<int> received;  // ranks that got the current value
    std::vector<Waiter> waiters;
    absl::Time touched;
  };
  struct Reply {
    Done done;
    Outcome outcome;
  };

  static RendezvousReply Snapshot(const Entry& entry, absl::Time now);
  absl::Status Validate(const Request& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish(const Request& request, Entry& entry, absl::Time now,
               std::vector<Reply>& replies) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CollectGarbage(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Room for the entry of `key`: forgets the least recently touched entries
  // without waiters. RESOURCE_EXHAUSTED when none can go.
  absl::Status MakeRoom(const Key& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const Options options_;
  absl::Mutex mu_;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<Key, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::map<Ticket, Key> tickets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_SRC_BARRIER_RENDEZVOUS_TABLE_H_
