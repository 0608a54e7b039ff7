// Every request bound of tpjitd's RPCs, through the real gRPC services of an
// in-process daemon (fake workers): each bad field is INVALID_ARGUMENT naming
// the field and the limit, client timeouts are clamped to the server's
// maximum, full queues answer RESOURCE_EXHAUSTED and make readiness
// NOT_SERVING with a reason, and abandoned warm-ups stop being planned.
#include <climits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/in_process_daemon.h"

namespace tpjit::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using tpjit::v1::BarrierReply;
using tpjit::v1::BarrierRequest;
using tpjit::v1::RendezvousReply;
using tpjit::v1::RendezvousRequest;
using tpjit::v1::WarmupEvent;
using tpjit::v1::WarmupRequest;

std::chrono::system_clock::time_point In(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(d);
}

grpc::Status Barrier(InProcessDaemon& d, const BarrierRequest& req,
                     absl::Duration deadline = absl::Seconds(10)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(deadline));
  BarrierReply reply;
  return d.barrier().Barrier(&ctx, req, &reply);
}

grpc::Status Rendezvous(InProcessDaemon& d, const RendezvousRequest& req) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(absl::Seconds(10)));
  RendezvousReply reply;
  return d.barrier().Rendezvous(&ctx, req, &reply);
}

// Runs one warm-up to its end (or `deadline`); the final status.
grpc::Status Warmup(InProcessDaemon& d, const WarmupRequest& req,
                    absl::Duration deadline = absl::Seconds(20)) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(deadline));
  auto reader = d.stub().Warmup(&ctx, req);
  WarmupEvent event;
  while (reader->Read(&event)) {
  }
  return reader->Finish();
}

BarrierRequest BarrierOf(std::string group, int rank, int world,
                         int64_t timeout_ms) {
  BarrierRequest r;
  r.set_group(std::move(group));
  r.set_rank(rank);
  r.set_world(world);
  r.set_timeout_ms(timeout_ms);
  return r;
}

RendezvousRequest RendezvousOf(std::string group, int rank, int world,
                               int64_t timeout_ms) {
  RendezvousRequest r;
  r.set_group(std::move(group));
  r.set_rank(rank);
  r.set_world(world);
  r.set_timeout_ms(timeout_ms);
  if (rank == 0) r.set_value("nccl-id");
  return r;
}

// A valid spec of `shapes` bf16 shapes under `policy` (FULL by default).
WarmupRequest WarmupOf(int shapes, int64_t chunked_prefill = 8192) {
  WarmupRequest r;
  r.set_rank(0);
  r.set_world(1);
  r.set_group("g");
  auto* spec = r.mutable_spec();
  spec->set_name("bounds");
  spec->mutable_target()->set_arch("sm_90a");
  spec->mutable_target()->set_num_sms(132);
  spec->mutable_m_policy()->set_kind(tpjit::v1::MPolicy::FULL);
  spec->mutable_m_policy()->set_chunked_prefill_size(chunked_prefill);
  for (int i = 0; i < shapes; ++i) {
    auto* s = spec->add_shapes();
    s->set_family("bf16_gemm_nt");
    s->set_n(64 * (i + 1));
    s->set_k(1024);
  }
  return r;
}

// The heaviest spec allowed (32 shapes x 131072 M values = kMaxPlanWork):
// seconds of planning on one core.
WarmupRequest HeavyWarmup(int variant) {
  WarmupRequest r = WarmupOf(32, 65536);
  r.mutable_spec()->set_name("heavy-" + std::to_string(variant));
  r.mutable_spec()->mutable_shapes(0)->set_k(1024 * (variant + 2));
  return r;
}

void ExpectInvalid(const grpc::Status& s, const std::string& field,
                   const std::string& limit) {
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << s.error_message();
  EXPECT_THAT(s.error_message(), AllOf(HasSubstr(field), HasSubstr(limit)));
}

class RequestBoundsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(d_.status().ok()) << d_.status(); }
  InProcessDaemon d_{[](DaemonConfig& c) { c.max_client_timeout_seconds = 1; }};
};

