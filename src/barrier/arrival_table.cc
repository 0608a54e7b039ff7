#include "src/barrier/arrival_table.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace tpjit {
namespace {

std::string Seconds(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

absl::Status CheckShape(const ArrivalTable::Arrival& a, int max_world) {
  absl::Status s = CheckName("group", a.group, kMaxNameBytes, true);
  if (s.ok()) s = CheckRankWorld(a.rank, a.world, max_world);
  if (s.ok() && a.timeout < absl::ZeroDuration()) {
    s = absl::InvalidArgumentError("timeout: must be >= 0");
  }
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat("barrier: ", s.message()));
}

}  // namespace

ArrivalTable::ArrivalTable(Clock* clock, ProgressLookup progress)
    : ArrivalTable(clock, std::move(progress), Options()) {}

ArrivalTable::ArrivalTable(Clock* clock, ProgressLookup progress,
                           Options options)
    : clock_(clock), progress_(std::move(progress)), options_(options) {}

absl::Status ArrivalTable::Validate(const Arrival& a, Group& group,
                                    uint64_t& number) {
  number = a.epoch.has_value() ? *a.epoch : group.next_epoch[a.rank];
  if (auto it = group.waiting.find(a.rank); it != group.waiting.end()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "barrier: rank ", a.rank, " of group '", a.group,
        "' is already waiting in epoch ", tickets_[it->second].second,
        " (two processes with the same rank?)"));
  }
  auto it = group.epochs.find(number);
  if (it == group.epochs.end()) return absl::OkStatus();
  const Epoch& epoch = it->second;
  if (epoch.world != a.world) {
    return absl::FailedPreconditionError(absl::StrCat(
        "barrier: rank ", a.rank, " says world=", a.world, " but group '",
        a.group, "' epoch ", number, " was opened with world=", epoch.world,
        " by rank ", epoch.opened_by));
  }
  if (epoch.arrived.contains(a.rank)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "barrier: rank ", a.rank, " already arrived at group '", a.group,
        "' epoch ", number, " (two processes with the same rank?)"));
  }
  return absl::OkStatus();
}

ArrivalTable::Ticket ArrivalTable::Arrive(const Arrival& a, Done done) {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<Reply> replies;
  std::optional<PendingFailure> failure;
  Ticket ticket = 0;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    CollectGarbage(now);
    uint64_t number = 0;
    absl::Status status = CheckShape(a, options_.max_world);
    if (status.ok()) status = MakeRoom(a);
    Group* group = nullptr;
    if (status.ok()) {
      group = &groups_[a.group];
      group->touched = now;
      status = Validate(a, *group, number);
    }
    if (!status.ok()) {
      replies.push_back({std::move(done), {status, number}});
    } else {
      auto [it, created] = group->epochs.try_emplace(number);
      Epoch& epoch = it->second;
      if (created) {
        epoch.world = a.world;
        epoch.opened_by = a.rank;
      }
      if (!a.epoch.has_value()) group->next_epoch[a.rank] = number + 1;
      epoch.arrived.insert(a.rank);
      if (epoch.state == State::kFailed) {
        failure = PendingFailure{a.group,
                                 number,
                                 absl::StrCat("rank ", a.rank, " arrived ",
                                              Seconds(now - epoch.finished),
                                              " after the barrier timed out (",
                                              Seconds(epoch.timeout), ")"),
                                 LateInfos(*group, epoch.late),
                                 {{std::move(done), now}}};
      } else {
        const absl::Time deadline = now + a.timeout;
        epoch.waiters.push_back({ticket, a.rank, !a.epoch.has_value(), now,
                                 deadline, std::move(done)});
        tickets_[ticket] = {a.group, number};
        group->waiting[a.rank] = ticket;
        if (deadline < epoch.deadline) {
          epoch.deadline = deadline;
          epoch.timeout = a.timeout;
        }
        if (static_cast<int>(epoch.arrived.size()) == epoch.world) {
          Complete(*group, epoch, number, now, replies);
        }
      }
      group->last_seen[a.rank] = {number, now};
    }
  }
  for (Reply& reply : replies) reply.done(reply.outcome);
  if (failure.has_value()) Deliver(std::move(*failure), now);
  return ticket;
}

