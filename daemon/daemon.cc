#include "daemon/daemon.h"

#include <algorithm>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "daemon/generic_compile.h"
#include "daemon/slot.h"
#include "daemon/stores.h"
#include "src/common/digest.h"
#include "src/common/request_limits.h"
#include "src/common/status_macros.h"
#include "src/compile/cubin.h"
#include "src/compile/kernel_source.h"
#include "src/cuda/gpu_probe.h"
#include "src/plan/spec.h"

namespace tpjit {
namespace {

using tpjit::v1::CompileResponse;

// The daemon's edge for a warm-up: everything below (planning, the job)
// takes the request as valid and does not check it again.
absl::Status ValidateWarmupRequest(const tpjit::v1::WarmupRequest& r) {
  TPJIT_RETURN_IF_ERROR(CheckRankWorld(r.rank(), r.world()));
  TPJIT_RETURN_IF_ERROR(CheckName("group", r.group()));
  if (absl::Status s = ValidateSpec(r.spec()); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("spec.", s.message()));
  }
  return absl::OkStatus();
}

}  // namespace

Daemon::Daemon(DaemonConfig config, DaemonDeps deps)
    : config_(std::move(config)), deps_(std::move(deps)) {}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(DaemonConfig config,
                                                       DaemonDeps deps) {
  std::unique_ptr<Daemon> d(new Daemon(std::move(config), std::move(deps)));
  if (!d->deps_.store) {
    auto store = OpenDaemonStore(d->config_);
    if (!store.ok()) return store.status();
    d->deps_.store = std::move(*store);
  }
  d->gpus_ = d->config_.gpus >= 0 ? d->config_.gpus
                                  : (d->deps_.gpu_count ? d->deps_.gpu_count()
                                                        : DetectGpuCount());
  int cpus = d->deps_.cpu_count > 0
                 ? d->deps_.cpu_count
                 : static_cast<int>(std::thread::hardware_concurrency());
  if (d->config_.slots == 0) d->config_.slots = std::max(1, d->gpus_);
  if (d->config_.procs == 0) {
    d->config_.procs = std::max(1, cpus / d->config_.slots);
  }
  d->started_ = d->deps_.clock->Now();
  d->OpenRecipes();
  d->plan_pool_ = std::make_unique<Executor>(d->config_.plan_threads,
                                             d->config_.max_queued_plans);
  d->prepare_pool_ = std::make_unique<Executor>(d->config_.prepare_threads,
                                                d->config_.max_queued_prepares);
  d->read_pool_ = std::make_unique<Executor>(2, kMaxQueuedReads);
  return d;
}

Daemon::~Daemon() { Stop(); }

void Daemon::OpenRecipes() {
  const std::string dir = deps_.store->dir();
  RecipeBookOptions options;
  options.remote = RemoteRecipeStore(*deps_.store);  // shared via Redis
  auto book = dir.empty() ? absl::InvalidArgumentError("no cache directory")
                          : RecipeBook::Open(dir, options);
  if (!book.ok()) {
    deps_.logger->Log(absl::StrCat("recipes off: ", book.status().message()));
    return;
  }
  RecipesDeps deps;
  deps.book = std::move(*book);
  deps.compile = [this](const tpjit::v1::CompileRequest& r, CompileDone done) {
    Compile(r, std::move(done));
  };
  deps.cached = [this](const std::string& key) {
    return deps_.store->Get(key).has_value();
  };
  deps.clock = deps_.clock;
  deps.logger = deps_.logger;
  recipes_ = std::make_unique<Recipes>(std::move(deps));
}

absl::Status Daemon::SelfTest() {
  auto worker = deps_.launcher->Launch({config_.worker_binary}, {});
  if (!worker.ok()) return worker.status();
  tpjit::v1::WorkerRequest req;
  req.set_kind(tpjit::v1::WorkerRequest::SELF_TEST);
  auto resp = (*worker)->Call(req, deps_.clock->Now() + absl::Seconds(60));
  (*worker)->Kill();
  if (!resp.ok()) return resp.status();
  if (!resp->ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("NVRTC self-test failed: ", resp->error()));
  }
  nvrtc_version_ = resp->version();
  return absl::OkStatus();
}

