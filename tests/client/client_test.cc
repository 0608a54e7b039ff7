// tpjit::Client against mock stubs: Warmup streams, Fetch reassembly and
// checks, unary calls, health, and LookupKernel for every M of a manifest.
#include "client/include/tpjit/client.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "src/common/digest.h"
#include "src/plan/planner.h"
#include "src/plan/spec.h"
#include "tests/client/mock_stub.h"
#include "tests/client/test_manifest.h"

namespace tpjit {
namespace {

using ::grpc::testing::MockClientReader;
using ::testing::_;
using ::testing::DoAll;
using ::testing::HasSubstr;
using ::testing::Return;
using ::testing::SetArgPointee;
using tpjit::testing::CubinFor;
using tpjit::testing::MockHealthStub;
using tpjit::testing::MockTpjitStub;
using tpjit::testing::TestManifest;

// A reader that yields `items` and then finishes with `status`.
template <typename R>
MockClientReader<R>* ReaderOf(std::vector<R> items,
                              grpc::Status status = grpc::Status::OK) {
  auto* reader = new MockClientReader<R>();
  ::testing::Sequence seq;
  for (const R& item : items) {
    EXPECT_CALL(*reader, Read(_))
        .InSequence(seq)
        .WillOnce(DoAll(SetArgPointee<0>(item), Return(true)));
  }
  EXPECT_CALL(*reader, Read(_)).InSequence(seq).WillOnce(Return(false));
  EXPECT_CALL(*reader, Finish()).WillOnce(Return(status));
  return reader;
}

class ClientTest : public ::testing::Test {
 protected:
  ClientTest()
      : stub_(std::make_shared<MockTpjitStub>()),
        health_(std::make_shared<MockHealthStub>()),
        client_(stub_, health_, "unix:/test.sock") {}

  std::vector<tpjit::v1::FetchChunk> Chunks(const std::string& bytes,
                                            size_t chunk) {
    std::vector<tpjit::v1::FetchChunk> out;
    for (size_t off = 0; off < bytes.size(); off += chunk) {
      tpjit::v1::FetchChunk c;
      c.set_data(bytes.substr(off, chunk));
      c.set_offset(static_cast<int64_t>(off));
      c.set_total_bytes(static_cast<int64_t>(bytes.size()));
      out.push_back(c);
    }
    return out;
  }