TEST_F(RequestBoundsTest, IssueCrashInputsAreInvalidArgument) {
  ExpectInvalid(Barrier(d_, BarrierOf("x", 0, INT_MAX, 100)), "world",
                "1..1024");
  ExpectInvalid(Rendezvous(d_, RendezvousOf("x", 0, INT_MAX, 100)), "world",
                "1..1024");
  ExpectInvalid(Rendezvous(d_, RendezvousOf("x", 1, INT_MAX, 100)), "world",
                "1..1024");
  EXPECT_TRUE(d_.daemon().Serving());
  EXPECT_TRUE(Barrier(d_, BarrierOf("x", 0, 1, 100)).ok());
}

TEST_F(RequestBoundsTest, BarrierFieldsAreBounded) {
  ExpectInvalid(Barrier(d_, BarrierOf("x", 2, 2, 100)), "rank 2", "0..1");
  ExpectInvalid(Barrier(d_, BarrierOf("x", -1, 2, 100)), "rank -1", "0..1");
  ExpectInvalid(Barrier(d_, BarrierOf("x", 0, 0, 100)), "world", "1..1024");
  ExpectInvalid(Barrier(d_, BarrierOf(std::string(300, 'g'), 0, 1, 100)),
                "group", "256 bytes");
  ExpectInvalid(Barrier(d_, BarrierOf("a\tb", 0, 1, 100)), "group",
                "printable");
  ExpectInvalid(Barrier(d_, BarrierOf("", 0, 1, 100)), "group", "empty");
  ExpectInvalid(Barrier(d_, BarrierOf("x", 0, 1, -5)), "timeout_ms", "-5");
}

TEST_F(RequestBoundsTest, RendezvousFieldsAreBounded) {
  RendezvousRequest big = RendezvousOf("x", 0, 2, 100);
  big.set_value(std::string(4097, 'v'));
  ExpectInvalid(Rendezvous(d_, big), "value", "4096");
  ExpectInvalid(Rendezvous(d_, RendezvousOf("x", 3, 2, 100)), "rank 3", "0..1");
  ExpectInvalid(Rendezvous(d_, RendezvousOf("x", 1, 2, -1)), "timeout_ms",
                "negative");
  ExpectInvalid(Rendezvous(d_, RendezvousOf(std::string(257, 'g'), 0, 2, 1)),
                "group", "256");
}

TEST_F(RequestBoundsTest, TwelveMebibyteNamesAreRefused) {
  const std::string huge(12 << 20, 'n');
  ExpectInvalid(Barrier(d_, BarrierOf(huge, 0, 1, 100)), "barrier",
                "16384 bytes");
  ExpectInvalid(Rendezvous(d_, RendezvousOf(huge, 0, 2, 100)), "rendezvous",
                "16384 bytes");
  WarmupRequest w = WarmupOf(1);
  w.set_group(huge);
  ExpectInvalid(Warmup(d_, w), "warmup", "bytes for this RPC");
  w = WarmupOf(1);
  w.set_group(std::string(257, 'g'));
  ExpectInvalid(Warmup(d_, w), "group", "256 bytes");
  w = WarmupOf(1);
  w.mutable_spec()->set_name(std::string(257, 'n'));
  ExpectInvalid(Warmup(d_, w), "name", "256 bytes");
  EXPECT_TRUE(d_.daemon().Status().jobs().empty());
}