absl::Status Daemon::Start() {
  absl::Status st = SelfTest();
  if (!st.ok()) return st;
  toolchain_.nvrtc_version = nvrtc_version_;
  toolchain_.salt = config_.salt;
  scheduler_ = std::make_unique<Scheduler>(config_.slots);
  for (int s = 0; s < config_.slots; ++s) {
    SlotOptions o;
    o.index = s;
    o.gpu = s < gpus_ ? s : -1;
    o.procs = config_.procs;
    o.worker_binary = config_.worker_binary;
    o.trace = config_.trace_compiles;
    o.trace_epoch = started_;
    // NVRTC 13 also caches in the CUDA driver's compute cache when a driver
    // is present; tpjit's own cache is the one that counts, so workers
    // compile for real and stay away from the driver.
    o.worker_env = {"CUDA_CACHE_DISABLE=1",
                    absl::StrCat("TPJIT_WORKER_MEMORY_LIMIT=",
                                 config_.compile_memory_bytes)};
    SlotDeps sd{scheduler_.get(), deps_.store.get(), deps_.launcher,
                &counters_,       deps_.clock,       deps_.logger};
    auto slot = std::make_unique<Slot>(o, sd);
    st = slot->Start();
    if (!st.ok()) return st;
    slots_.push_back(std::move(slot));
  }
  absl::Status health = deps_.store->Health();
  absl::MutexLock lock(&mu_);
  store_health_ = std::move(health);
  self_test_ok_ = true;
  return absl::OkStatus();
}

void Daemon::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  if (recipes_) recipes_->Stop();
  // Lease waits end at once and queued tasks fail (so every job and call
  // finishes); then workers are killed and slot threads joined.
  if (deps_.store) deps_.store->CancelWaits();
  if (scheduler_) scheduler_->Shutdown();
  for (auto& slot : slots_) slot->Stop();
}

absl::Status Daemon::Warmup(const tpjit::v1::WarmupRequest& request,
                            JobListener* listener, std::shared_ptr<Job>* job,
                            bool* attached,
                            const std::function<bool()>& cancelled) {
  counters_.warmup_calls.fetch_add(1);
  TPJIT_RETURN_IF_ERROR(ValidateWarmupRequest(request));
  // Ranks of one group send the same spec: only the first one plans.
  const std::string spec_digest = Sha256Hex(Deterministic(request.spec()));
  {
    absl::MutexLock lock(&mu_);
    auto it = spec_jobs_.find(spec_digest);
    if (it != spec_jobs_.end() && !it->second->failed() && !stopped_) {
      *attached = true;
      *job = it->second;
    }
  }
  if (*job) {
    (*job)->Attach(listener, request.rank(), request.world(), request.group());
    return absl::OkStatus();
  }
  auto plan = PlanValidSpec(request.spec(), cancelled);
  if (absl::IsCancelled(plan.status())) counters_.plans_cancelled.fetch_add(1);
  if (!plan.ok()) return plan.status();
  // The planner's kernels against the compile library's limits (the
  // request itself was checked once, above).
  for (const PlannedKernel& k : plan->kernels) {
    if (absl::Status s = ValidateKernelSpec(k.spec); !s.ok()) return s;
  }
  std::shared_ptr<Job> found;
  bool created = false;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_ || !self_test_ok_) {
      return absl::UnavailableError("tpjitd is not serving");
    }
    auto it = jobs_.find(plan->digest);
    if (it != jobs_.end() && !it->second->failed()) {
      found = it->second;
    } else {
      std::string id = plan->digest;  // before the plan is moved
      found = std::make_shared<Job>(std::move(id), request.spec(),
                                    std::move(*plan), deps_.clock);
      jobs_[found->id()] = found;
      job_order_.push_back(found->id());
      created = true;
    }
    spec_jobs_[spec_digest] = found;
    PruneJobsLocked();
  }
  if (created) {
    counters_.jobs.fetch_add(1);
    deps_.logger->Log(absl::StrCat("job ", found->id().substr(0, 12), " (",
                                   request.spec().name(), ") created by rank ",
                                   request.rank(), "/", request.world()));
    Toolchain tc;
    {
      absl::MutexLock lock(&mu_);
      tc = toolchain_;
    }
    tc.options = CanonicalOptions(request.spec().target().arch());
    absl::Status s =
        found->Start(tc, scheduler_.get(), config_.compile_timeout_seconds);
    if (!s.ok()) return s;
  }
  *attached = !created;
  *job = found;
  found->Attach(listener, request.rank(), request.world(), request.group());
  return absl::OkStatus();
}

