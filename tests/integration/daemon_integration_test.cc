// The real tpjitd with real client processes (tpjit_test_rank) on the CPU.
#include <dirent.h>

#include <optional>
#include <set>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"
#include "tests/integration/daemon_harness.h"

namespace tpjit::testing {
namespace {

const std::string kSpecs = TPJIT_SPECS_DIR;

struct RankResult {
  int exit_code;
  std::string digest;
  int compiled = 0, hits = 0;
  std::string manifest;
};

std::vector<RankResult> RunRanks(const TempDir& dir, Daemon& daemon,
                                 const std::string& spec, int world,
                                 const std::string& tag) {
  std::vector<std::optional<Subprocess>> ranks;
  for (int r = 0; r < world; ++r) {
    std::string base = dir.path() + "/" + tag + std::to_string(r);
    auto p = Subprocess::Spawn(
        {TPJIT_TEST_RANK, daemon.socket(), spec, std::to_string(r),
         std::to_string(world), base + ".manifest"},
        base + ".out");
    if (p.ok())
      ranks.emplace_back(std::move(*p));
    else
      ranks.emplace_back();
  }
  std::vector<RankResult> results;
  for (int r = 0; r < world; ++r) {
    std::string base = dir.path() + "/" + tag + std::to_string(r);
    RankResult res;
    res.exit_code = ranks[r] ? ranks[r]->WaitForever() : -1;
    std::vector<std::string> f =
        absl::StrSplit(ReadWholeFile(base + ".out"), absl::ByAnyChar(" \n"));
    if (res.exit_code == 0 && f.size() >= 3) {
      res.digest = f[0];
      (void)absl::SimpleAtoi(f[1], &res.compiled);
      (void)absl::SimpleAtoi(f[2], &res.hits);
    }
    res.manifest = ReadWholeFile(base + ".manifest");
    results.push_back(res);
  }
  return results;
}

size_t DistinctKernels(const std::string& spec_path) {
  auto spec = ParseSpecJson(ReadWholeFile(spec_path));
  return PlanWarmup(*spec)->kernels.size();
}

TEST(DaemonIntegrationTest, EightRanksOneJobThenAllHitsAfterRestart) {
  TempDir dir;
  const std::string spec = kSpecs + "/qwen3-30b-a3b-tp4.json";
  const size_t distinct = DistinctKernels(spec);
  std::string cold_digest;
  {
    Daemon daemon(dir.path(), {"--slots", "2", "--procs", "1"});
    ASSERT_TRUE(daemon.WaitServing());
    auto results = RunRanks(dir, daemon, spec, 8, "cold");
    std::set<std::string> manifests, digests;
    for (const auto& r : results) {
      ASSERT_EQ(r.exit_code, 0);
      manifests.insert(r.manifest);
      digests.insert(r.digest);
    }
    EXPECT_EQ(manifests.size(), 1u) << "manifests differ between ranks";
    EXPECT_EQ(digests.size(), 1u);
    cold_digest = *digests.begin();
    auto stats = daemon.Stats();
    EXPECT_EQ(stats.compiles(), static_cast<int64_t>(distinct));
    EXPECT_EQ(stats.jobs(), 1);
    EXPECT_EQ(stats.warmup_calls(), 8);
    EXPECT_EQ(daemon.Stop(), 0);
  }
  Daemon again(dir.path(), {"--slots", "2", "--procs", "1"});
  ASSERT_TRUE(again.WaitServing());
  auto warm = RunRanks(dir, again, spec, 2, "warm");
  for (const auto& r : warm) {
    ASSERT_EQ(r.exit_code, 0);
    EXPECT_EQ(r.compiled, 0);
    EXPECT_EQ(r.hits, static_cast<int>(distinct));
    // Served from cache, the manifest is the same bytes as the cold one.
    EXPECT_EQ(r.digest, cold_digest);
  }
  EXPECT_EQ(again.Stats().compiles(), 0);
  tpjit::v1::Manifest m;
  ASSERT_TRUE(m.ParseFromString(warm[0].manifest));
  EXPECT_EQ(m.kernels_size(), static_cast<int>(distinct));
  // Fetch returns the bytes the manifest describes.
  grpc::ClientContext ctx;
  tpjit::v1::FetchRequest req;
  req.set_key(m.kernels(0).key());
  auto reader = again.stub().Fetch(&ctx, req);
  std::string bytes;
  tpjit::v1::FetchChunk chunk;
  while (reader->Read(&chunk)) bytes += chunk.data();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(static_cast<int64_t>(bytes.size()), m.kernels(0).cubin_bytes());
  EXPECT_EQ(bytes.substr(0, 4),
            "\x7f"
            "ELF");
}

grpc::Status WarmupStatus(Daemon& daemon, const tpjit::v1::WarmupRequest& r) {
  grpc::ClientContext ctx;
  auto reader = daemon.stub().Warmup(&ctx, r);
  tpjit::v1::WarmupEvent e;
  while (reader->Read(&e)) {
  }
  return reader->Finish();
}

TEST(DaemonIntegrationTest, BadRequestsAreInvalidArgumentNamingTheField) {
  TempDir dir;
  Daemon daemon(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(daemon.WaitServing());
  auto spec = *ParseSpecJson(ReadWholeFile(kSpecs + "/qwen3-30b-a3b-tp4.json"));
  tpjit::v1::WarmupRequest req;
  *req.mutable_spec() = spec;
  req.set_world(4);
  req.mutable_spec()->mutable_shapes(2)->set_k(1000);
  grpc::Status s = WarmupStatus(daemon, req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("shapes[2].k"), std::string::npos)
      << s.error_message();
  *req.mutable_spec() = spec;
  req.set_rank(4);
  s = WarmupStatus(daemon, req);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("rank"), std::string::npos);
  req.set_rank(0);
  for (int i = 0; i < 600; ++i)
    *req.mutable_spec()->add_shapes() = spec.shapes(0);
  s = WarmupStatus(daemon, req);  // oversize
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("shapes"), std::string::npos);
  grpc::ClientContext ctx;
  tpjit::v1::FetchRequest fetch;
  fetch.set_key("../../etc/passwd");
  auto reader = daemon.stub().Fetch(&ctx, fetch);
  tpjit::v1::FetchChunk chunk;
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(daemon.Stats().compiles(), 0);  // nothing was lost or started
}

std::vector<pid_t> Children(pid_t parent) {
  std::vector<pid_t> out;
  std::string task_dir = "/proc/" + std::to_string(parent) + "/task";
  DIR* d = opendir(task_dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string kids = ReadWholeFile(task_dir + "/" + e->d_name + "/children");
    for (absl::string_view k : absl::StrSplit(kids, ' ', absl::SkipEmpty())) {
      int pid = 0;
      if (absl::SimpleAtoi(k, &pid)) out.push_back(pid);
    }
  }
  closedir(d);
  return out;
}

TEST(DaemonIntegrationTest, KilledWorkerMidJobStillCompletes) {
  TempDir dir;
  Daemon daemon(dir.path(), {"--slots", "2", "--procs", "1"});
  ASSERT_TRUE(daemon.WaitServing());
  const std::string spec = kSpecs + "/qwen3-30b-a3b-tp4.json";
  std::vector<RankResult> results;
  std::thread ranks([&] { results = RunRanks(dir, daemon, spec, 2, "k"); });
  // Wait until compiling is under way, then kill -9 one worker process.
  bool killed = false;
  for (int i = 0; i < 600 && !killed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (daemon.Stats().compiles() < 1) continue;
    auto kids = Children(daemon.pid());
    if (!kids.empty()) killed = kill(kids.front(), SIGKILL) == 0;
  }
  ranks.join();
  ASSERT_TRUE(killed);
  for (const auto& r : results) ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(results[0].digest, results[1].digest);
  auto stats = daemon.Stats();
  EXPECT_GE(stats.worker_restarts(), 1);
  EXPECT_EQ(stats.compile_failures(), 0);
  EXPECT_TRUE(stats.serving());
}

TEST(DaemonIntegrationTest, HungCompileIsKilledAtItsLimitAndReported) {
  TempDir dir;
  Daemon daemon(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(daemon.WaitServing());
  tpjit::v1::CompileRequest req;
  req.set_backend(tpjit::v1::NVRTC);
  req.set_arch("sm_90a");
  req.set_timeout_seconds(0.05);  // far below any real compile
  auto* src = req.add_sources();
  src->set_name("slow.cu");
  src->set_source(R"(
template <int N> __global__ void slow(float* x) {
#pragma unroll
  for (int i = 0; i < N; ++i) x[i] = x[i] * 1.0001f + x[(i * 7) % N];
})");
  src->add_name_expressions("slow<20000>");
  grpc::ClientContext ctx;
  tpjit::v1::CompileResponse resp;
  ASSERT_TRUE(daemon.stub().Compile(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.results_size(), 1);
  EXPECT_FALSE(resp.results(0).ok());
  EXPECT_NE(resp.results(0).error().find("time limit"), std::string::npos)
      << resp.results(0).error();
  EXPECT_GE(daemon.Stats().worker_restarts(), 2);
  EXPECT_TRUE(daemon.WaitServing());  // workers were restarted
}

TEST(DaemonIntegrationTest, HealthAnswersTheStandardClient) {
  TempDir dir;
  Daemon daemon(dir.path(), {"--procs", "1"});
  ASSERT_TRUE(daemon.WaitServing());
  EXPECT_EQ(daemon.Health("tpjit.v1.Tpjit"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(daemon.Health("no.such.Service"), -1);  // NOT_FOUND
  auto stats = daemon.Stats();
  EXPECT_FALSE(stats.nvrtc_version().empty());
  EXPECT_EQ(stats.slots(), 1);
  EXPECT_EQ(daemon.Stop(), 0);
}

TEST(DaemonIntegrationTest, ClientDeadlineHonouredWithNoDaemon) {
  TempDir dir;
  auto channel = grpc::CreateChannel("unix:" + dir.path() + "/nobody.sock",
                                     grpc::InsecureChannelCredentials());
  auto stub = tpjit::v1::Tpjit::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);
  auto start = std::chrono::steady_clock::now();
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::milliseconds(500));
  tpjit::v1::StatsResponse resp;
  grpc::Status s = stub->Stats(&ctx, tpjit::v1::StatsRequest(), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

}  // namespace
}  // namespace tpjit::testing
