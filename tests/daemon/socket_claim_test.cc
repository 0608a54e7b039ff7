// One tpjitd per socket (issue 12): a second claim on a live path is refused
// naming the holder; a stale socket file is replaced; a path that is not a
// socket is never removed.
#include "daemon/socket_claim.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace tpjit {
namespace {

class SocketClaimTest : public ::testing::Test {
 protected:
  SocketClaimTest() {
    std::string t = std::filesystem::temp_directory_path() / "claim-XXXXXX";
    dir_ = mkdtemp(t.data());
    path_ = dir_ + "/run/tpjitd.sock";
  }
  ~SocketClaimTest() override { std::filesystem::remove_all(dir_); }

  // A Unix socket bound at path_; listening if `listen_too`. Returns the fd.
  int Bind(bool listen_too) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path_.c_str(), sizeof(a.sun_path) - 1);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    if (listen_too) EXPECT_EQ(listen(fd, 1), 0);
    return fd;
  }

  std::string dir_, path_;
};

TEST_F(SocketClaimTest, SecondClaimIsRefusedNamingTheHolder) {
  auto first = SocketClaim::Take(path_);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = SocketClaim::Take(path_);
  ASSERT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_NE(second.status().message().find(absl::StrCat("pid ", getpid())),
            absl::string_view::npos)
      << second.status();
  first->reset();  // released: claimable again
  EXPECT_TRUE(SocketClaim::Take(path_).ok());
}

TEST_F(SocketClaimTest, StaleSocketIsRemovedLiveOneIsLeftAlone) {
  std::filesystem::create_directories(dir_ + "/run");
  int stale = Bind(/*listen_too=*/false);  // nobody accepts on it
  close(stale);
  {
    auto claim = SocketClaim::Take(path_);
    ASSERT_TRUE(claim.ok()) << claim.status();
    struct stat st;
    EXPECT_NE(lstat(path_.c_str(), &st), 0) << "stale socket not removed";
  }
  int live = Bind(/*listen_too=*/true);  // e.g. a daemon without a lock file
  auto claim = SocketClaim::Take(path_);
  EXPECT_TRUE(absl::IsFailedPrecondition(claim.status())) << claim.status();
  struct stat st;
  EXPECT_EQ(lstat(path_.c_str(), &st), 0) << "a live socket was removed";
  close(live);
}

TEST_F(SocketClaimTest, PathThatIsNotASocketIsNeverRemoved) {
  std::filesystem::create_directories(dir_ + "/run");
  std::ofstream(path_) << "precious";
  auto claim = SocketClaim::Take(path_);
  EXPECT_TRUE(absl::IsFailedPrecondition(claim.status())) << claim.status();
  std::ifstream in(path_);
  std::string content;
  in >> content;
  EXPECT_EQ(content, "precious");
}

}  // namespace
}  // namespace tpjit
