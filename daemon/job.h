// A warm-up job: one per plan digest (single flight). Created by the first
// rank's Warmup call; later calls with the same plan attach. It turns the
// plan's distinct kernels into compile tasks, follows their outcomes, streams
// progress to every attached listener and ends with one manifest that every
// rank receives (identical bytes). Thread-safe.
#ifndef TPJIT_DAEMON_JOB_H_
#define TPJIT_DAEMON_JOB_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "daemon/scheduler.h"
#include "src/common/clock.h"
#include "src/compile/kernel_key.h"
#include "src/plan/manifest.h"
#include "src/plan/planner.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

// Receives a job's events. Calls come from slot threads and must not block.
class JobListener {
 public:
  virtual ~JobListener() = default;
  virtual void OnProgress(const tpjit::v1::WarmupProgress& progress) = 0;
  // The last call: the manifest (status OK) or the job's error.
  virtual void OnFinished(const absl::Status& status,
                          const tpjit::v1::Manifest& manifest,
                          const tpjit::v1::WarmupSummary& summary) = 0;
};

class Job : public std::enable_shared_from_this<Job> {
 public:
  // `clock` (must outlive the job) times the progress, the summary and
  // finished_at(); the job starts now.
  Job(std::string id, tpjit::v1::WarmupSpec spec, Plan plan, Clock* clock);

  // Builds one task per kernel (source, key) and submits them.
  absl::Status Start(const Toolchain& toolchain, Scheduler* scheduler,
                     double timeout_seconds);
  // Adds a listener; it first receives the current progress, and at once the
  // final event when the job has already finished. The listener must outlive
  // the job or be removed with Detach.
  void Attach(JobListener* listener, int rank, int world,
              const std::string& group);
  void Detach(JobListener* listener);

  const std::string& id() const { return id_; }
  bool finished() const;
  // When the job finished (on its clock); InfiniteFuture while it runs.
  absl::Time finished_at() const;
  bool failed() const;
  tpjit::v1::JobStatus Status() const;
  // Last known state of `rank`, for the barrier's late-rank report.
  std::string RankProgress(const std::string& group, int rank) const;
  // The cubin of `key` if this job holds it.
  std::optional<std::string> Cubin(const std::string& key) const;

 private:
  struct KernelState {
    std::string key;
    std::string label;
    bool done = false;
    TaskOutcome outcome;
  };
  void OnKernelDone(int index, TaskOutcome outcome);
  void Finish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  tpjit::v1::WarmupProgress ProgressLocked() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  tpjit::v1::Manifest BuildManifest() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string id_;
  const tpjit::v1::WarmupSpec spec_;
  const Plan plan_;
  Clock* const clock_;
  const absl::Time start_;
  mutable absl::Mutex mu_;
  std::vector<KernelState> kernels_ ABSL_GUARDED_BY(mu_);
  int done_ ABSL_GUARDED_BY(mu_) = 0;
  int hits_ ABSL_GUARDED_BY(mu_) = 0;
  int compiled_ ABSL_GUARDED_BY(mu_) = 0;
  int failed_ ABSL_GUARDED_BY(mu_) = 0;
  double cpu_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_kernel_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time finished_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  tpjit::v1::Manifest manifest_ ABSL_GUARDED_BY(mu_);
  tpjit::v1::WarmupSummary summary_ ABSL_GUARDED_BY(mu_);
  std::vector<JobListener*> listeners_ ABSL_GUARDED_BY(mu_);
  static constexpr size_t kMaxRememberedRanks = 4096;
  std::set<std::pair<std::string, int>> ranks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tpjit

#endif  // TPJIT_DAEMON_JOB_H_