  std::shared_ptr<MockTpjitStub> stub_;
  std::shared_ptr<MockHealthStub> health_;
  Client client_;
};

TEST_F(ClientTest, WarmupReportsProgressAndReturnsManifest) {
  std::vector<tpjit::v1::WarmupEvent> events(3);
  events[0].mutable_progress()->set_done(1);
  events[1].mutable_progress()->set_done(2);
  *events[2].mutable_manifest() = TestManifest();
  events[2].mutable_summary()->set_distinct_kernels(3);
  tpjit::v1::WarmupRequest seen;
  EXPECT_CALL(*stub_, WarmupRaw(_, _))
      .WillOnce([&](grpc::ClientContext*, const tpjit::v1::WarmupRequest& r) {
        seen = r;
        return ReaderOf(events);
      });
  tpjit::v1::WarmupSpec spec;
  spec.set_name("tiny");
  std::vector<int> done;
  auto result = client_.Warmup(
      spec, 3, 8, "g", [&](const auto& p) { done.push_back(p.done()); },
      absl::Seconds(10));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(done, (std::vector<int>{1, 2}));
  EXPECT_EQ(result->manifest.digest(), TestManifest().digest());
  EXPECT_EQ(result->summary.distinct_kernels(), 3);
  EXPECT_EQ(seen.rank(), 3);
  EXPECT_EQ(seen.world(), 8);
  EXPECT_EQ(seen.group(), "g");
  EXPECT_EQ(seen.spec().name(), "tiny");
}

TEST_F(ClientTest, WarmupPassesTheDaemonsErrorOn) {
  EXPECT_CALL(*stub_, WarmupRaw(_, _))
      .WillOnce(Return(ReaderOf<tpjit::v1::WarmupEvent>(
          {}, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                           "shapes[0].n: must be > 0"))));
  auto result = client_.Warmup({}, 0, 1, "", nullptr, absl::Seconds(1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("shapes[0].n"));
}

TEST_F(ClientTest, WarmupWithoutManifestIsInternal) {
  tpjit::v1::WarmupEvent progress;
  progress.mutable_progress()->set_done(1);
  EXPECT_CALL(*stub_, WarmupRaw(_, _))
      .WillOnce(Return(ReaderOf(std::vector{progress})));
  auto result = client_.Warmup({}, 0, 1, "", nullptr, absl::Seconds(1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(result.status().message(), HasSubstr("without a manifest"));
}

TEST_F(ClientTest, UnavailableNamesTheSocket) {
  EXPECT_CALL(*stub_, WarmupRaw(_, _))
      .WillOnce(Return(ReaderOf<tpjit::v1::WarmupEvent>(
          {}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "connect failed"))));
  auto result = client_.Warmup({}, 0, 1, "", nullptr, absl::Seconds(1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("unix:/test.sock"));
}

TEST_F(ClientTest, FetchReassemblesChunks) {
  const std::string bytes = CubinFor(1, 2500);
  EXPECT_CALL(*stub_, FetchRaw(_, _))
      .WillOnce(Return(ReaderOf(Chunks(bytes, 1000))));
  auto got = client_.Fetch("k", Sha256Hex(bytes));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, bytes);
}

TEST_F(ClientTest, FetchOfManifestKernelChecksSizeAndHash) {
  const auto manifest = TestManifest();
  EXPECT_CALL(*stub_, FetchRaw(_, _))
      .WillOnce(Return(ReaderOf(Chunks(CubinFor(2), 1024))));
  auto got = client_.Fetch(manifest.kernels(2));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, CubinFor(2));
}

TEST_F(ClientTest, FetchChecksumMismatchIsDataLoss) {
  std::string bytes = CubinFor(0);
  const std::string sha = Sha256Hex(bytes);
  bytes[17] ^= 1;
  EXPECT_CALL(*stub_, FetchRaw(_, _))
      .WillOnce(Return(ReaderOf(Chunks(bytes, 1000))));
  auto got = client_.Fetch("k", sha);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("sha256"));
}

TEST_F(ClientTest, FetchOutOfOrderChunkIsDataLoss) {
  auto chunks = Chunks(CubinFor(0), 1000);
  std::swap(chunks[1], chunks[2]);
  EXPECT_CALL(*stub_, FetchRaw(_, _)).WillOnce(Return(ReaderOf(chunks)));
  EXPECT_EQ(client_.Fetch("k").status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ClientTest, FetchShortStreamIsDataLoss) {
  auto chunks = Chunks(CubinFor(0), 1000);
  chunks.pop_back();
  EXPECT_CALL(*stub_, FetchRaw(_, _)).WillOnce(Return(ReaderOf(chunks)));
  auto got = client_.Fetch("k");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(got.status().message(), HasSubstr("2000 bytes of 3000"));
}

TEST_F(ClientTest, FetchEmptyCubin) {
  tpjit::v1::FetchChunk empty;
  EXPECT_CALL(*stub_, FetchRaw(_, _))
      .WillOnce(Return(ReaderOf(std::vector{empty})));
  auto got = client_.Fetch("k", Sha256Hex(""));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->empty());
}

TEST_F(ClientTest, FetchUnknownKeyKeepsNotFound) {
  EXPECT_CALL(*stub_, FetchRaw(_, _))
      .WillOnce(Return(ReaderOf<tpjit::v1::FetchChunk>(
          {}, grpc::Status(grpc::StatusCode::NOT_FOUND, "no such key"))));
  EXPECT_EQ(client_.Fetch("k").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, StatsStatusCompile) {
  tpjit::v1::StatsResponse stats;
  stats.set_compiles(5);
  EXPECT_CALL(*stub_, Stats(_, _, _))
      .WillOnce(DoAll(SetArgPointee<2>(stats), Return(grpc::Status::OK)));
  ASSERT_TRUE(client_.Stats().ok());
  EXPECT_CALL(*stub_, Status(_, _, _))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::INTERNAL, "x")));
  EXPECT_EQ(client_.Status().status().code(), absl::StatusCode::kInternal);
  EXPECT_CALL(*stub_, Compile(_, _, _)).WillOnce(Return(grpc::Status::OK));
  EXPECT_TRUE(client_.Compile({}).ok());
}

TEST_F(ClientTest, HealthChecksBothServices) {
  using Response = MockHealthStub::Response;
  Response serving;
  serving.set_status(Response::SERVING);
  std::vector<std::string> services;
  EXPECT_CALL(*health_, Check(_, _, _))
      .Times(2)
      .WillRepeatedly([&](auto*, const auto& request, Response* response) {
        services.push_back(request.service());
        *response = serving;
        return grpc::Status::OK;
      });
  auto report = client_.Health();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->serving());
  EXPECT_EQ(services, (std::vector<std::string>{"", "tpjit.v1.Tpjit"}));
}

TEST_F(ClientTest, HealthUnknownServiceIsNotServing) {
  using Response = MockHealthStub::Response;
  Response serving;
  serving.set_status(Response::SERVING);
  EXPECT_CALL(*health_, Check(_, _, _))
      .WillOnce(DoAll(SetArgPointee<2>(serving), Return(grpc::Status::OK)))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown")));
  auto report = client_.Health();
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->serving());
  EXPECT_EQ(report->tpjit, Response::SERVICE_UNKNOWN);
}

// --- LookupKernel ------------------------------------------------------------

