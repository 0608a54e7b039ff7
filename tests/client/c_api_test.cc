// The C ABI (tpjit_c.h) against a fake daemon on a temp Unix socket: the
// test itself calls only tpjit_* functions.
#include <string>
#include <vector>

#include "client/include/tpjit/tpjit_c.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/fake_daemon.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;
using tpjit::testing::CubinFor;
using tpjit::testing::FakeDaemon;

constexpr char kSpec[] = R"({
  "name": "tiny", "target": {"arch": "sm_90a", "numSms": 132},
  "mPolicy": {"kind": "FULL"},
  "shapes": [{"family": "fp8_gemm_nt", "n": 4096, "k": 7168}]})";

struct Progress {
  std::vector<int> done;
  std::string last_phase;
};

void OnProgress(void* user, int32_t done, int32_t, int32_t, int32_t, int32_t,
                const char* phase) {
  auto* p = static_cast<Progress*>(user);
  p->done.push_back(done);
  p->last_phase = phase;
}

class CApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(tpjit_connect(daemon_.socket().c_str(), 5, &client_), TPJIT_OK)
        << tpjit_last_error();
  }
  void TearDown() override {
    tpjit_manifest_free(manifest_);
    tpjit_client_free(client_);
  }
  void Warm() {
    ASSERT_EQ(tpjit_warmup(client_, kSpec, 0, 2, "g", 10, OnProgress,
                           &progress_, &manifest_),
              TPJIT_OK)
        << tpjit_last_error();
  }

  FakeDaemon daemon_;
  tpjit_client* client_ = nullptr;
  tpjit_manifest* manifest_ = nullptr;
  Progress progress_;
};

TEST_F(CApiTest, WarmupLookupFetch) {
  Warm();
  EXPECT_EQ(progress_.done, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(progress_.last_phase, "done");
  EXPECT_STREQ(tpjit_manifest_digest(manifest_), "manifest-digest-0123");
  EXPECT_EQ(tpjit_manifest_kernel_count(manifest_), 3);
  EXPECT_EQ(tpjit_manifest_shape_count(manifest_), 2);
  EXPECT_EQ(tpjit_manifest_m_max(manifest_), 16384);
  tpjit_summary summary;
  tpjit_manifest_summary(manifest_, &summary);
  EXPECT_EQ(summary.distinct_kernels, 3);
  EXPECT_EQ(summary.compiled, 2);
  EXPECT_EQ(summary.cache_hits, 1);
  EXPECT_DOUBLE_EQ(summary.wall_seconds, 1.5);

  int32_t kernel = -1;
  ASSERT_EQ(tpjit_lookup(manifest_, 0, 100, &kernel), TPJIT_OK);
  EXPECT_EQ(kernel, 1);
  ASSERT_EQ(tpjit_lookup(manifest_, 1, 1, &kernel), TPJIT_OK);
  EXPECT_EQ(kernel, 1);
  EXPECT_STREQ(tpjit_kernel_key(manifest_, 1), "key1");
  EXPECT_STREQ(tpjit_kernel_lowered_name(manifest_, 1), "_Z6kernelILi1EEvv");
  EXPECT_EQ(tpjit_kernel_key(manifest_, 3), nullptr);

  size_t size = 0;
  ASSERT_EQ(tpjit_fetch(client_, manifest_, 1, nullptr, 0, &size), TPJIT_OK)
      << tpjit_last_error();
  ASSERT_EQ(size, CubinFor(1).size());
  std::string small(10, '\0');
  EXPECT_EQ(
      tpjit_fetch(client_, manifest_, 1, small.data(), small.size(), &size),
      TPJIT_ERR_OUT_OF_RANGE);
  EXPECT_THAT(tpjit_last_error(), HasSubstr("smaller"));
  std::string buffer(size, '\0');
  ASSERT_EQ(
      tpjit_fetch(client_, manifest_, 1, buffer.data(), buffer.size(), &size),
      TPJIT_OK);
  EXPECT_EQ(buffer, CubinFor(1));
}

TEST_F(CApiTest, ErrorsCarryCodesAndMessages) {
  tpjit_manifest* m = nullptr;
  EXPECT_EQ(tpjit_warmup(client_, "{not json", 0, 1, nullptr, 10, nullptr,
                         nullptr, &m),
            TPJIT_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(tpjit_last_error()), "");
  EXPECT_EQ(m, nullptr);
  daemon_.service().warmup_status =
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many kernels");
  EXPECT_EQ(
      tpjit_warmup(client_, kSpec, 0, 1, nullptr, 10, nullptr, nullptr, &m),
      TPJIT_ERR_RESOURCE_EXHAUSTED);
  EXPECT_THAT(tpjit_last_error(), HasSubstr("too many kernels"));
  daemon_.service().warmup_status = grpc::Status::OK;
  Warm();
  int32_t kernel = 0;
  EXPECT_EQ(tpjit_lookup(manifest_, 0, 0, &kernel), TPJIT_ERR_OUT_OF_RANGE);
  EXPECT_EQ(tpjit_lookup(manifest_, 5, 1, &kernel), TPJIT_ERR_INVALID_ARGUMENT);
  size_t size = 0;
  EXPECT_EQ(tpjit_fetch(client_, manifest_, 7, nullptr, 0, &size),
            TPJIT_ERR_INVALID_ARGUMENT);
}

TEST(CApiNoDaemonTest, ConnectNamesTheSocket) {
  tpjit_client* client = nullptr;
  EXPECT_EQ(tpjit_connect("/nonexistent/tpjit/tpjitd.sock", 0.5, &client),
            TPJIT_ERR_UNAVAILABLE);
  EXPECT_EQ(client, nullptr);
  EXPECT_THAT(tpjit_last_error(), HasSubstr("/nonexistent/tpjit/tpjitd.sock"));
  tpjit_client_free(nullptr);
  tpjit_manifest_free(nullptr);
}

}  // namespace
}  // namespace tpjit
