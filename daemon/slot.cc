#include "daemon/slot.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "daemon/cubin_check.h"
#include "src/cache/kernel_entry.h"

namespace tpjit {
namespace {

constexpr int kMaxAttempts = 2;

}  // namespace

Slot::Slot(SlotOptions options, const SlotDeps& deps)
    : options_(std::move(options)),
      scheduler_(deps.scheduler),
      store_(deps.store),
      launcher_(deps.launcher),
      counters_(deps.counters),
      clock_(deps.clock),
      logger_(deps.logger) {}

Slot::~Slot() { Stop(); }

absl::Status Slot::Start() {
  {
    absl::MutexLock lock(&mu_);
    procs_.resize(options_.procs);
  }
  for (int p = 0; p < options_.procs; ++p) {
    absl::Status s = Restart(p);
    if (!s.ok()) return s;
  }
  if (options_.gpu >= 0) {
    auto checker = launcher_->Launch(
        {options_.worker_binary, "--load-check", absl::StrCat(options_.gpu)},
        options_.worker_env);
    if (!checker.ok()) return checker.status();
    absl::MutexLock lock(&checker_mu_);
    checker_ = std::move(*checker);
  }
  for (int p = 0; p < options_.procs; ++p) {
    threads_.emplace_back([this, p] { Run(p); });
  }
  if (options_.gpu >= 0) {
    threads_.emplace_back([this] { PrimeChecker(); });
  } else {
    checker_primed_.store(true);
  }
  return absl::OkStatus();
}

bool Slot::Started() const { return Starting().empty(); }

std::string Slot::Starting() const {
  if (primed_.load() == 0 && options_.procs > 0) {
    return "compile workers still starting";
  }
  if (!checker_primed_.load()) {
    return absl::StrCat("the load-checker of GPU ", options_.gpu,
                        " is still making its CUDA context");
  }
  return "";
}

void Slot::Stop() {
  stopping_.store(true);
  {
    absl::MutexLock lock(&mu_);
    // Unblock threads waiting on a child; each thread reaps its own.
    for (Proc& p : procs_) {
      if (p.child) p.child->Interrupt();
    }
  }
  // A load check in flight holds check_mu_, not checker_mu_.
  std::shared_ptr<ChildProcess> checker;
  {
    absl::MutexLock lock(&checker_mu_);
    checker = checker_;
  }
  if (checker) checker->Interrupt();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  absl::MutexLock lock(&mu_);
  for (Proc& p : procs_) {
    if (p.child) p.child->Kill();
  }
  absl::MutexLock check_lock(&check_mu_);
  absl::MutexLock checker_lock(&checker_mu_);
  if (checker_) checker_->Kill();
}

absl::Status Slot::Restart(int proc) {
  auto child = launcher_->Launch({options_.worker_binary}, options_.worker_env);
  absl::MutexLock lock(&mu_);
  if (procs_[proc].child) procs_[proc].child->Kill();
  procs_[proc].child.reset();
  if (!child.ok()) return child.status();
  procs_[proc].child = std::move(*child);
  return absl::OkStatus();
}

void Slot::Run(int proc) {
  Prime(proc);
  primed_.fetch_add(1);
  while (auto task = scheduler_->Take(options_.index)) {
    Execute(*task, proc, task);
  }
}

// A worker's first NVRTC compile pays for loading the compiler; do it at
// start-up (the daemon starts before the server needs kernels).
void Slot::Prime(int proc) {
  ChildProcess* child;
  {
    absl::MutexLock lock(&mu_);
    child = procs_[proc].child.get();
  }
  if (child && !SelfTest(*child, absl::StrCat("worker ", proc)) &&
      !stopping_.load()) {
    ReplaceWorker(proc);
  }
}

void Slot::ReplaceWorker(int proc) {
  restarts_.fetch_add(1);
  counters_->worker_restarts.fetch_add(1);
  absl::Status restarted = stopping_.load()
                               ? absl::CancelledError("slot is stopping")
                               : Restart(proc);
  if (!restarted.ok()) {
    logger_->Log(
        absl::StrCat("slot ", options_.index,
                     ": cannot restart worker: ", restarted.ToString()));
  }
}

// The load-checker's context, made before the first check needs it; checks
// wait behind it (check_mu_).
void Slot::PrimeChecker() {
  absl::MutexLock lock(&check_mu_);
  std::shared_ptr<ChildProcess> checker;
  {
    absl::MutexLock ref(&checker_mu_);
    checker = checker_;
  }
  if (checker && !SelfTest(*checker, absl::StrCat("the load-checker of GPU ",
                                                  options_.gpu))) {
    ReplaceChecker();
  }
  checker_primed_.store(true);
}

bool Slot::SelfTest(ChildProcess& child, absl::string_view who) {
  tpjit::v1::WorkerRequest req;
  req.set_kind(tpjit::v1::WorkerRequest::SELF_TEST);
  auto resp = child.Call(req, clock_->Now() + absl::Seconds(60));
  if (!resp.ok() || !resp->ok()) {
    logger_->Log(absl::StrCat(
        "slot ", options_.index, " ", who, " failed its self-test: ",
        resp.ok() ? resp->error() : resp.status().ToString()));
  }
  return resp.ok();
}

void Slot::ReplaceChecker() {
  std::shared_ptr<ChildProcess> old;
  {
    absl::MutexLock ref(&checker_mu_);
    old = checker_;
  }
  if (old) old->Kill();
  std::shared_ptr<ChildProcess> again;
  if (!stopping_.load()) {
    auto launched = launcher_->Launch(
        {options_.worker_binary, "--load-check", absl::StrCat(options_.gpu)},
        options_.worker_env);
    if (launched.ok()) again = std::move(*launched);
  }
  absl::MutexLock ref(&checker_mu_);
  checker_ = std::move(again);
}

// A hit is served only after CheckCachedCubin (daemon/cubin_check.h; PTX:
// a text check) and `load_check` when given (a slot's GPU); nothing in the
// entry's metadata but the symbol names, dependencies and log is used, and
// the names are checked against the ELF.
bool ServeFromCache(
    Store& store, DaemonCounters& counters, Logger& logger, CompileTask& task,
    int slot,
    const std::function<void(const CompileTask&, TaskOutcome&)>& load_check) {
  std::optional<CacheEntry> stored = store.Get(task.key);
  if (!stored) return false;
  KernelEntry entry = FromCacheEntry(std::move(*stored));
  if (task.accept_dependencies &&
      !task.accept_dependencies(entry.dependencies)) {
    return false;  // the headers changed: compile again, replacing it
  }
  TaskOutcome outcome;
  outcome.dependencies = std::move(entry.dependencies);
  outcome.cache_hit = true;
  outcome.slot = slot;
  outcome.cubin = std::move(entry.cubin);
  outcome.log = std::move(entry.log);
  outcome.lowered_names = std::move(entry.lowered_names);
  absl::Status elf =
      task.request.ptx()
          ? CheckCachedPtx(outcome.cubin)
          : CheckCachedCubin(outcome.cubin, task.request.arch(),
                             outcome.lowered_names, &outcome.attributes);
  if (elf.ok() && load_check && !task.request.ptx()) {
    load_check(task, outcome);
  }
  if (!elf.ok() || !outcome.status.ok()) {
    counters.cache_rejects.fetch_add(1);
    logger.Log(absl::StrCat("slot ", slot, ": cache entry of ", task.label,
                            " refused, compiling it again: ",
                            (elf.ok() ? outcome.status : elf).ToString()));
    return false;
  }
  counters.cache_hits.fetch_add(1);
  task.done(std::move(outcome));
  return true;
}

KernelEntry ToKernelEntry(const CompileTask& task, const TaskOutcome& outcome) {
  KernelEntry k;
  k.cubin = outcome.cubin;
  k.label = task.label;
  k.lowered_names = outcome.lowered_names;
  k.compile_seconds = outcome.compile_seconds;
  k.load_checked = outcome.load_checked;
  k.log = outcome.log;  // warnings, for callers served from cache
  k.dependencies = outcome.dependencies;
  if (!outcome.attributes.empty()) {
    const auto& a = outcome.attributes.front();
    k.attributes = KernelAttributesSummary{a.registers(), a.local_bytes(),
                                           a.static_smem_bytes()};
  }
  return k;
}

bool Slot::FromCache(CompileTask& task, int proc) {
  std::function<void(const CompileTask&, TaskOutcome&)> check;
  if (options_.gpu >= 0) {
    check = [this](const CompileTask& t, TaskOutcome& o) { LoadCheck(t, o); };
  }
  const absl::Time start = clock_->Now();
  const bool served = ServeFromCache(*store_, *counters_, *logger_, task,
                                     options_.index, check);
  if (served && options_.trace) {
    Trace(proc, "served", task,
          absl::StrFormat("from the cache (read and check %.3f s)",
                          absl::ToDoubleSeconds(clock_->Now() - start)));
  }
  return served;
}

void Slot::LoadCheck(const CompileTask& task, TaskOutcome& outcome) {
  absl::MutexLock lock(&check_mu_);
  std::shared_ptr<ChildProcess> checker;
  {
    absl::MutexLock ref(&checker_mu_);
    checker = checker_;
  }
  if (!checker) return;
  tpjit::v1::WorkerRequest req;
  req.set_kind(tpjit::v1::WorkerRequest::LOAD_CHECK);
  req.set_cubin(outcome.cubin);
  for (const auto& s : outcome.lowered_names) req.add_symbols(s);
  auto resp = checker->Call(req, clock_->Now() + absl::Seconds(60));
  if (!resp.ok() || !resp->ok()) {
    logger_->Log(absl::StrCat(
        "slot ", options_.index, ": load check of ", task.label,
        " failed: ", resp.ok() ? resp->error() : resp.status().ToString()));
    if (!resp.ok()) {
      ReplaceChecker();
    } else {
      outcome.status = absl::InternalError(
          absl::StrCat("cubin of ", task.label, " does not load on GPU ",
                       options_.gpu, ": ", resp->error()));
    }
    return;
  }
  outcome.load_checked = true;
  outcome.attributes.assign(resp->attributes().begin(),
                            resp->attributes().end());
}

void Slot::Execute(CompileTask& task, int proc,
                   std::shared_ptr<CompileTask> self) {
  if (FromCache(task, proc)) return;
  // Being compiled elsewhere (another node of the fleet): other work first,
  // once; by the time it comes back, its entry has usually been published.
  if (task.deferrals == 0 && store_->LeasedElsewhere(task.key)) {
    ++task.deferrals;
    scheduler_->Submit({std::move(self)});
    return;
  }
  const absl::Time taken = clock_->Now();
  std::unique_ptr<StoreLease> lease = store_->AcquireOrWait(
      task.key, clock_->Now() + absl::Seconds(2 * task.timeout_seconds + 10));
  if (!lease && FromCache(task, proc)) return;
  const absl::Time leased = clock_->Now();
  counters_->cache_misses.fetch_add(1);
  ChildProcess* child;
  {
    absl::MutexLock lock(&mu_);
    child = procs_[proc].child.get();
    procs_[proc].busy = true;
  }
  absl::StatusOr<tpjit::v1::WorkerResponse> resp =
      child ? child->Call(task.request,
                          clock_->Now() + absl::Seconds(task.timeout_seconds))
            : absl::UnavailableError("worker is not running");
  {
    absl::MutexLock lock(&mu_);
    procs_[proc].busy = false;
    if (resp.ok()) procs_[proc].max_rss = resp->max_rss_bytes();
  }
  if (!resp.ok()) {  // crash or time-out: restart the worker, retry elsewhere
    logger_->Log(absl::StrCat("slot ", options_.index, " worker ", proc, ": ",
                              resp.status().message(), " while compiling ",
                              task.label, "; restarting it"));
    ReplaceWorker(proc);
    lease.reset();
    task.last_slot = options_.index;
    if (++task.attempts < kMaxAttempts) {
      scheduler_->Requeue(std::move(self), options_.index);
      return;
    }
    counters_->compile_failures.fetch_add(1);
    TaskOutcome failed;
    failed.slot = options_.index;
    failed.status = absl::InternalError(
        absl::StrCat(task.label, " failed ", task.attempts,
                     " times; last: ", resp.status().message()));
    task.done(std::move(failed));
    return;
  }
  TaskOutcome outcome;
  outcome.slot = options_.index;
  outcome.log = resp->log();
  outcome.exit_code = resp->exit_code();
  outcome.dependencies.assign(resp->dependencies().begin(),
                              resp->dependencies().end());
  if (!resp->ok()) {  // a compile error is deterministic: no retry
    Trace(proc, "failed", task, absl::StrCat("exit ", resp->exit_code()));
    counters_->compile_failures.fetch_add(1);
    outcome.status = absl::InvalidArgumentError(
        absl::StrCat("compiling ", task.label, ": ", resp->error()));
    outcome.log = resp->error();
    task.done(std::move(outcome));
    return;
  }
  outcome.cubin = resp->cubin();
  outcome.lowered_names.assign(resp->lowered_names().begin(),
                               resp->lowered_names().end());
  outcome.compile_seconds = resp->wall_seconds();
  outcome.cpu_seconds = resp->cpu_seconds();
  counters_->RecordCompile(resp->wall_seconds());
  compiled_.fetch_add(1);
  const absl::Time compiled = clock_->Now();
  if (!task.request.ptx()) LoadCheck(task, outcome);  // PTX: not a cubin
  const absl::Time checked = clock_->Now();
  if (!outcome.load_checked && !task.request.ptx()) {
    // No GPU check: the ELF's static attributes, as a later hit reports
    // them, so cold and warm manifests of a spec are the same bytes.
    std::vector<tpjit::v1::KernelAttributes> elf;
    if (CheckCachedCubin(outcome.cubin, task.request.arch(),
                         outcome.lowered_names, &elf)
            .ok()) {
      outcome.attributes = std::move(elf);
    }
  }
  if (outcome.status.ok()) {
    store_->Put(ToCacheEntry(task.key, ToKernelEntry(task, outcome)))
        .IgnoreError();  // logged and counted by the store
  }
  if (options_.trace) {
    auto since = [](absl::Time a, absl::Time b) {
      return absl::StrFormat("%.3f", absl::ToDoubleSeconds(b - a));
    };
    Trace(proc, "compiled", task,
          absl::StrCat(
              "queued ",
              task.created == absl::Time() ? "?" : since(task.created, taken),
              " s, lease ", since(taken, leased), " s, compile ",
              since(leased, compiled), " s (nvcc/nvrtc ",
              absl::StrFormat("%.3f", resp->wall_seconds()), " s), load check ",
              since(compiled, checked), " s, publish ",
              since(checked, clock_->Now()), " s"));
  }
  lease.reset();
  task.done(std::move(outcome));
}

void Slot::Trace(int proc, absl::string_view what, const CompileTask& task,
                 absl::string_view detail) {
  if (!options_.trace) return;
  logger_->Log(absl::StrCat(
      "trace: ",
      absl::StrFormat(
          "%.3f", absl::ToDoubleSeconds(clock_->Now() - options_.trace_epoch)),
      " slot ", options_.index, " proc ", proc, " ", what, " ",
      task.key.substr(0, 12), " ", task.label, ": ", detail));
}

int Slot::ProcsAlive() const {
  absl::MutexLock lock(&mu_);
  int alive = 0;
  for (const Proc& p : procs_) alive += (p.child && p.child->pid() > 0);
  return alive;
}

std::vector<int> Slot::WorkerPids() const {
  absl::MutexLock lock(&mu_);
  std::vector<int> pids;
  for (const Proc& p : procs_) pids.push_back(p.child ? p.child->pid() : -1);
  return pids;
}

tpjit::v1::SlotStatus Slot::Status() const {
  tpjit::v1::SlotStatus s;
  s.set_slot(options_.index);
  s.set_gpu(options_.gpu);
  s.set_compiled(compiled_.load());
  s.set_restarts(restarts_.load());
  s.set_queued(scheduler_->Queued(options_.index));
  absl::MutexLock lock(&mu_);
  int alive = 0, busy = 0;
  int64_t rss = 0;
  for (const Proc& p : procs_) {
    alive += (p.child && p.child->pid() > 0);
    busy += p.busy;
    rss += p.max_rss;
  }
  s.set_procs_alive(alive);
  s.set_busy(busy);
  s.set_rss_bytes(rss);
  return s;
}

}  // namespace tpjit