TEST_F(RequestBoundsTest, WarmupFieldsAreBounded) {
  WarmupRequest w = WarmupOf(1);
  w.set_world(INT_MAX);
  ExpectInvalid(Warmup(d_, w), "world", "1..1024");
  w = WarmupOf(1);
  w.set_rank(1);
  ExpectInvalid(Warmup(d_, w), "rank 1", "0..0");
  ExpectInvalid(Warmup(d_, WarmupOf(513)), "shapes", "512");
  // Issue 12's 512-shape FULL spec: 67 million M values to plan.
  ExpectInvalid(Warmup(d_, WarmupOf(512, 65536)), "shapes",
                "exceeds the planning limit of 4194304");
  w = WarmupOf(1);
  w.mutable_spec()->set_comment(std::string(5000, 'c'));
  ExpectInvalid(Warmup(d_, w), "comment", "4096 bytes");
  w = WarmupOf(1);
  auto* policy = w.mutable_spec()->mutable_m_policy();
  policy->set_kind(tpjit::v1::MPolicy::EXPLICIT);
  policy->set_chunked_prefill_size(0);
  for (int m = 1; m <= 131073; ++m) policy->add_m_values(m);
  ExpectInvalid(Warmup(d_, w), "mValues", "131072");
  w = WarmupOf(1);
  w.mutable_spec()->mutable_shapes(0)->set_family(std::string(1 << 20, 'f'));
  ExpectInvalid(Warmup(d_, w), "shapes[0].family", "256 bytes");
  w = WarmupOf(1);
  w.mutable_spec()->mutable_target()->set_arch(std::string(1 << 20, 'a'));
  ExpectInvalid(Warmup(d_, w), "target.arch", "16 bytes");
  w = WarmupOf(1);
  policy = w.mutable_spec()->mutable_m_policy();
  policy->set_kind(tpjit::v1::MPolicy::EXPLICIT);
  policy->set_chunked_prefill_size(0);
  w.mutable_spec()->mutable_m_policy()->add_m_values(INT_MAX);
  EXPECT_EQ(Warmup(d_, w).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(RequestBoundsTest, SmallRpcsRefuseOversizedRequests) {
  tpjit::v1::StatsRequest stats;
  stats.GetReflection()->MutableUnknownFields(&stats)->AddLengthDelimited(
      99, std::string(1 << 20, 'x'));
  grpc::ClientContext ctx;
  tpjit::v1::StatsResponse response;
  ExpectInvalid(d_.stub().Stats(&ctx, stats, &response), "stats", "4096 bytes");
  tpjit::v1::FetchRequest fetch;
  fetch.set_key(std::string(1 << 20, 'a'));
  grpc::ClientContext fctx;
  auto reader = d_.stub().Fetch(&fctx, fetch);
  tpjit::v1::FetchChunk chunk;
  while (reader->Read(&chunk)) {
  }
  ExpectInvalid(reader->Finish(), "fetch", "4096 bytes");
}

// Compile names reach log lines (a trace line per task) and recipes: a
// control byte is refused by field. AwaitKeys: at most 4096 hex keys, a
// bounded request.
TEST_F(RequestBoundsTest, CompileNamesAndAwaitKeysAreBounded) {
  auto compile = [&](const std::string& name, const std::string& group) {
    tpjit::v1::CompileRequest r;
    r.set_backend(tpjit::v1::NVRTC);
    r.set_arch("sm_90a");
    r.set_group(group);
    auto* src = r.add_sources();
    src->set_name(name);
    src->set_source("extern \"C\" __global__ void k() {}");
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(30)));
    tpjit::v1::CompileResponse response;
    return d_.stub().Compile(&ctx, r, &response);
  };
  ExpectInvalid(compile("k.cu\ntpjitd: forged line", "g"), "sources[0].name",
                "byte 0x0a");
  ExpectInvalid(compile("k.cu", "g\x1b[2J"), "group", "byte 0x1b");
  ExpectInvalid(compile(std::string(257, 'n'), "g"), "sources[0].name",
                "256 bytes");

  auto await = [&](const tpjit::v1::AwaitKeysRequest& r) {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(absl::Seconds(10)));
    tpjit::v1::AwaitKeysResponse response;
    return d_.stub().AwaitKeys(&ctx, r, &response);
  };
  tpjit::v1::AwaitKeysRequest many;
  for (int i = 0; i <= 4096; ++i) many.add_keys(std::string(64, 'a'));
  ExpectInvalid(await(many), "keys", "at most 4096");
  tpjit::v1::AwaitKeysRequest path;
  path.add_keys("../../etc/passwd");
  ExpectInvalid(await(path), "keys[0]", "64-digit hex");
  tpjit::v1::AwaitKeysRequest huge;
  huge.add_keys(std::string(1 << 20, 'a'));
  ExpectInvalid(await(huge), "await_keys", "bytes");
  // A well-formed unknown key is answered at once.
  tpjit::v1::AwaitKeysRequest unknown;
  unknown.add_keys(std::string(64, 'b'));
  EXPECT_TRUE(await(unknown).ok());
}

