// A small pool of threads with a bounded queue, for work that must not run
// on gRPC reaction threads (planning warm-ups, preparing generic compiles).
// Closures run in FIFO order; TryPost refuses work when `max_queued`
// closures already wait, so one client cannot queue unbounded work. The
// destructor runs what is queued, then joins. Thread-safe.
#ifndef TPJIT_DAEMON_EXECUTOR_H_
#define TPJIT_DAEMON_EXECUTOR_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <limits>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tpjit {

class Executor {
 public:
  explicit Executor(int threads,
                    size_t max_queued = std::numeric_limits<size_t>::max())
      : max_queued_(max_queued) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~Executor() {
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    for (auto& t : threads_) t.join();
  }
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  // Queues `fn` unless max_queued closures are already waiting (then `fn` is
  // dropped and false is returned).
  bool TryPost(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    if (queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(fn));
    return true;
  }
  // Queues `fn` regardless of the bound.
  void Post(std::function<void()> fn) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(std::move(fn));
  }
  // Closures waiting for a thread (not counting those running).
  size_t queued() {
    absl::MutexLock lock(&mu_);
    return queue_.size();
  }
  size_t max_queued() const { return max_queued_; }

 private:
  void Run() {
    while (true) {
      std::function<void()> fn;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
          return stop_ || !queue_.empty();
        };
        mu_.Await(absl::Condition(&ready));
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_EXECUTOR_H_
