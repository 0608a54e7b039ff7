#include "daemon/job.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "src/common/digest.h"
#include "src/compile/kernel_source.h"

namespace tpjit {
namespace {

using tpjit::v1::Manifest;
using tpjit::v1::WarmupProgress;

}  // namespace

Job::Job(std::string id, tpjit::v1::WarmupSpec spec, Plan plan, Clock* clock)
    : id_(std::move(id)),
      spec_(std::move(spec)),
      plan_(std::move(plan)),
      clock_(clock),
      start_(clock->Now()) {}

absl::Status Job::Start(const Toolchain& toolchain, Scheduler* scheduler,
                        double timeout_seconds) {
  std::vector<std::shared_ptr<CompileTask>> tasks;
  {
    absl::MutexLock lock(&mu_);
    kernels_.resize(plan_.kernels.size());
    for (size_t i = 0; i < plan_.kernels.size(); ++i) {
      const PlannedKernel& pk = plan_.kernels[i];
      auto source = MakeKernelSource(pk.spec);
      if (!source.ok()) return source.status();
      auto task = std::make_shared<CompileTask>();
      task->key = KernelKey(pk.spec, source->family_digest, toolchain);
      task->label = ToString(pk.spec);
      task->cost = pk.est_compile_seconds;
      task->timeout_seconds = timeout_seconds;
      auto& req = task->request;
      req.set_kind(tpjit::v1::WorkerRequest::NVRTC);
      req.set_source_name(source->source_name);
      req.set_source(source->source);
      for (const auto& [name, content] : source->headers) {
        auto* h = req.add_headers();
        h->set_name(name);
        h->set_content(content);
      }
      req.add_name_expressions(source->name_expression);
      for (const auto& o : toolchain.options) req.add_options(o);
      std::weak_ptr<Job> weak = weak_from_this();
      task->done = [weak, i](TaskOutcome outcome) {
        if (auto job = weak.lock()) {
          job->OnKernelDone(static_cast<int>(i), std::move(outcome));
        }
      };
      kernels_[i].key = task->key;
      kernels_[i].label = task->label;
      tasks.push_back(std::move(task));
    }
    if (tasks.empty()) Finish();
  }
  scheduler->Submit(std::move(tasks));
  return absl::OkStatus();
}

void Job::Attach(JobListener* listener, int rank, int world,
                 const std::string& group) {
  absl::MutexLock lock(&mu_);
  // Bounded: past kMaxRememberedRanks (group, rank) pairs a rank is served
  // but not remembered for the barrier's late-rank report.
  if (ranks_.size() < kMaxRememberedRanks) ranks_.insert({group, rank});
  (void)world;
  if (finished_) {
    // A rank that comes after the end was served entirely from the job's
    // results: for it, every kernel is a hit and nothing was compiled.
    tpjit::v1::WarmupSummary late = summary_;
    late.set_compiled(0);
    late.set_cache_hits(static_cast<int>(kernels_.size()) - failed_);
    late.set_wall_seconds(0);
    late.set_compile_cpu_seconds(0);
    listener->OnFinished(status_, manifest_, late);
    return;
  }
  listeners_.push_back(listener);
  listener->OnProgress(ProgressLocked());
}

void Job::Detach(JobListener* listener) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), listener),
                   listeners_.end());
}

bool Job::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

absl::Time Job::finished_at() const {
  absl::MutexLock lock(&mu_);
  return finished_at_;
}

bool Job::failed() const {
  absl::MutexLock lock(&mu_);
  return finished_ && !status_.ok();
}

WarmupProgress Job::ProgressLocked() const {
  WarmupProgress p;
  p.set_job_id(id_);
  p.set_total(static_cast<int>(kernels_.size()));
  p.set_done(done_);
  p.set_cache_hits(hits_);
  p.set_compiled(compiled_);
  p.set_failed(failed_);
  p.set_last_kernel(last_kernel_);
  p.set_elapsed_seconds(absl::ToDoubleSeconds(clock_->Now() - start_));
  p.set_phase(!finished_ ? "compiling" : (status_.ok() ? "done" : "failed"));
  return p;
}

void Job::OnKernelDone(int index, TaskOutcome outcome) {
  absl::MutexLock lock(&mu_);
  KernelState& k = kernels_[index];
  if (k.done || finished_) return;
  k.done = true;
  ++done_;
  last_kernel_ = k.label;
  if (!outcome.status.ok()) {
    ++failed_;
    if (status_.ok()) {
      status_ = absl::Status(
          outcome.status.code(),
          absl::StrCat("kernel ", k.label, " (key ", k.key.substr(0, 12),
                       ") failed: ", outcome.status.message(),
                       outcome.log.empty() ? "" : "\n", outcome.log));
    }
  } else if (outcome.cache_hit) {
    ++hits_;
  } else {
    ++compiled_;
    cpu_seconds_ += outcome.cpu_seconds;
  }
  k.outcome = std::move(outcome);
  if (done_ == static_cast<int>(kernels_.size())) {
    Finish();
    return;
  }
  WarmupProgress p = ProgressLocked();
  for (JobListener* l : listeners_) l->OnProgress(p);
}

Manifest Job::BuildManifest() const {
  std::vector<KernelBuild> builds(kernels_.size());
  for (size_t i = 0; i < kernels_.size(); ++i) {
    const TaskOutcome& o = kernels_[i].outcome;
    KernelBuild& b = builds[i];
    b.key = kernels_[i].key;
    b.cubin = o.cubin;
    if (!o.lowered_names.empty()) b.lowered_name = o.lowered_names[0];
    b.load_checked = o.load_checked;
    if (!o.attributes.empty()) b.attributes = o.attributes[0];
  }
  return tpjit::BuildManifest(plan_, builds);
}

void Job::Finish() {
  finished_ = true;
  if (status_.ok()) manifest_ = BuildManifest();
  summary_.set_manifest_digest(manifest_.digest());
  summary_.set_distinct_kernels(static_cast<int>(kernels_.size()));
  summary_.set_compiled(compiled_);
  summary_.set_cache_hits(hits_);
  finished_at_ = clock_->Now();
  summary_.set_wall_seconds(absl::ToDoubleSeconds(finished_at_ - start_));
  summary_.set_compile_cpu_seconds(cpu_seconds_);
  for (JobListener* l : listeners_) l->OnFinished(status_, manifest_, summary_);
  listeners_.clear();
}

tpjit::v1::JobStatus Job::Status() const {
  absl::MutexLock lock(&mu_);
  tpjit::v1::JobStatus s;
  s.set_job_id(id_);
  s.set_spec_name(spec_.name());
  *s.mutable_progress() = ProgressLocked();
  s.set_attached_ranks(static_cast<int>(ranks_.size()));
  if (!status_.ok()) s.set_error(std::string(status_.message()));
  return s;
}

std::string Job::RankProgress(const std::string& group, int rank) const {
  absl::MutexLock lock(&mu_);
  if (!ranks_.count({group, rank})) return "";
  WarmupProgress p = ProgressLocked();
  return absl::StrCat("warm-up ", p.phase(), " ", p.done(), "/", p.total(),
                      " kernels (job ", id_.substr(0, 12), ")");
}

std::optional<std::string> Job::Cubin(const std::string& key) const {
  absl::MutexLock lock(&mu_);
  for (const KernelState& k : kernels_) {
    if (k.key == key && k.done && k.outcome.status.ok()) return k.outcome.cubin;
  }
  return std::nullopt;
}

}  // namespace tpjit