void Daemon::PruneJobsLocked() {
  const absl::Time expired =
      deps_.clock->Now() - absl::Seconds(config_.job_retention_seconds);
  size_t finished = 0;
  for (const auto& [id, job] : jobs_) finished += job->finished();
  // Oldest first: expired jobs, then the oldest beyond the cap.
  for (auto id = job_order_.begin(); id != job_order_.end();) {
    auto it = jobs_.find(*id);
    if (it == jobs_.end()) {
      id = job_order_.erase(id);
      continue;
    }
    const Job& job = *it->second;
    if (!job.finished() ||
        (job.finished_at() > expired && finished <= kMaxRememberedJobs)) {
      ++id;
      continue;
    }
    jobs_.erase(it);
    id = job_order_.erase(id);
    --finished;
  }
  for (auto it = spec_jobs_.begin(); it != spec_jobs_.end();) {
    auto job = jobs_.find(it->second->id());
    const bool gone = job == jobs_.end() || job->second != it->second;
    it = gone ? spec_jobs_.erase(it) : std::next(it);
  }
}

size_t Daemon::RememberedJobs() {
  absl::MutexLock lock(&mu_);
  return jobs_.size();
}

absl::Status Daemon::PostPlan(std::function<void()> fn) {
  if (plan_pool_->TryPost(std::move(fn))) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "warmup: ", plan_pool_->max_queued(),
      " warm-ups are already waiting to be planned (--max-queued-plans); "
      "retry later"));
}

absl::Status Daemon::PostRead(absl::string_view what,
                              std::function<void()> fn) {
  if (read_pool_->TryPost(std::move(fn))) return absl::OkStatus();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, ": ", read_pool_->max_queued(),
                   " reads are already waiting; retry later"));
}

absl::Status Daemon::PostPrepare(std::function<void()> fn) {
  if (prepare_pool_->TryPost(std::move(fn))) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "compile: ", prepare_pool_->max_queued(),
      " requests are already waiting to be prepared (--max-queued-prepares); "
      "retry later"));
}