void ArrivalTable::Complete(Group& group, Epoch& epoch, uint64_t number,
                            absl::Time now, std::vector<Reply>& replies) {
  epoch.state = State::kComplete;
  epoch.finished = now;
  for (Waiter& w : epoch.waiters) {
    tickets_.erase(w.ticket);
    group.waiting.erase(w.rank);
    replies.push_back(
        {std::move(w.done), {absl::OkStatus(), number, now - w.arrived}});
  }
  epoch.waiters.clear();
}

std::vector<ArrivalTable::LateInfo> ArrivalTable::LateInfos(
    const Group& group, const std::vector<bool>& late) {
  std::vector<LateInfo> infos;
  for (int rank = 0; rank < static_cast<int>(late.size()); ++rank) {
    if (!late[rank]) continue;
    LateInfo info{rank, std::nullopt};
    if (auto it = group.last_seen.find(rank); it != group.last_seen.end()) {
      info.seen = it->second;
    }
    infos.push_back(info);
  }
  return infos;
}

ArrivalTable::PendingFailure ArrivalTable::Fail(const std::string& name,
                                                Group& group, uint64_t number,
                                                Epoch& epoch, absl::Time now) {
  epoch.state = State::kFailed;
  epoch.finished = now;
  epoch.late.assign(epoch.world, false);
  for (int rank = 0; rank < epoch.world; ++rank) {
    epoch.late[rank] = !epoch.arrived.contains(rank);
  }
  PendingFailure failure{
      name,
      number,
      absl::StrCat("timed out after ", Seconds(epoch.timeout), " with ",
                   epoch.arrived.size(), " of ", epoch.world, " ranks arrived"),
      LateInfos(group, epoch.late),
      {}};
  for (Waiter& w : epoch.waiters) {
    tickets_.erase(w.ticket);
    group.waiting.erase(w.rank);
    failure.waiters.emplace_back(std::move(w.done), w.arrived);
  }
  epoch.waiters.clear();
  return failure;
}

std::string ArrivalTable::Describe(const std::string& group,
                                   const std::vector<LateInfo>& late,
                                   absl::Time now) {
  std::vector<std::string> parts;
  for (const LateInfo& info : late) {
    std::vector<std::string> notes;
    if (progress_) {
      std::string progress = progress_(group, info.rank);
      if (!progress.empty()) notes.push_back("last progress: " + progress);
    }
    if (info.seen.has_value()) {
      notes.push_back(absl::StrCat("last arrived at epoch ", info.seen->epoch,
                                   ", ", Seconds(now - info.seen->at), " ago"));
    } else {
      notes.push_back("never arrived in this group");
    }
    parts.push_back(absl::StrCat("rank ", info.rank, " (",
                                 absl::StrJoin(notes, "; "), ")"));
  }
  return absl::StrJoin(parts, ", ");
}

void ArrivalTable::Deliver(PendingFailure failure, absl::Time now) {
  const absl::Status status = absl::DeadlineExceededError(absl::StrCat(
      "barrier group '", failure.group, "' epoch ", failure.epoch, ": ",
      failure.what, "; late: ", Describe(failure.group, failure.late, now)));
  for (auto& [done, arrived] : failure.waiters) {
    done({status, failure.epoch, now - arrived});
  }
}

bool ArrivalTable::Withdraw(Ticket ticket) {
  absl::MutexLock lock(&mu_);
  auto t = tickets_.find(ticket);
  if (t == tickets_.end()) return false;
  auto [name, number] = t->second;
  tickets_.erase(t);
  Group& group = groups_[name];
  Epoch& epoch = group.epochs[number];
  auto w = std::find_if(epoch.waiters.begin(), epoch.waiters.end(),
                        [&](const Waiter& w) { return w.ticket == ticket; });
  if (w == epoch.waiters.end()) return false;
  const int rank = w->rank;
  if (w->auto_epoch && group.next_epoch[rank] == number + 1) {
    group.next_epoch[rank] = number;
  }
  epoch.waiters.erase(w);
  epoch.arrived.erase(rank);
  group.waiting.erase(rank);
  epoch.deadline = absl::InfiniteFuture();
  for (const Waiter& other : epoch.waiters) {
    epoch.deadline = std::min(epoch.deadline, other.deadline);
  }
  if (epoch.arrived.empty()) group.epochs.erase(number);
  return true;
}