TEST_F(RequestBoundsTest, BarrierTimeoutIsClampedToTheServerMaximum) {
  // The client asks for 11 days; --max-client-timeout is 1 s here.
  const absl::Time start = absl::Now();
  grpc::Status s =
      Barrier(d_, BarrierOf("clamp", 0, 2, 1000000000000), absl::Seconds(30));
  EXPECT_EQ(s.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
      << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("timed out after 1.0s"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST(RequestSizeTest, MessagesOverTheServerLimitAreRefused) {
  InProcessDaemon d([](DaemonConfig& c) { c.max_request_bytes = 1 << 20; });
  ASSERT_TRUE(d.status().ok()) << d.status();
  tpjit::v1::CompileRequest req;
  req.set_backend(tpjit::v1::NVRTC);
  req.set_arch("sm_90a");
  auto* src = req.add_sources();
  src->set_name("big.cu");
  src->set_source(std::string(2 << 20, ' '));
  grpc::ClientContext ctx;
  tpjit::v1::CompileResponse resp;
  grpc::Status s = d.stub().Compile(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
  EXPECT_TRUE(d.daemon().Serving());
}

TEST(PlanningPoolTest, FullQueueIsResourceExhaustedAndNotReady) {
  InProcessDaemon d([](DaemonConfig& c) {
    c.plan_threads = 1;
    c.max_queued_plans = 2;
  });
  ASSERT_TRUE(d.status().ok()) << d.status();
  // Heavy warm-ups whose clients stay until cancelled: one plans, two wait,
  // the next is refused.
  struct Call {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<WarmupEvent>> reader;
  };
  std::vector<std::unique_ptr<Call>> calls;
  auto start = [&](int i) {
    auto call = std::make_unique<Call>();
    call->ctx.set_deadline(In(absl::Seconds(60)));
    call->reader = d.stub().Warmup(&call->ctx, HeavyWarmup(i));
    calls.push_back(std::move(call));
  };
  start(0);  // planned (for seconds) once Daemon::Warmup counted it
  ASSERT_TRUE(WaitFor([&] { return d.daemon().Stats().warmup_calls() == 1; },
                      absl::Seconds(10)));
  start(1);
  start(2);
  ASSERT_TRUE(WaitFor([&] { return d.daemon().QueuedPlans() == 2; },
                      absl::Seconds(10)));
  grpc::Status refused = Warmup(d, HeavyWarmup(3));
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  EXPECT_THAT(refused.error_message(), HasSubstr("--max-queued-plans"));
  absl::Status ready = d.daemon().Readiness();
  EXPECT_FALSE(ready.ok());
  EXPECT_THAT(ready.message(), HasSubstr("planning queue saturated"));
  EXPECT_THAT(d.daemon().Stats().not_serving_reason(),
              HasSubstr("planning queue saturated"));
  // The clients go away: the queue drains without planning them.
  for (auto& call : calls) call->ctx.TryCancel();
  for (auto& call : calls) {
    EXPECT_EQ(call->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(WaitFor([&] { return d.daemon().Serving(); }, absl::Seconds(30)))
      << d.daemon().Readiness();
}

TEST(PlanningPoolTest, AbandonedWarmupsDoNotStarveTheNextOne) {
  InProcessDaemon d([](DaemonConfig& c) { c.plan_threads = 1; });
  ASSERT_TRUE(d.status().ok()) << d.status();
  // Issue 12: eight abandoned heavy FULL specs made the next warm-up wait
  // for all of their planning (51 s). Now the one being planned stops when
  // its client goes away, and the queued ones are never planned.
  std::vector<std::thread> abandoned;
  for (int i = 0; i < 8; ++i) {
    abandoned.emplace_back([&d, i] {
      EXPECT_EQ(Warmup(d, HeavyWarmup(i), absl::Milliseconds(200)).error_code(),
                grpc::StatusCode::DEADLINE_EXCEEDED);
    });
  }
  for (auto& t : abandoned) t.join();
  const absl::Time start = absl::Now();
  grpc::Status s = Warmup(d, WarmupOf(2), absl::Seconds(60));
  // Fake workers fail every compile: the warm-up ends with that error.
  EXPECT_THAT(s.error_message(), HasSubstr("fake worker"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
  EXPECT_EQ(d.daemon().counters().plans_cancelled.load(), 1)
      << "the plan running when its client left was not stopped";
  EXPECT_EQ(d.daemon().Stats().warmup_calls(), 2)
      << "abandoned warm-ups still queued were planned";
  EXPECT_TRUE(d.daemon().Serving()) << d.daemon().Readiness();
}

}  // namespace
}  // namespace tpjit::testing
