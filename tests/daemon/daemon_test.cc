// The Daemon core with its seams replaced (tests/testlib/fake_worker.h,
// tests/cache/memory_store.h, FakeClock, MemoryLogger): warm-ups and generic
// compiles through scripted workers that crash, hang or answer garbage, and a
// cache that fails every call, which never fails a compile.
#include "daemon/daemon.h"

#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/common/logger.h"
#include "src/plan/spec.h"
#include "tests/cache/memory_store.h"
#include "tests/testlib/fake_worker.h"
#include "tests/testlib/status.h"
#include "tests/testlib/wait.h"

namespace tpjit {
namespace {

using ::tpjit::testing::MemoryStore;
using ::tpjit::testing::ScriptedLauncher;
using ::tpjit::testing::WaitUntil;
using ::tpjit::testing::WorkerAct;
using tpjit::v1::CompileResponse;

// Records a job's last event.
class Listener : public JobListener {
 public:
  void OnProgress(const tpjit::v1::WarmupProgress&) override {}
  void OnFinished(const absl::Status& s, const tpjit::v1::Manifest& m,
                  const tpjit::v1::WarmupSummary&) override {
    absl::MutexLock lock(&mu_);
    status_ = s;
    manifest_ = m;
    finished_ = true;
  }
  // Waits (30 s at most) for the end: the job's status.
  absl::Status Wait() {
    WaitUntil(
        [this] {
          absl::MutexLock lock(&mu_);
          return finished_;
        },
        absl::Seconds(30));
    absl::MutexLock lock(&mu_);
    return finished_ ? status_ : absl::DeadlineExceededError("no end");
  }
  tpjit::v1::Manifest manifest() {
    absl::MutexLock lock(&mu_);
    return manifest_;
  }

 private:
  absl::Mutex mu_;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
  tpjit::v1::Manifest manifest_ ABSL_GUARDED_BY(mu_);
};

// One bf16_gemm_nt shape (n, k) at M = 1: a spec of one kernel.
tpjit::v1::WarmupRequest OneKernel(int n, int k) {
  tpjit::v1::WarmupRequest request;
  auto* spec = request.mutable_spec();
  spec->set_name(absl::StrCat("one-", n, "-", k));
  spec->mutable_target()->set_arch("sm_90a");
  spec->mutable_target()->set_num_sms(132);
  spec->mutable_m_policy()->set_kind(tpjit::v1::MPolicy::EXPLICIT);
  spec->mutable_m_policy()->add_m_values(1);
  auto* shape = spec->add_shapes();
  shape->set_family("bf16_gemm_nt");
  shape->set_n(n);
  shape->set_k(k);
  request.set_world(1);
  return request;
}

// A no_wait Compile of one NVRTC kernel `k`.
tpjit::v1::CompileRequest NoWaitRequest() {
  tpjit::v1::CompileRequest request;
  request.set_backend(tpjit::v1::NVRTC);
  request.set_arch("sm_90a");
  request.set_no_wait(true);
  auto* src = request.add_sources();
  src->set_name("k.cu");
  src->set_source("extern \"C\" __global__ void k() {}");
  src->add_name_expressions("k");
  return request;
}

// VmRSS of this process, bytes (0 when unknown).
int64_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoll(line.substr(6)) * 1024;
    }
  }
  return 0;
}

tpjit::v1::WarmupRequest WarmupOf(std::vector<int> m_values) {
  std::ifstream in(std::string(TPJIT_SPECS_DIR) + "/qwen3-30b-a3b-tp4.json");
  std::stringstream buf;
  buf << in.rdbuf();
  tpjit::v1::WarmupRequest request;
  *request.mutable_spec() = *ParseSpecJson(buf.str());
  auto* policy = request.mutable_spec()->mutable_m_policy();
  policy->set_kind(tpjit::v1::MPolicy::EXPLICIT);
  for (int m : m_values) policy->add_m_values(m);
  request.set_rank(0);
  request.set_world(1);
  return request;
}

class DaemonTest : public ::testing::Test {
 protected:
  void StartDaemon(double job_retention_seconds = 600) {
    DaemonConfig config;
    config.job_retention_seconds = job_retention_seconds;
    config.socket = "/nonexistent/tpjitd.sock";
    config.cache_dir = "/nonexistent/cache";
    config.slots = 1;
    config.procs = 1;
    config.gpus = 0;
    config.worker_binary = "/fake/tpjit-worker";
    DaemonDeps deps;
    deps.launcher = &launcher_;
    auto store = std::make_unique<MemoryStore>("broken");
    store->FailAll(true);  // misses, refused puts, no lease, unhealthy
    store_ = store.get();
    deps.store = std::move(store);
    deps.clock = &clock_;
    deps.logger = &logger_;
    auto daemon = Daemon::Create(config, std::move(deps));
    ASSERT_OK(daemon);
    daemon_ = std::move(*daemon);
    ASSERT_OK(daemon_->Start());
  }

