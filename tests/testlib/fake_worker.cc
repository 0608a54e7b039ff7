#include "tests/testlib/fake_worker.h"

#include <algorithm>
#include <atomic>

#include "absl/strings/str_cat.h"
#include "tests/testlib/cubin.h"

namespace tpjit::testing {

class ScriptedWorker final : public ChildProcess {
 public:
  ScriptedWorker(ScriptedLauncher* launcher, int pid, bool load_checker)
      : launcher_(launcher), pid_(pid), load_checker_(load_checker) {}

  absl::StatusOr<tpjit::v1::WorkerResponse> Call(
      const tpjit::v1::WorkerRequest& request, absl::Time deadline) override {
    tpjit::v1::WorkerResponse r;
    r.set_id(request.id());
    if (late_answer_.load()) {
      // The answer of the self-test whose call failed, read by this call:
      // what a real worker's pipe holds after a timed-out call.
      late_answer_.store(false);
      r.set_ok(true);
      r.set_version("fake-nvrtc");
      return r;
    }
    if (request.kind() == tpjit::v1::WorkerRequest::SELF_TEST) {
      absl::MutexLock lock(&launcher_->mu_);
      launcher_->mu_.Await(absl::Condition(this, &ScriptedWorker::MayTest));
      if (launcher_->failing_self_tests_ > 0 && !interrupted_.load()) {
        --launcher_->failing_self_tests_;
        late_answer_.store(true);
        return absl::DeadlineExceededError(
            "fake: the self-test exceeded its time limit");
      }
      if (Held() && !interrupted_.load()) --launcher_->free_self_tests_;
      ++launcher_->self_tests_;
      r.set_ok(true);
      r.set_version("fake-nvrtc");
      return r;
    }
    if (request.kind() == tpjit::v1::WorkerRequest::LOAD_CHECK) {
      r.set_error("fake worker: no GPU");
      return r;
    }
    switch (launcher_->NextAct(deadline)) {
      case WorkerAct::kCompile: {
        const std::string name = request.name_expressions().empty()
                                     ? "fake_kernel"
                                     : request.name_expressions(0);
        r.set_ok(true);
        std::string cubin = TinyCubin(name);
        cubin.resize(std::max(cubin.size(), launcher_->cubin_bytes()));
        r.set_cubin(std::move(cubin));
        r.add_lowered_names(name);
        r.set_wall_seconds(0.01);
        return r;
      }
      case WorkerAct::kCompileError:
        r.set_error("fake: syntax error");
        r.set_exit_code(1);
        return r;
      case WorkerAct::kCrash:
        return absl::UnavailableError(
            absl::StrCat("worker pid ", pid(), " died (killed by signal 11)"));
      case WorkerAct::kHang:
        return absl::DeadlineExceededError(
            absl::StrCat("worker pid ", pid(), " exceeded its time limit"));
      case WorkerAct::kGarbage:  // what the real ChildProcess reports
        return absl::UnavailableError(absl::StrCat(
            "worker pid ", pid(), " answered garbage (not a worker response)"));
      case WorkerAct::kBlock: {
        absl::MutexLock lock(&launcher_->mu_);
        ++launcher_->blocked_;
        launcher_->mu_.Await(absl::Condition(
            +[](std::atomic<bool>* i) { return i->load(); }, &interrupted_));
        --launcher_->blocked_;
        return absl::UnavailableError(
            absl::StrCat("worker pid ", pid(), " died (killed by signal 9)"));
      }
    }
    return absl::InternalError("unreachable");
  }

  void Kill() override {
    {
      absl::MutexLock lock(&launcher_->mu_);
      ++launcher_->kills_;
      interrupted_.store(true);
    }
    pid_ = -1;
  }

  void Interrupt() override {
    absl::MutexLock lock(&launcher_->mu_);
    ++launcher_->interrupts_;
    interrupted_.store(true);
  }

  int pid() const override { return pid_; }

 private:
  bool Held() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(launcher_->mu_) {
    return load_checker_ ? launcher_->hold_checker_self_tests_
                         : launcher_->hold_worker_self_tests_;
  }
  bool MayTest() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(launcher_->mu_) {
    return interrupted_.load() || !Held() || launcher_->free_self_tests_ > 0;
  }

  ScriptedLauncher* const launcher_;
  std::atomic<int> pid_;
  std::atomic<bool> interrupted_{false};
  std::atomic<bool> late_answer_{false};
  const bool load_checker_;
};

void ScriptedLauncher::Script(std::vector<WorkerAct> acts) {
  absl::MutexLock lock(&mu_);
  script_.assign(acts.begin(), acts.end());
}

void ScriptedLauncher::HoldSelfTests(bool workers, bool load_checkers) {
  absl::MutexLock lock(&mu_);
  hold_worker_self_tests_ = workers;
  hold_checker_self_tests_ = load_checkers;
}

int ScriptedLauncher::self_tests() const {
  absl::MutexLock lock(&mu_);
  return self_tests_;
}

void ScriptedLauncher::FailSelfTests(int n) {
  absl::MutexLock lock(&mu_);
  failing_self_tests_ += n;
}

void ScriptedLauncher::PassSelfTests(int n) {
  absl::MutexLock lock(&mu_);
  free_self_tests_ += n;
}

void ScriptedLauncher::SetCubinBytes(size_t bytes) {
  absl::MutexLock lock(&mu_);
  cubin_bytes_ = bytes;
}

size_t ScriptedLauncher::cubin_bytes() const {
  absl::MutexLock lock(&mu_);
  return cubin_bytes_;
}

void ScriptedLauncher::FailLaunches(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_launches_ = fail;
}

int ScriptedLauncher::launches() const {
  absl::MutexLock lock(&mu_);
  return launches_;
}

int ScriptedLauncher::kills() const {
  absl::MutexLock lock(&mu_);
  return kills_;
}

int ScriptedLauncher::interrupts() const {
  absl::MutexLock lock(&mu_);
  return interrupts_;
}

int ScriptedLauncher::compile_calls() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(deadlines_.size());
}

std::vector<absl::Time> ScriptedLauncher::deadlines() const {
  absl::MutexLock lock(&mu_);
  return deadlines_;
}

bool ScriptedLauncher::blocked() const {
  absl::MutexLock lock(&mu_);
  return blocked_ > 0;
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ScriptedLauncher::Launch(
    const std::vector<std::string>& argv, const std::vector<std::string>&) {
  absl::MutexLock lock(&mu_);
  if (fail_launches_) return absl::InternalError("fake: cannot start");
  ++launches_;
  const bool load_checker =
      std::find(argv.begin(), argv.end(), "--load-check") != argv.end();
  // Fake pids far above pid_max: nothing real is ever signalled.
  return std::make_unique<ScriptedWorker>(this, (1 << 30) | launches_,
                                          load_checker);
}

WorkerAct ScriptedLauncher::NextAct(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  deadlines_.push_back(deadline);
  if (script_.empty()) return WorkerAct::kCompile;
  WorkerAct act = script_.front();
  script_.pop_front();
  return act;
}

}  // namespace tpjit::testing
