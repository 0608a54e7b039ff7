#include "daemon/job.h"

#include <fstream>
#include <sstream>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "src/common/clock.h"
#include "src/compile/kernel_source.h"
#include "src/plan/spec.h"

namespace tpjit {
namespace {

using tpjit::v1::MPolicy;

class RecordingListener : public JobListener {
 public:
  void OnProgress(const tpjit::v1::WarmupProgress& p) override {
    progress.push_back(p);
  }
  void OnFinished(const absl::Status& s, const tpjit::v1::Manifest& m,
                  const tpjit::v1::WarmupSummary& sum) override {
    ++finished;
    status = s;
    manifest = m;
    summary = sum;
  }
  std::vector<tpjit::v1::WarmupProgress> progress;
  int finished = 0;
  absl::Status status;
  tpjit::v1::Manifest manifest;
  tpjit::v1::WarmupSummary summary;
};

std::shared_ptr<Job> MakeJob(Scheduler* scheduler,
                             Clock* clock = Clock::Real()) {
  std::ifstream in(std::string(TPJIT_SPECS_DIR) + "/qwen3-30b-a3b-tp4.json");
  std::stringstream buf;
  buf << in.rdbuf();
  auto spec = *ParseSpecJson(buf.str());
  spec.mutable_m_policy()->set_kind(MPolicy::EXPLICIT);
  for (int m : {1, 128, 4096}) spec.mutable_m_policy()->add_m_values(m);
  auto plan = *PlanWarmup(spec);
  auto job = std::make_shared<Job>(plan.digest, spec, plan, clock);
  Toolchain tc{"13.0", "", CanonicalOptions("sm_90a")};
  EXPECT_TRUE(job->Start(tc, scheduler, 60).ok());
  return job;
}

// Completes every queued task; `fail` marks one index as failed.
int Drain(Scheduler& s, int fail = -1) {
  int n = 0;
  while (auto t = s.TryTake(0)) {
    TaskOutcome o;
    if (n == fail) {
      o.status = absl::InternalError("worker crashed twice");
      o.log = "nvrtc: boom";
    } else {
      o.cubin = "cubin-of-" + t->key;
      o.lowered_names = {"_Z6kernel" + t->key.substr(0, 4)};
      o.cache_hit = n % 2 == 0;
    }
    t->done(o);
    ++n;
  }
  return n;
}

TEST(JobTest, EveryListenerGetsTheSameManifest) {
  Scheduler s(1);
  auto job = MakeJob(&s);
  RecordingListener a, b;
  job->Attach(&a, 0, 2, "g");
  job->Attach(&b, 1, 2, "g");
  ASSERT_FALSE(a.progress.empty());
  EXPECT_EQ(a.progress[0].done(), 0);
  int n = Drain(s);
  ASSERT_EQ(a.finished, 1);
  ASSERT_TRUE(a.status.ok()) << a.status;
  EXPECT_EQ(a.manifest.SerializeAsString(), b.manifest.SerializeAsString());
  EXPECT_EQ(a.manifest.kernels_size(), n);
  EXPECT_EQ(a.manifest.digest(), ManifestDigest(a.manifest));
  EXPECT_EQ(a.summary.compiled() + a.summary.cache_hits(), n);
  EXPECT_TRUE(job->finished());
  for (const auto& k : a.manifest.kernels()) {
    EXPECT_EQ(k.key().size(), 64u);
    EXPECT_EQ(*job->Cubin(k.key()), "cubin-of-" + k.key());
  }
  // A late rank attaching after the end gets the final event at once.
  RecordingListener late;
  job->Attach(&late, 1, 2, "g");
  EXPECT_EQ(late.finished, 1);
  EXPECT_EQ(late.manifest.digest(), a.manifest.digest());
  EXPECT_EQ(late.summary.compiled(), 0);
  EXPECT_EQ(late.summary.cache_hits(), n);
  EXPECT_NE(job->RankProgress("g", 1).find("done"), std::string::npos);
}

TEST(JobTest, AFailedKernelFailsTheJobWithItsLog) {
  Scheduler s(1);
  auto job = MakeJob(&s);
  RecordingListener a;
  job->Attach(&a, 0, 1, "");
  Drain(s, /*fail=*/1);
  ASSERT_EQ(a.finished, 1);
  EXPECT_EQ(a.status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(a.status.message().find("nvrtc: boom"), std::string::npos);
  EXPECT_TRUE(job->failed());
}

TEST(JobTest, TimesComeFromItsClock) {
  FakeClock clock;
  Scheduler s(1);
  auto job = MakeJob(&s, &clock);
  RecordingListener a;
  job->Attach(&a, 0, 1, "");
  EXPECT_EQ(job->finished_at(), absl::InfiniteFuture());
  clock.Advance(absl::Seconds(7));
  Drain(s);
  ASSERT_EQ(a.finished, 1);
  EXPECT_DOUBLE_EQ(a.summary.wall_seconds(), 7.0);
  EXPECT_EQ(job->finished_at(), clock.Now());
  ASSERT_FALSE(a.progress.empty());
  EXPECT_DOUBLE_EQ(a.progress.front().elapsed_seconds(), 0.0);
  for (size_t i = 1; i < a.progress.size(); ++i) {
    EXPECT_DOUBLE_EQ(a.progress[i].elapsed_seconds(), 7.0);
  }
}

TEST(JobTest, DetachedListenersHearNothingMore) {
  Scheduler s(1);
  auto job = MakeJob(&s);
  RecordingListener a;
  job->Attach(&a, 0, 1, "");
  job->Detach(&a);
  Drain(s);
  EXPECT_EQ(a.finished, 0);
  EXPECT_EQ(a.progress.size(), 1u);
}

}  // namespace
}  // namespace tpjit
