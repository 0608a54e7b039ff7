#include "src/barrier/rendezvous_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tpjit {
namespace {

std::string Where(const RendezvousTable::Request& r) {
  return absl::StrCat("rendezvous group '", r.group, "' epoch ", r.epoch);
}

}  // namespace

RendezvousTable::RendezvousTable(Clock* clock)
    : RendezvousTable(clock, Options()) {}

RendezvousTable::RendezvousTable(Clock* clock, Options options)
    : clock_(clock), options_(options) {}

RendezvousReply RendezvousTable::Snapshot(const Entry& entry, absl::Time now) {
  RendezvousReply reply;
  if (entry.value.has_value()) reply.value = *entry.value;
  for (const auto& [rank, at] : entry.arrivals) {
    reply.arrivals.push_back({rank, now - at});
  }
  return reply;
}

absl::Status RendezvousTable::Validate(const Request& r) {
  absl::Status s = CheckName("group", r.group, kMaxNameBytes, true);
  if (s.ok()) s = CheckRankWorld(r.rank, r.world, options_.max_world);
  if (s.ok() && r.timeout < absl::ZeroDuration()) {
    s = absl::InvalidArgumentError("timeout: must be >= 0");
  }
  if (!s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("rendezvous: ", s.message()));
  }
  if (r.value.size() > kMaxValueBytes ||
      (!r.peek && r.rank == 0 && r.value.empty())) {
    return absl::InvalidArgumentError(absl::StrCat(
        Where(r), ": value: rank 0 must publish 1..", kMaxValueBytes,
        " bytes (other ranks at most as many), got ", r.value.size()));
  }
  auto it = entries_.find({r.group, r.epoch});
  if (it == entries_.end()) return absl::OkStatus();
  if (it->second.world != r.world) {
    return absl::FailedPreconditionError(
        absl::StrCat(Where(r), ": rank ", r.rank, " says world=", r.world,
                     " but it was opened with world=", it->second.world));
  }
  for (const Waiter& w : it->second.waiters) {
    if (w.rank == r.rank && !r.peek) {
      return absl::FailedPreconditionError(
          absl::StrCat(Where(r), ": rank ", r.rank,
                       " is already waiting (two processes with one rank?)"));
    }
  }
  return absl::OkStatus();
}

void RendezvousTable::Publish(const Request& r, Entry& entry, absl::Time now,
                              std::vector<Reply>& replies) {
  if (entry.value.has_value()) {
    // A new round: only ranks waiting now belong to it.
    std::map<int, absl::Time> kept;
    for (const Waiter& w : entry.waiters) kept[w.rank] = entry.arrivals[w.rank];
    entry.arrivals = std::move(kept);
    entry.received.clear();
  }
  entry.value = r.value;
  entry.arrivals[0] = now;
  for (Waiter& w : entry.waiters) {
    entry.received.insert(w.rank);
    tickets_.erase(w.ticket);
  }
  const RendezvousReply snapshot = Snapshot(entry, now);
  for (Waiter& w : entry.waiters) {
    replies.push_back({std::move(w.done), {absl::OkStatus(), snapshot}});
  }
  entry.waiters.clear();
}

RendezvousTable::Ticket RendezvousTable::Exchange(const Request& r, Done done) {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<Reply> replies;
  Ticket ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    CollectGarbage(now);
    const Key key{r.group, r.epoch};
    absl::Status status = Validate(r);
    if (status.ok() && !r.peek) status = MakeRoom(key);
    if (!status.ok() || r.peek) {
      RendezvousReply reply;
      if (auto it = entries_.find(key); it != entries_.end()) {
        reply = Snapshot(it->second, now);
        reply.value.clear();
      }
      replies.push_back({std::move(done), {status, std::move(reply)}});
    } else {
      Entry& entry = entries_[key];
      if (entry.world == 0) entry.world = r.world;
      entry.touched = now;
      if (r.rank == 0) {
        Publish(r, entry, now, replies);
        replies.push_back(
            {std::move(done), {absl::OkStatus(), Snapshot(entry, now)}});
      } else {
        if (entry.received.contains(r.rank)) {  // a new round
          entry.value.reset();
          entry.received.clear();
          entry.arrivals.clear();
          for (const Waiter& w : entry.waiters) entry.arrivals[w.rank] = now;
        }
        entry.arrivals[r.rank] = now;
        if (entry.value.has_value()) {
          entry.received.insert(r.rank);
          replies.push_back(
              {std::move(done), {absl::OkStatus(), Snapshot(entry, now)}});
        } else {
          entry.waiters.push_back(
              {ticket, r.rank, now + r.timeout, r.timeout, std::move(done)});
          tickets_[ticket] = key;
        }
      }
    }
  }
  for (Reply& reply : replies) reply.done(reply.outcome);
  return ticket;
}