  absl::StatusOr<CompileResponse> Compile(const std::string& name) {
    tpjit::v1::CompileRequest request;
    request.set_backend(tpjit::v1::NVRTC);
    request.set_arch("sm_90a");
    auto* src = request.add_sources();
    src->set_name(name + ".cu");
    src->set_source("extern \"C\" __global__ void " + name + "() {}");
    src->add_name_expressions(name);
    absl::Mutex mu;
    std::optional<absl::StatusOr<CompileResponse>> result;
    daemon_->Compile(request, [&](absl::StatusOr<CompileResponse> r) {
      absl::MutexLock lock(&mu);
      result = std::move(r);
    });
    WaitUntil(
        [&] {
          absl::MutexLock lock(&mu);
          return result.has_value();
        },
        absl::Seconds(30));
    absl::MutexLock lock(&mu);
    if (!result) return absl::DeadlineExceededError("no answer");
    return *result;
  }

  // Runs one warm-up to its end.
  absl::Status RunWarmup(const tpjit::v1::WarmupRequest& request) {
    Listener listener;
    std::shared_ptr<Job> job;
    bool attached = false;
    absl::Status s = daemon_->Warmup(request, &listener, &job, &attached);
    if (!s.ok()) return s;
    return listener.Wait();
  }

  FakeClock clock_;
  MemoryLogger logger_;
  ScriptedLauncher launcher_;
  MemoryStore* store_ = nullptr;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DaemonTest, AFailingCacheNeverFailsACompile) {
  StartDaemon();
  auto r = Compile("k1");
  ASSERT_OK(r);
  ASSERT_EQ(r->results_size(), 1);
  EXPECT_TRUE(r->results(0).ok()) << r->results(0).error();
  EXPECT_FALSE(r->results(0).cache_hit());
  EXPECT_GT(r->results(0).cubin_bytes(), 0);
  EXPECT_GE(store_->gets.load(), 1);
  EXPECT_EQ(store_->puts.load(), 1);
  // Not ready while the cache is down, and it says why.
  EXPECT_FALSE(daemon_->Serving());
  EXPECT_NE(daemon_->Readiness().message().find("broken is down"),
            std::string::npos);
}

// Not ready until the slots' workers have self-tested: a rank that starts
// at SERVING finds every compile process ready (then the next reason shows:
// this fixture's cache is down).
TEST_F(DaemonTest, NotServingUntilTheWorkersHaveSelfTested) {
  launcher_.HoldSelfTests(/*workers=*/true, /*load_checkers=*/true);
  launcher_.PassSelfTests(1);  // the daemon's own, in Start()
  StartDaemon();
  EXPECT_FALSE(daemon_->Serving());
  EXPECT_EQ(daemon_->Readiness().message(),
            "slot 0: compile workers still starting");
  launcher_.HoldSelfTests(false, false);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return daemon_->Readiness().message().find("broken is down") !=
               std::string::npos;
      },
      absl::Seconds(10)));
}

