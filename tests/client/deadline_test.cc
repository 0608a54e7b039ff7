// A client's deadline is honoured when no daemon listens: Connect and every
// call fail within their deadline (plus a small margin) with UNAVAILABLE or
// DEADLINE_EXCEEDED, naming the socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "client/include/tpjit/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

class NoDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string t =
        (std::filesystem::temp_directory_path() / "tpjit-nod-XXXXXX").string();
    dir_ = mkdtemp(t.data());
    socket_ = dir_ + "/tpjitd.sock";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A socket file that exists but where nobody listens (a crashed daemon).
  void MakeStaleSocket() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", socket_.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ::close(fd);
    ASSERT_TRUE(std::filesystem::exists(socket_));
  }

  static double Since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  }

  std::string dir_;
  std::string socket_;
};

TEST_F(NoDaemonTest, ConnectFailsWithinConnectTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  auto client = Client::Connect(socket_, {.connect_timeout = absl::Seconds(1)});
  const double took = Since(t0);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(client.status().message(), HasSubstr(socket_));
  EXPECT_GE(took, 0.9);
  EXPECT_LT(took, 3.0);
}

TEST_F(NoDaemonTest, StaleSocketFileFailsWithinConnectTimeout) {
  MakeStaleSocket();
  const auto t0 = std::chrono::steady_clock::now();
  auto client = Client::Connect(socket_, {.connect_timeout = absl::Seconds(1)});
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_LT(Since(t0), 3.0);
}

TEST_F(NoDaemonTest, LazyClientCallsFailWithinTheirDeadline) {
  MakeStaleSocket();
  auto client =
      Client::Connect(socket_, {.connect_timeout = absl::ZeroDuration(),
                                .call_timeout = absl::Seconds(1)});
  ASSERT_TRUE(client.ok()) << client.status();
  const auto code = AnyOf(absl::StatusCode::kUnavailable,
                          absl::StatusCode::kDeadlineExceeded);
  auto t0 = std::chrono::steady_clock::now();
  auto warm = (*client)->Warmup({}, 0, 1, "", nullptr, absl::Seconds(1));
  EXPECT_THAT(warm.status().code(), code);
  EXPECT_THAT(warm.status().message(), HasSubstr(socket_));
  EXPECT_LT(Since(t0), 3.0);
  for (auto status :
       {(*client)->Stats().status(), (*client)->Status().status(),
        (*client)->Health().status(), (*client)->Fetch("k").status()}) {
    EXPECT_THAT(status.code(), code) << status;
    EXPECT_THAT(status.message(), HasSubstr(socket_));
  }
  EXPECT_LT(Since(t0), 8.0);
}

}  // namespace
}  // namespace tpjit