void Daemon::Compile(
    const tpjit::v1::CompileRequest& request,
    std::function<void(absl::StatusOr<CompileResponse>)> done) {
  if (scheduler_ && scheduler_->Depth() >= config_.max_queued_compiles) {
    done(absl::ResourceExhaustedError(
        absl::StrCat("compile: ", scheduler_->Depth(),
                     " compile tasks are queued (--max-queued-compiles ",
                     config_.max_queued_compiles, "); retry later")));
    return;
  }
  // Records the group's recipe; a group's first Compile may prefetch it.
  if (recipes_) done = recipes_->OnCompile(request, std::move(done));
  GenericToolchain tc{nvrtc_version_, "", config_.salt};
  auto tasks = BuildGenericTasks(request, config_, tc);
  if (!tasks.ok()) {
    done(tasks.status());
    return;
  }
  struct Batch {
    absl::Mutex mu;
    CompileResponse response;
    int left;
    bool inline_output = false;
    std::function<void(absl::StatusOr<CompileResponse>)> done;
  };
  auto batch = std::make_shared<Batch>();
  batch->left = static_cast<int>(tasks->size());
  batch->inline_output = request.return_output();
  batch->done = std::move(done);
  for (size_t i = 0; i < tasks->size(); ++i) {
    batch->response.add_results()->set_name((*tasks)[i]->label);
    (*tasks)[i]->done = [batch, i, key = (*tasks)[i]->key](TaskOutcome o) {
      bool last = false;
      {
        absl::MutexLock lock(&batch->mu);
        auto* r = batch->response.mutable_results(static_cast<int>(i));
        r->set_key(key);
        r->set_ok(o.status.ok());
        r->set_cache_hit(o.cache_hit);
        r->set_compile_seconds(o.compile_seconds);
        r->set_cubin_bytes(static_cast<int64_t>(o.cubin.size()));
        for (auto& n : o.lowered_names) r->add_lowered_names(n);
        r->set_log(o.log);
        // 0 on a failure: not the compiler's verdict (a refused include, a
        // crash, the time limit); tpjit-nvcc then compiles locally.
        r->set_exit_code(o.status.ok() ? 0 : o.exit_code);
        if (o.status.ok() && batch->inline_output) r->set_output(o.cubin);
        if (!o.status.ok()) r->set_error(std::string(o.status.message()));
        last = --batch->left == 0;
      }
      if (last) batch->done(batch->response);
    };
  }
  const bool no_wait = request.no_wait();
  auto trace = [&](const CompileTask& task, absl::string_view what) {
    if (!config_.trace_compiles) return;
    Trace(task.created,
          absl::StrCat("request ", task.key.substr(0, 12), " ", task.label,
                       no_wait ? " no_wait" : "", ": ", what));
  };
  std::vector<std::shared_ptr<CompileTask>> misses;
  for (size_t i = 0; i < tasks->size(); ++i) {
    auto& task = (*tasks)[i];
    task->created = deps_.clock->Now();
    // A hit is served here, never queued behind compiles.
    if (ServeFromCache(*deps_.store, counters_, *deps_.logger, *task, -1, {})) {
      trace(*task, "hit");
      continue;
    }
    // no_wait: answered as queued once the task is in flight (joined or
    // submitted), so the caller's next request for the key joins it; the
    // compile then publishes to the cache alone.
    if (no_wait) task->done = [](TaskOutcome) {};
    const std::string key = task->key;
    const bool first = JoinInFlight(task);
    trace(*task, first ? "new" : "joined");
    if (!no_wait) {
      if (first) misses.push_back(std::move(task));
      continue;
    }
    if (first) scheduler_->Submit({std::move(task)});
    bool last = false;
    {
      absl::MutexLock lock(&batch->mu);
      auto* r = batch->response.mutable_results(static_cast<int>(i));
      r->set_key(key);
      r->set_queued(true);
      r->set_error("queued (no_wait): compiling in the background");
      last = --batch->left == 0;
    }
    // The last use of `request` comes before this: done() may free it.
    if (last) {
      batch->done(batch->response);
      return;
    }
  }
  if (!misses.empty()) scheduler_->Submit(std::move(misses));
}

bool Daemon::JoinInFlight(const std::shared_ptr<CompileTask>& task) {
  absl::MutexLock lock(&inflight_mu_);
  auto [it, first] = inflight_.try_emplace(task->key);
  if (!first) {
    it->second.push_back(task);  // served by the first one's outcome
    return false;
  }
  auto own = std::move(task->done);
  task->done = [this, key = task->key, own](TaskOutcome o) {
    std::vector<std::shared_ptr<CompileTask>> waiters;
    {
      absl::MutexLock lock(&inflight_mu_);
      waiters = std::move(inflight_[key]);
      inflight_.erase(key);
    }
    for (auto& w : waiters) {
      // Same source and options, other include directories: served only
      // when they hold what this compile read.
      if (o.status.ok() && w->accept_dependencies &&
          !w->accept_dependencies(o.dependencies)) {
        // In flight again (later waiters of the same headers join it).
        if (JoinInFlight(w)) scheduler_->Submit({w});
        continue;
      }
      w->done(o);
    }
    own(std::move(o));
  };
  return true;
}

