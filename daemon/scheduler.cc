#include "daemon/scheduler.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "src/plan/sharder.h"

namespace tpjit {
namespace {

void FailAll(std::vector<std::shared_ptr<CompileTask>> tasks) {
  for (const auto& task : tasks) {
    TaskOutcome outcome;
    outcome.status = absl::UnavailableError(
        absl::StrCat(task->label, ": tpjitd is shutting down"));
    if (task->done) task->done(std::move(outcome));
  }
}

}  // namespace

Scheduler::Scheduler(int slots)
    : queues_(std::max(1, slots)), queued_cost_(std::max(1, slots), 0.0) {}

void Scheduler::Submit(std::vector<std::shared_ptr<CompileTask>> tasks) {
  std::vector<double> costs;
  for (const auto& t : tasks) costs.push_back(std::max(0.0, t->cost));
  absl::ReleasableMutexLock lock(&mu_);
  if (shutdown_) {
    lock.Release();
    FailAll(std::move(tasks));
    return;
  }
  auto shards = ShardByCost(costs, slots());
  for (int s = 0; s < slots(); ++s) {
    for (int index : shards->members[s]) {
      queues_[s].push_back(tasks[index]);
      queued_cost_[s] += costs[index];
    }
  }
  cv_.SignalAll();
}

void Scheduler::Requeue(std::shared_ptr<CompileTask> task, int avoid_slot) {
  absl::ReleasableMutexLock lock(&mu_);
  if (shutdown_) {
    lock.Release();
    FailAll({std::move(task)});
    return;
  }
  int best = -1;
  for (int s = 0; s < slots(); ++s) {
    if (s == avoid_slot && slots() > 1) continue;
    if (best < 0 || queued_cost_[s] < queued_cost_[best]) best = s;
  }
  queued_cost_[best] += task->cost;
  queues_[best].push_front(std::move(task));
  cv_.SignalAll();
}

std::shared_ptr<CompileTask> Scheduler::TakeLocked(int slot) {
  auto pop = [&](int s, bool front) {
    auto& q = queues_[s];
    auto task = front ? q.front() : q.back();
    front ? q.pop_front() : q.pop_back();
    queued_cost_[s] = q.empty() ? 0.0 : queued_cost_[s] - task->cost;
    return task;
  };
  if (!queues_[slot].empty()) return pop(slot, true);
  int victim = -1;
  for (int s = 0; s < slots(); ++s) {
    if (queues_[s].empty()) continue;
    if (victim < 0 || queued_cost_[s] > queued_cost_[victim]) victim = s;
  }
  if (victim < 0) return nullptr;
  ++steals_;
  return pop(victim, false);
}

std::shared_ptr<CompileTask> Scheduler::Take(int slot) {
  absl::MutexLock lock(&mu_);
  while (!shutdown_) {
    if (auto task = TakeLocked(slot)) return task;
    cv_.Wait(&mu_);
  }
  return nullptr;
}

std::shared_ptr<CompileTask> Scheduler::TryTake(int slot) {
  absl::MutexLock lock(&mu_);
  return shutdown_ ? nullptr : TakeLocked(slot);
}

void Scheduler::Shutdown() {
  std::vector<std::shared_ptr<CompileTask>> left;
  {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
    for (size_t s = 0; s < queues_.size(); ++s) {
      left.insert(left.end(), queues_[s].begin(), queues_[s].end());
      queues_[s].clear();
      queued_cost_[s] = 0;
    }
    cv_.SignalAll();
  }
  FailAll(std::move(left));
}

int64_t Scheduler::Depth() const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const auto& q : queues_) n += static_cast<int64_t>(q.size());
  return n;
}

int64_t Scheduler::Queued(int slot) const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(queues_[slot].size());
}

int64_t Scheduler::steals() const {
  absl::MutexLock lock(&mu_);
  return steals_;
}

}  // namespace tpjit