int ArrivalTable::ExpireDue() {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<PendingFailure> failures;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, group] : groups_) {
      for (auto& [number, epoch] : group.epochs) {
        if (epoch.state == State::kOpen && epoch.deadline <= now) {
          failures.push_back(Fail(name, group, number, epoch, now));
        }
      }
    }
    CollectGarbage(now);
  }
  int answered = 0;
  for (PendingFailure& failure : failures) {
    answered += failure.waiters.size();
    Deliver(std::move(failure), now);
  }
  return answered;
}

absl::Status ArrivalTable::MakeRoom(const Arrival& a) {
  if (static_cast<int>(tickets_.size()) >= options_.max_waiters) {
    return absl::ResourceExhaustedError(
        absl::StrCat("barrier: ", tickets_.size(),
                     " ranks are already waiting (the limit is ",
                     options_.max_waiters, "); retry later"));
  }
  if (groups_.contains(a.group)) return absl::OkStatus();
  while (static_cast<int>(groups_.size()) >= options_.max_groups) {
    auto oldest = groups_.end();
    for (auto g = groups_.begin(); g != groups_.end(); ++g) {
      if (!g->second.waiting.empty()) continue;
      if (oldest == groups_.end() ||
          g->second.touched < oldest->second.touched) {
        oldest = g;
      }
    }
    if (oldest == groups_.end()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("barrier: ", groups_.size(),
                       " groups have waiting ranks (the limit is ",
                       options_.max_groups, " groups); retry later"));
    }
    groups_.erase(oldest);
  }
  return absl::OkStatus();
}

void ArrivalTable::CollectGarbage(absl::Time now) {
  for (auto g = groups_.begin(); g != groups_.end();) {
    Group& group = g->second;
    int finished = 0;
    for (auto& [number, epoch] : group.epochs) {
      if (epoch.state != State::kOpen) ++finished;
    }
    for (auto e = group.epochs.begin(); e != group.epochs.end();) {
      const Epoch& epoch = e->second;
      const bool old = epoch.state != State::kOpen &&
                       (epoch.finished + options_.retention <= now ||
                        finished > options_.max_finished_epochs_per_group);
      if (old) {
        --finished;
        e = group.epochs.erase(e);
      } else {
        ++e;
      }
    }
    if (group.epochs.empty() && group.waiting.empty() &&
        group.touched + options_.retention <= now) {
      g = groups_.erase(g);
    } else {
      ++g;
    }
  }
}

std::optional<absl::Time> ArrivalTable::NextDeadline() {
  absl::MutexLock lock(&mu_);
  std::optional<absl::Time> next;
  for (const auto& [name, group] : groups_) {
    for (const auto& [number, epoch] : group.epochs) {
      if (epoch.state != State::kOpen) continue;
      if (!next.has_value() || epoch.deadline < *next) next = epoch.deadline;
    }
  }
  return next;
}

void ArrivalTable::FailAll(const absl::Status& status) {
  const absl::Time now = clock_->MonotonicNow();
  std::vector<Reply> replies;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, group] : groups_) {
      for (auto& [number, epoch] : group.epochs) {
        for (Waiter& w : epoch.waiters) {
          replies.push_back(
              {std::move(w.done), {status, number, now - w.arrived}});
        }
      }
    }
    groups_.clear();
    tickets_.clear();
  }
  for (Reply& reply : replies) reply.done(reply.outcome);
}

int ArrivalTable::waiting_ranks() {
  absl::MutexLock lock(&mu_);
  return tickets_.size();
}

int ArrivalTable::remembered_epochs() {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [name, group] : groups_) n += group.epochs.size();
  return n;
}

}  // namespace tpjit