namespace {

absl::Status CheckKey(absl::string_view field, const std::string& key) {
  if (key.size() != 64 ||
      key.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": \"", key.substr(0, 80), "\" is not a 64-digit hex digest"));
  }
  return absl::OkStatus();
}

}  // namespace

void Daemon::Trace(absl::Time at, absl::string_view what) {
  deps_.logger->Log(absl::StrCat(
      "trace: ", absl::StrFormat("%.3f", absl::ToDoubleSeconds(at - started_)),
      " ", what));
}

void Daemon::AwaitKeys(
    const tpjit::v1::AwaitKeysRequest& request,
    std::function<void(absl::StatusOr<tpjit::v1::AwaitKeysResponse>)> done) {
  using tpjit::v1::AwaitKeysResponse;
  if (request.keys_size() > kMaxAwaitKeys) {
    done(absl::InvalidArgumentError(absl::StrCat(
        "keys: ", request.keys_size(), " keys, at most ", kMaxAwaitKeys)));
    return;
  }
  for (int i = 0; i < request.keys_size(); ++i) {
    if (absl::Status s =
            CheckKey(absl::StrCat("keys[", i, "]"), request.keys(i));
        !s.ok()) {
      done(s);
      return;
    }
  }
  {
    absl::MutexLock lock(&inflight_mu_);
    if (await_waiters_ + request.keys_size() > kMaxAwaitWaiters) {
      done(absl::ResourceExhaustedError(absl::StrCat(
          "await_keys: ", await_waiters_, " waits are held already (at most ",
          kMaxAwaitWaiters, "); retry later")));
      return;
    }
    // Reserved until every key has been looked at, so concurrent calls
    // cannot all pass the check above and then exceed the bound together.
    await_waiters_ += request.keys_size();
  }
  if (config_.trace_compiles) {
    Trace(deps_.clock->Now(),
          absl::StrCat("await ", request.keys_size(), " keys",
                       request.any() ? " (any)" : " (all)"));
  }
  struct Wait {
    absl::Mutex mu;
    AwaitKeysResponse response;
    int left;  // keys not ended yet
    bool any = false;
    bool armed = false;  // every key looked at
    bool answered = false;
    // The waiters put in the in-flight table, removed once answered (weak:
    // one that ended with its compile is gone, and its address may be
    // another call's waiter by then).
    std::vector<std::pair<std::string, std::weak_ptr<CompileTask>>> waiters;
    std::function<void(absl::StatusOr<AwaitKeysResponse>)> done;
  };
  auto wait = std::make_shared<Wait>();
  wait->left = request.keys_size();
  wait->any = request.any();
  wait->done = std::move(done);
  for (const std::string& key : request.keys()) {
    auto* k = wait->response.add_keys();
    k->set_key(key);
    k->set_state(AwaitKeysResponse::IN_FLIGHT);
  }
  // i < 0: the last key has been looked at. Called without inflight_mu_.
  auto settle = [this, wait](int i, AwaitKeysResponse::State state) {
    std::optional<AwaitKeysResponse> answer;
    std::vector<std::pair<std::string, std::weak_ptr<CompileTask>>> stale;
    {
      absl::MutexLock lock(&wait->mu);
      if (i >= 0) {
        wait->response.mutable_keys(i)->set_state(state);
        --wait->left;
      } else {
        wait->armed = true;
      }
      const bool some_ended = wait->left < wait->response.keys_size();
      const bool ready =
          wait->armed && (wait->left == 0 || (wait->any && some_ended));
      if (ready && !wait->answered) {
        wait->answered = true;
        answer = wait->response;
        stale = std::move(wait->waiters);
      }
    }
    if (!answer) return;
    // `any`: the waiters of keys still compiling are not needed any more
    // (the others have left the table with their compile).
    {
      absl::MutexLock lock(&inflight_mu_);
      for (const auto& [key, weak] : stale) {
        const std::shared_ptr<CompileTask> task = weak.lock();
        if (task == nullptr) continue;  // ended with its compile
        auto it = inflight_.find(key);
        if (it == inflight_.end()) continue;
        auto& list = it->second;
        const size_t before = list.size();
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&task](const auto& w) { return w == task; }),
                   list.end());
        await_waiters_ -= static_cast<int64_t>(before - list.size());
      }
    }
    wait->done(*std::move(answer));
  };
  for (int i = 0; i < request.keys_size(); ++i) {
    const std::string& key = request.keys(i);
    bool in_flight = false;
    {
      absl::MutexLock lock(&inflight_mu_);
      if (auto it = inflight_.find(key); it != inflight_.end()) {
        auto waiter = std::make_shared<CompileTask>();
        waiter->key = key;
        waiter->label = "await";
        waiter->done = [this, settle, i](TaskOutcome o) {
          {
            absl::MutexLock lock(&inflight_mu_);
            --await_waiters_;
          }
          settle(i, o.status.ok() ? AwaitKeysResponse::PUBLISHED
                                  : AwaitKeysResponse::FAILED);
        };
        {
          absl::MutexLock lock(&wait->mu);
          wait->waiters.emplace_back(key, waiter);
        }
        it->second.push_back(std::move(waiter));
        ++await_waiters_;
        in_flight = true;
      }
    }
    // Not in flight: a compile that ended has published before leaving
    // the in-flight table. Contains neither reads nor verifies the entry
    // (one stat, one EXISTS), so a corrupt entry may read PUBLISHED. That
    // is safe: Fetch verifies and answers NOT_FOUND, and a caller that runs
    // the kernel after PUBLISHED (deep_gemm's sweep) compiles it again,
    // whose Get moves the bad entry aside and misses.
    if (!in_flight) {
      settle(i, deps_.store->Contains(key) ? AwaitKeysResponse::PUBLISHED
                                           : AwaitKeysResponse::UNKNOWN);
    }
  }
  {
    absl::MutexLock lock(&inflight_mu_);
    await_waiters_ -= request.keys_size();  // the reservation
  }
  settle(-1, AwaitKeysResponse::UNKNOWN);
}