// The kernel a linear scan finds for m (after contig rounding), or -1.
int Reference(const tpjit::v1::ManifestShape& shape, int64_t m) {
  for (const auto& r : shape.ranges()) {
    if (r.lo() <= m && m <= r.hi()) return r.kernel();
  }
  return -1;
}

TEST(LookupKernelTest, EveryMOfTheTestManifest) {
  const auto manifest = TestManifest();
  ASSERT_TRUE(ValidateManifest(manifest).ok());
  for (int64_t m = 1; m <= manifest.m_max(); ++m) {
    auto plain = LookupKernel(manifest, 0, m);
    ASSERT_TRUE(plain.ok()) << m << ": " << plain.status();
    EXPECT_EQ(*plain, Reference(manifest.shapes(0), m)) << m;
    auto contig = LookupKernel(manifest, 1, m);
    ASSERT_TRUE(contig.ok()) << m << ": " << contig.status();
    EXPECT_EQ(*contig, Reference(manifest.shapes(1), (m + 127) / 128 * 128))
        << m;
  }
  EXPECT_EQ(*LookupKernel(manifest, 1, 1), 1);     // rounds up to 128
  EXPECT_EQ(*LookupKernel(manifest, 1, 1025), 2);  // rounds up to 1152
}

TEST(LookupKernelTest, Errors) {
  const auto manifest = TestManifest(16384);
  EXPECT_EQ(LookupKernel(manifest, 0, 0).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(LookupKernel(manifest, 0, 16385).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(LookupKernel(manifest, 2, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LookupKernel(manifest, -1, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto gap = manifest;
  gap.mutable_shapes(0)->mutable_ranges(1)->set_lo(100);  // 65..99 uncovered
  EXPECT_EQ(LookupKernel(gap, 0, 70).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(*LookupKernel(gap, 0, 64), 0);
}

TEST(LookupKernelTest, ValidateManifestRejectsOverlapAndBadKernel) {
  auto overlap = TestManifest();
  overlap.mutable_shapes(0)->mutable_ranges(1)->set_lo(64);
  EXPECT_FALSE(ValidateManifest(overlap).ok());
  auto bad = TestManifest();
  bad.mutable_shapes(1)->mutable_ranges(0)->set_kernel(9);
  EXPECT_FALSE(ValidateManifest(bad).ok());
}

// A manifest made from a real plan answers like the plan, for every M.
TEST(LookupKernelTest, AgreesWithThePlannerForEveryM) {
  tpjit::v1::WarmupSpec spec;
  spec.set_name("lookup");
  spec.mutable_target()->set_arch("sm_90a");
  spec.mutable_target()->set_num_sms(132);
  spec.mutable_m_policy()->set_kind(tpjit::v1::MPolicy::FULL);
  auto* s0 = spec.add_shapes();
  s0->set_family("fp8_gemm_nt");
  s0->set_n(4096);
  s0->set_k(7168);
  auto* s1 = spec.add_shapes();
  s1->set_family("bf16_grouped_gemm_nt_contig");
  s1->set_n(2048);
  s1->set_k(4096);
  s1->set_num_groups(8);
  auto plan = PlanWarmup(spec);
  ASSERT_TRUE(plan.ok()) << plan.status();
  tpjit::v1::Manifest manifest;
  manifest.set_m_max(plan->m_max);
  for (size_t i = 0; i < plan->kernels.size(); ++i) manifest.add_kernels();
  for (const ShapePlan& sp : plan->shapes) {
    auto* shape = manifest.add_shapes();
    *shape->mutable_shape() = sp.shape;
    for (const MRange& r : sp.ranges) {
      auto* range = shape->add_ranges();
      range->set_lo(r.lo);
      range->set_hi(r.hi);
      range->set_kernel(r.kernel);
    }
  }
  ASSERT_TRUE(ValidateManifest(manifest).ok());
  for (int64_t m = 1; m <= plan->m_max; ++m) {
    auto got = LookupKernel(manifest, 0, m);
    ASSERT_TRUE(got.ok()) << m << ": " << got.status();
    EXPECT_EQ(*got, *plan->Lookup(0, m)) << m;
    auto contig = LookupKernel(manifest, 1, m);
    ASSERT_TRUE(contig.ok()) << m << ": " << contig.status();
    EXPECT_EQ(*contig, *plan->Lookup(1, (m + 127) / 128 * 128)) << m;
  }
}

TEST(TargetForTest, PathsBecomeUnixTargets) {
  EXPECT_EQ(TargetFor("/run/tpjit/tpjitd.sock"), "unix:/run/tpjit/tpjitd.sock");
  EXPECT_EQ(TargetFor("rel/x.sock"), "unix:rel/x.sock");
  EXPECT_EQ(TargetFor("unix:/a"), "unix:/a");
  EXPECT_EQ(TargetFor("localhost:50051"), "localhost:50051");
  EXPECT_EQ(TargetFor("dns:///h:1"), "dns:///h:1");
}

}  // namespace
}  // namespace tpjit