// AwaitKeys: `any` answers as soon as one key has ended (an unknown one, at
// once) with the others IN_FLIGHT; a full wait ends with the compile (here
// failed by the daemon's stop); bad keys are refused by name.
TEST_F(DaemonTest, AwaitKeysFollowsACompileInFlight) {
  using tpjit::v1::AwaitKeysRequest;
  using tpjit::v1::AwaitKeysResponse;
  launcher_.Script({WorkerAct::kBlock});
  StartDaemon();
  tpjit::v1::CompileRequest request = NoWaitRequest();
  std::optional<absl::StatusOr<CompileResponse>> queued;
  daemon_->Compile(request, [&](absl::StatusOr<CompileResponse> r) {
    queued = std::move(r);  // a no_wait answer comes at once
  });
  ASSERT_TRUE(queued.has_value());
  ASSERT_OK(*queued);
  ASSERT_TRUE((*queued)->results(0).queued());
  const std::string key = (*queued)->results(0).key();
  ASSERT_TRUE(
      WaitUntil([&] { return launcher_.blocked(); }, absl::Seconds(30)));

  auto await = [&](std::vector<std::string> keys, bool any) {
    AwaitKeysRequest r;
    for (auto& k : keys) r.add_keys(k);
    r.set_any(any);
    auto result =
        std::make_shared<std::optional<absl::StatusOr<AwaitKeysResponse>>>();
    auto mu = std::make_shared<absl::Mutex>();
    daemon_->AwaitKeys(r, [result, mu](absl::StatusOr<AwaitKeysResponse> a) {
      absl::MutexLock lock(mu.get());
      *result = std::move(a);
    });
    return std::make_pair(result, mu);
  };
  const std::string unknown(64, '0');
  auto some_wait = await({key, unknown}, true);
  auto& some = some_wait.first;
  {
    absl::MutexLock lock(some_wait.second.get());
    ASSERT_TRUE(some->has_value());
    ASSERT_OK(**some);
    EXPECT_EQ((**some)->keys(0).state(), AwaitKeysResponse::IN_FLIGHT);
    EXPECT_EQ((**some)->keys(1).state(), AwaitKeysResponse::UNKNOWN);
  }
  auto all_wait = await({key}, false);
  auto& all = all_wait.first;
  auto& all_mu = all_wait.second;
  {
    absl::MutexLock lock(all_mu.get());
    EXPECT_FALSE(all->has_value());  // the compile is still blocked
  }
  daemon_->Stop();  // the blocked compile fails: the wait ends
  ASSERT_TRUE(WaitUntil(
      [&] {
        absl::MutexLock lock(all_mu.get());
        return all->has_value();
      },
      absl::Seconds(30)));
  absl::MutexLock lock(all_mu.get());
  ASSERT_OK(**all);
  EXPECT_EQ((**all)->keys(0).state(), AwaitKeysResponse::FAILED);

  auto bad_wait = await({key, "xyz"}, false);
  auto& bad = bad_wait.first;
  absl::MutexLock bad_lock(bad_wait.second.get());
  ASSERT_TRUE(bad->has_value());
  EXPECT_EQ((*bad)->status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE((*bad)->status().message().find("keys[1]"), std::string::npos);
}

// AwaitKeys answers a key that is not in flight from Store::Contains (one
// stat or EXISTS), never a Get that reads and verifies the whole entry.
TEST_F(DaemonTest, AwaitKeysAnswersPublishedFromContainsWithoutAGet) {
  using tpjit::v1::AwaitKeysRequest;
  using tpjit::v1::AwaitKeysResponse;
  StartDaemon();
  store_->FailAll(false);
  const std::string published(64, 'a'), unknown(64, 'b');
  ASSERT_OK(store_->Put(CacheEntry{published, {}, "cubin"}));
  const int gets = store_->gets.load(), contains = store_->contains.load();
  AwaitKeysRequest r;
  r.add_keys(published);
  r.add_keys(unknown);
  std::optional<absl::StatusOr<AwaitKeysResponse>> answer;
  daemon_->AwaitKeys(r, [&](absl::StatusOr<AwaitKeysResponse> a) {
    answer = std::move(a);  // nothing in flight: answered at once
  });
  ASSERT_TRUE(answer.has_value());
  ASSERT_OK(*answer);
  EXPECT_EQ((*answer)->keys(0).state(), AwaitKeysResponse::PUBLISHED);
  EXPECT_EQ((*answer)->keys(1).state(), AwaitKeysResponse::UNKNOWN);
  EXPECT_EQ(store_->gets.load(), gets);
  EXPECT_EQ(store_->contains.load(), contains + 2);
}

// AwaitKeys holds at most Daemon::kMaxAwaitWaiters waits in the in-flight
// table; an `any` call answered early takes its other waits back (else
// twenty such calls would exhaust the bound).
TEST_F(DaemonTest, AwaitKeysBoundsItsWaitsAndDropsAnsweredOnes) {
  using tpjit::v1::AwaitKeysRequest;
  using tpjit::v1::AwaitKeysResponse;
  launcher_.Script({WorkerAct::kBlock});
  StartDaemon();
  tpjit::v1::CompileRequest request = NoWaitRequest();
  std::string key;
  daemon_->Compile(request, [&](absl::StatusOr<CompileResponse> r) {
    if (r.ok()) key = r->results(0).key();
  });
  ASSERT_EQ(key.size(), 64u);
  ASSERT_TRUE(
      WaitUntil([&] { return launcher_.blocked(); }, absl::Seconds(30)));
  struct Answer {
    absl::Mutex mu;
    bool answered = false;
    absl::Status status;
  };
  // The answer outlives the call: a wait is answered when the compile ends.
  auto call = [&](bool any) {
    AwaitKeysRequest r;
    r.set_any(any);
    if (any) r.add_keys(std::string(64, '0'));  // unknown: answers at once
    while (r.keys_size() < Daemon::kMaxAwaitKeys) r.add_keys(key);
    auto answer = std::make_shared<Answer>();
    daemon_->AwaitKeys(r, [answer](absl::StatusOr<AwaitKeysResponse> a) {
      absl::MutexLock lock(&answer->mu);
      answer->status = a.status();
      answer->answered = true;
    });
    absl::MutexLock lock(&answer->mu);
    return std::make_pair(answer->answered, answer->status);
  };
  for (int i = 0; i < 20; ++i) {
    auto [answered, status] = call(true);
    ASSERT_TRUE(answered);
    ASSERT_OK(status);
  }
  const int full = Daemon::kMaxAwaitWaiters / Daemon::kMaxAwaitKeys;
  for (int i = 0; i < full; ++i) {
    auto [answered, status] = call(false);
    EXPECT_FALSE(answered) << i << ": " << status;  // waiting on the compile
  }
  auto [answered, status] = call(false);
  ASSERT_TRUE(answered);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  daemon_->Stop();  // ends the compile: every wait is answered before this
}

TEST_F(DaemonTest, AFailingCacheNeverFailsAWarmup) {
  StartDaemon();
  Listener listener;
  std::shared_ptr<Job> job;
  bool attached = false;
  ASSERT_OK(
      daemon_->Warmup(WarmupOf({1, 128, 4096}), &listener, &job, &attached));
  ASSERT_OK(listener.Wait());
  EXPECT_GT(listener.manifest().kernels_size(), 0);
  EXPECT_EQ(store_->puts.load(), listener.manifest().kernels_size());
}

TEST_F(DaemonTest, CrashesAndHangsAreRetriedOnce) {
  launcher_.Script({WorkerAct::kCrash, WorkerAct::kCompile, WorkerAct::kHang,
                    WorkerAct::kCompile, WorkerAct::kGarbage,
                    WorkerAct::kCompile});
  StartDaemon();
  for (const char* name : {"a", "b", "c"}) {
    auto r = Compile(name);
    ASSERT_OK(r);
    EXPECT_TRUE(r->results(0).ok()) << name << ": " << r->results(0).error();
  }
  EXPECT_EQ(daemon_->Stats().worker_restarts(), 3);
}

TEST_F(DaemonTest, AKernelThatKillsItsWorkerTwiceFailsTheWarmupWithTheReason) {
  launcher_.Script({WorkerAct::kCrash, WorkerAct::kCrash});
  StartDaemon();
  Listener listener;
  std::shared_ptr<Job> job;
  bool attached = false;
  ASSERT_OK(daemon_->Warmup(WarmupOf({1}), &listener, &job, &attached));
  absl::Status s = listener.Wait();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_NE(s.message().find("died"), std::string::npos) << s;
}

TEST_F(DaemonTest, UptimeAndLogsGoThroughItsSeams) {
  StartDaemon();
  clock_.Advance(absl::Seconds(42));
  EXPECT_DOUBLE_EQ(daemon_->Stats().uptime_seconds(), 42.0);
  // The failing store has no directory: recipes are off, and it is logged.
  EXPECT_TRUE(logger_.Contains("recipes off"));
}

TEST_F(DaemonTest, FinishedJobsAreForgottenAfterTheirRetention) {
  StartDaemon(/*job_retention_seconds=*/60);
  for (int i = 0; i < 3; ++i)
    ASSERT_OK(RunWarmup(OneKernel(64 * (i + 1), 1024)));
  EXPECT_EQ(daemon_->RememberedJobs(), 3u);
  clock_.Advance(absl::Seconds(59));
  daemon_->RefreshReadiness();
  EXPECT_EQ(daemon_->RememberedJobs(), 3u);
  clock_.Advance(absl::Seconds(2));
  daemon_->RefreshReadiness();
  EXPECT_EQ(daemon_->RememberedJobs(), 0u);
}

// A long-lived sidecar serving many specs: the job table keeps at most
// kMaxRememberedJobs finished jobs, so memory stops growing. Prints the RSS
// figures recorded in bench/results/job-table-rss.md.
TEST_F(DaemonTest, JobTableMemoryIsBoundedOver1000DistinctSpecs) {
  launcher_.SetCubinBytes(64 << 10);  // a realistic cubin
  StartDaemon();
  std::map<int, int64_t> rss;
  rss[0] = RssBytes();
  for (int i = 1; i <= 1000; ++i) {
    ASSERT_OK(RunWarmup(
        OneKernel(64 * (1 + (i - 1) % 500), 1024 + 128 * ((i - 1) / 500))));
    if (i == 100 || i == 256 || i == 500 || i == 1000) rss[i] = RssBytes();
  }
  // The cap is checked when a job is created: the last one is still counted.
  EXPECT_LE(daemon_->RememberedJobs(), Daemon::kMaxRememberedJobs + 1);
  clock_.Advance(absl::Seconds(601));
  daemon_->RefreshReadiness();
  EXPECT_EQ(daemon_->RememberedJobs(), 0u);
  for (const auto& [specs, bytes] : rss) {
    std::cout << "job-table-rss: after " << specs
              << " specs: " << bytes / (1 << 20) << " MiB\n";
  }
#if !defined(__SANITIZE_ADDRESS__)
  // 744 more jobs of 64 KiB cubins would be ~47 MiB if they were all kept.
  EXPECT_LT(rss[1000] - rss[256], int64_t{24} << 20);
#endif
}

}  // namespace
}  // namespace tpjit