absl::StatusOr<std::string> Daemon::Fetch(const std::string& key) {
  TPJIT_RETURN_IF_ERROR(CheckKey("key", key));
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, job] : jobs_) {
      if (auto cubin = job->Cubin(key)) return *cubin;
    }
  }
  if (auto entry = deps_.store->Get(key);
      entry && ValidateCubin(entry->payload).ok()) {
    return entry->payload;  // only a CUDA ELF is served from the cache
  }
  return absl::NotFoundError(absl::StrCat("no cubin with key ", key));
}

absl::Status Daemon::Readiness() {
  absl::Status s = [this]() -> absl::Status {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) return absl::UnavailableError("stopping");
      if (!self_test_ok_) return absl::UnavailableError("self-test not passed");
    }
    int alive = 0;
    for (auto& slot : slots_) alive += slot->ProcsAlive();
    if (alive == 0) return absl::UnavailableError("no live worker process");
    for (auto& slot : slots_) {
      if (std::string why = slot->Starting(); !why.empty()) {
        return absl::UnavailableError(
            absl::StrCat("slot ", slot->index(), ": ", why));
      }
    }
    {
      absl::MutexLock lock(&mu_);
      if (!store_health_.ok()) return store_health_;
    }
    return QueuesSaturated();
  }();
  absl::MutexLock lock(&mu_);
  if (std::string now(s.message()); now != last_readiness_) {
    deps_.logger->Log(absl::StrCat("readiness: ", s.ok() ? "ready" : now));
    last_readiness_ = now;
  }
  return s;
}

