// The exact inputs of issue 12 against the real tpjitd binary: the crash
// inputs are answered INVALID_ARGUMENT (not std::bad_alloc), 12 MiB names and
// groups are refused without the daemon's memory growing, and health keeps
// liveness and readiness apart.
#include <climits>
#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon_harness.h"
#include "tpjit/v1/barrier.grpc.pb.h"

namespace tpjit::testing {
namespace {

using ::testing::HasSubstr;

// VmRSS of `pid` in bytes (0 if unknown).
int64_t RssBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view l = line;
    if (!absl::ConsumePrefix(&l, "VmRSS:")) continue;
    int64_t kb = 0;
    std::vector<std::string> f = absl::StrSplit(l, ' ', absl::SkipWhitespace());
    if (!f.empty() && absl::SimpleAtoi(f[0], &kb)) return kb * 1024;
  }
  return 0;
}

class BoundsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(daemon_.WaitServing());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxSendMessageSize(-1);
    channel_ = grpc::CreateCustomChannel(
        "unix:" + daemon_.socket(), grpc::InsecureChannelCredentials(), args);
    barrier_ = tpjit::v1::BarrierService::NewStub(channel_);
  }
  void TearDown() override {
    barrier_.reset();
    channel_.reset();
  }

  grpc::Status Barrier(const std::string& group, int rank, int world,
                       int64_t timeout_ms) {
    tpjit::v1::BarrierRequest req;
    req.set_group(group);
    req.set_rank(rank);
    req.set_world(world);
    req.set_timeout_ms(timeout_ms);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    tpjit::v1::BarrierReply reply;
    return barrier_->Barrier(&ctx, req, &reply);
  }

  grpc::Status Rendezvous(const std::string& group, int rank, int world,
                          int64_t timeout_ms) {
    tpjit::v1::RendezvousRequest req;
    req.set_group(group);
    req.set_rank(rank);
    req.set_world(world);
    req.set_timeout_ms(timeout_ms);
    if (rank == 0) req.set_value("nccl-id");
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    tpjit::v1::RendezvousReply reply;
    return barrier_->Rendezvous(&ctx, req, &reply);
  }

  grpc::Status Warmup(const std::string& group, const std::string& name) {
    tpjit::v1::WarmupRequest req;
    req.set_rank(0);
    req.set_world(1);
    req.set_group(group);
    auto* spec = req.mutable_spec();
    spec->set_name(name);
    spec->mutable_target()->set_arch("sm_90a");
    spec->mutable_target()->set_num_sms(132);
    spec->mutable_m_policy()->set_kind(tpjit::v1::MPolicy::FAST);
    auto* shape = spec->add_shapes();
    shape->set_family("bf16_gemm_nt");
    shape->set_n(2048);
    shape->set_k(1024);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(20));
    auto reader = daemon_.stub().Warmup(&ctx, req);
    tpjit::v1::WarmupEvent event;
    while (reader->Read(&event)) {
    }
    return reader->Finish();
  }

  TempDir dir_;
  Daemon daemon_{dir_.path(), {"--slots", "1", "--procs", "1"}};
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tpjit::v1::BarrierService::Stub> barrier_;
};

TEST_F(BoundsIntegrationTest, IssueCrashInputsAreInvalidArgument) {
  // Barrier{group:"x", rank:0, world:2147483647, timeout_ms:100}.
  grpc::Status s = Barrier("x", 0, INT_MAX, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("world: 2147483647 is outside"));
  s = Rendezvous("x", 0, INT_MAX, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  s = Rendezvous("x", 1, INT_MAX, 100);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Barrier("x", 0, 1, 100).error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(kill(daemon_.pid(), 0), 0) << "tpjitd died";
  EXPECT_EQ(daemon_.Health(""), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST_F(BoundsIntegrationTest, TwelveMebibyteNamesAreRefusedWithoutGrowth) {
  const std::string huge(12 << 20, 'n');
  // Warm the allocator and the channel with one refused call of each kind.
  EXPECT_EQ(Barrier(huge, 0, 2, 100).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const int64_t before = RssBytes(daemon_.pid());
  ASSERT_GT(before, 0);
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(Barrier(huge, 0, 2, 100).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(Rendezvous(huge, 1, 2, 100).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(Warmup(huge, "m").error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(Warmup("g", huge).error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  // 32 requests of 12 MiB: kept, they were 384 MiB (issue 12 saw 54 -> 299).
  const int64_t after = RssBytes(daemon_.pid());
  std::cerr << "tpjitd RSS " << (before >> 20) << " MiB -> " << (after >> 20)
            << " MiB after 32 refused 12 MiB requests\n";
#if !defined(__SANITIZE_ADDRESS__)
  // (Under ASan freed memory sits in its quarantine, up to 256 MiB: RSS says
  // nothing there; the refusals above and `tpjit status` below still count.)
  EXPECT_LT(after - before, int64_t{64} << 20)
      << "RSS " << before << " -> " << after;
#endif
  // `tpjit status` still works: nothing of the names was kept.
  grpc::ClientContext ctx;
  tpjit::v1::StatusResponse status;
  ASSERT_TRUE(
      daemon_.stub().Status(&ctx, tpjit::v1::StatusRequest(), &status).ok());
  EXPECT_LT(status.ByteSizeLong(), 64u << 10);
}

TEST_F(BoundsIntegrationTest, LivenessIsApartFromReadiness) {
  EXPECT_EQ(daemon_.Health("tpjit.v1.Liveness"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(daemon_.Health("tpjit.v1.Tpjit"),
            grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace tpjit::testing