bool RendezvousTable::Withdraw(Ticket ticket) {
  absl::MutexLock lock(&mu_);
  auto t = tickets_.find(ticket);
  if (t == tickets_.end()) return false;
  Entry& entry = entries_[t->second];
  tickets_.erase(t);
  auto w = std::find_if(entry.waiters.begin(), entry.waiters.end(),
                        [&](const Waiter& w) { return w.ticket == ticket; });
  if (w == entry.waiters.end()) return false;
  entry.waiters.erase(w);
  return true;
}

int RendezvousTable::ExpireDue() {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<Reply> replies;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, entry] : entries_) {
      std::vector<std::string> missing;
      for (int rank = 0; rank < entry.world; ++rank) {
        if (!entry.arrivals.contains(rank))
          missing.push_back(absl::StrCat(rank));
      }
      RendezvousReply snapshot = Snapshot(entry, now);
      for (auto w = entry.waiters.begin(); w != entry.waiters.end();) {
        if (w->deadline > now) {
          ++w;
          continue;
        }
        const absl::Status status = absl::DeadlineExceededError(absl::StrCat(
            "rendezvous group '", key.first, "' epoch ", key.second,
            ": rank 0 did not publish within ",
            absl::StrFormat("%.1fs", absl::ToDoubleSeconds(w->timeout)),
            "; ranks not seen: ", absl::StrJoin(missing, ", ")));
        tickets_.erase(w->ticket);
        replies.push_back({std::move(w->done), {status, snapshot}});
        w = entry.waiters.erase(w);
      }
    }
    CollectGarbage(now);
  }
  for (Reply& reply : replies) reply.done(reply.outcome);
  return replies.size();
}

absl::Status RendezvousTable::MakeRoom(const Key& key) {
  if (entries_.contains(key)) return absl::OkStatus();
  while (static_cast<int>(entries_.size()) >= options_.max_entries) {
    auto oldest = entries_.end();
    for (auto e = entries_.begin(); e != entries_.end(); ++e) {
      if (!e->second.waiters.empty()) continue;
      if (oldest == entries_.end() ||
          e->second.touched < oldest->second.touched) {
        oldest = e;
      }
    }
    if (oldest == entries_.end()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("rendezvous: ", entries_.size(),
                       " entries have waiting ranks (the limit is ",
                       options_.max_entries, " entries); retry later"));
    }
    entries_.erase(oldest);
  }
  return absl::OkStatus();
}

void RendezvousTable::CollectGarbage(absl::Time now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.waiters.empty() &&
        it->second.touched + options_.retention <= now) {
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<absl::Time> RendezvousTable::NextDeadline() {
  absl::MutexLock lock(&mu_);
  std::optional<absl::Time> next;
  for (const auto& [key, entry] : entries_) {
    for (const Waiter& w : entry.waiters) {
      if (!next.has_value() || w.deadline < *next) next = w.deadline;
    }
  }
  return next;
}

void RendezvousTable::FailAll(const absl::Status& status) {
  std::vector<Reply> replies;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, entry] : entries_) {
      for (Waiter& w : entry.waiters) {
        replies.push_back({std::move(w.done), {status, {}}});
      }
    }
    entries_.clear();
    tickets_.clear();
  }
  for (Reply& reply : replies) reply.done(reply.outcome);
}

int RendezvousTable::entries() {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace tpjit