absl::Status Daemon::QueuesSaturated() {
  if (plan_pool_->queued() >= plan_pool_->max_queued()) {
    return absl::UnavailableError(
        absl::StrCat("planning queue saturated (", plan_pool_->queued(), " of ",
                     plan_pool_->max_queued(), " queued)"));
  }
  if (prepare_pool_->queued() >= prepare_pool_->max_queued()) {
    return absl::UnavailableError(absl::StrCat(
        "compile preparation queue saturated (", prepare_pool_->queued(),
        " of ", prepare_pool_->max_queued(), " queued)"));
  }
  const int64_t depth = scheduler_ ? scheduler_->Depth() : 0;
  if (depth >= config_.max_queued_compiles) {
    return absl::UnavailableError(
        absl::StrCat("compile queue saturated (", depth, " tasks, limit ",
                     config_.max_queued_compiles, ")"));
  }
  return absl::OkStatus();
}

bool Daemon::Serving() { return Readiness().ok(); }

void Daemon::RefreshReadiness() {
  absl::Status health = deps_.store->Health();  // may touch the disk
  {
    absl::MutexLock lock(&mu_);
    store_health_ = std::move(health);
    PruneJobsLocked();
  }
  Readiness().IgnoreError();  // logs a change of reason
}

tpjit::v1::StatsResponse Daemon::Stats() {
  tpjit::v1::StatsResponse s;
  s.set_compiles(counters_.compiles.load());
  s.set_cache_hits(counters_.cache_hits.load());
  s.set_cache_misses(counters_.cache_misses.load());
  s.set_compile_failures(counters_.compile_failures.load());
  s.set_worker_restarts(counters_.worker_restarts.load());
  s.set_warmup_calls(counters_.warmup_calls.load());
  s.set_jobs(counters_.jobs.load());
  s.set_compile_seconds(counters_.compile_micros.load() / 1e6);
  s.set_nvrtc_version(nvrtc_version_);
  s.add_target_archs("sm_90a");
  s.set_slots(config_.slots);
  s.set_gpus(gpus_);
  s.set_procs_per_slot(config_.procs);
  const absl::Status ready = Readiness();
  s.set_serving(ready.ok());
  s.set_not_serving_reason(std::string(ready.message()));
  s.set_cache_dir(deps_.store->dir());
  StoreStats st = deps_.store->Stats();
  s.set_cache_bytes(st.bytes);
  s.set_cache_entries(st.entries);
  s.set_cache_evictions(st.evictions);
  // Corrupt, foreign (another owner's) and refused (not a CUDA ELF) entries.
  s.set_cache_corrupt(st.corrupt + counters_.cache_rejects.load());
  s.set_uptime_seconds(absl::ToDoubleSeconds(deps_.clock->Now() - started_));
  s.set_barrier_waits(counters_.barrier_waits.load());
  s.set_barrier_timeouts(counters_.barrier_timeouts.load());
  s.set_queue_depth(scheduler_ ? scheduler_->Depth() : 0);
  *s.mutable_remote_cache() = RemoteStats(*deps_.store);
  return s;
}

tpjit::v1::StatusResponse Daemon::Status() {
  tpjit::v1::StatusResponse r;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, job] : jobs_) *r.add_jobs() = job->Status();
  }
  for (auto& slot : slots_) *r.add_slots() = slot->Status();
  const absl::Status ready = Readiness();
  r.set_serving(ready.ok());
  r.set_not_serving_reason(std::string(ready.message()));
  return r;
}

std::string Daemon::RankProgress(const std::string& group, int rank) {
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& [id, job] : jobs_) {
    std::string p = job->RankProgress(group, rank);
    if (!p.empty()) out = p;
  }
  return out.empty() ? "no warm-up seen from this rank" : out;
}

std::vector<int> Daemon::WorkerPids() {
  std::vector<int> pids;
  for (auto& slot : slots_) {
    for (int p : slot->WorkerPids()) pids.push_back(p);
  }
  return pids;
}

}  // namespace tpjit
