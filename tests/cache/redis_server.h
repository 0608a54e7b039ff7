// Test helper: a real redis-server (the Debian package) on a Unix socket in
// a temp directory, without persistence. Tests skip with a reason when the
// binary is absent (CI installs it: scripts/install-deps). Not thread-safe.
#ifndef TPJIT_TESTS_CACHE_REDIS_SERVER_H_
#define TPJIT_TESTS_CACHE_REDIS_SERVER_H_

#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "src/cache/redis_client.h"
#include "tests/testlib/wait.h"

extern char** environ;

namespace tpjit::testing {

// The redis-server binary ($TPJIT_REDIS_SERVER, else on PATH), or "".
inline std::string RedisServerBinary() {
  if (const char* e = getenv("TPJIT_REDIS_SERVER"); e && *e) return e;
  for (const char* dir : {"/usr/bin", "/usr/local/bin", "/usr/sbin"}) {
    std::string p = absl::StrCat(dir, "/redis-server");
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

#define TPJIT_REQUIRE_REDIS()                                       \
  if (::tpjit::testing::RedisServerBinary().empty())                \
  GTEST_SKIP() << "redis-server is not installed (apt-get install " \
                  "redis-server; scripts/install-deps does): skipped"

class RedisServer {
 public:
  // `dir` holds the socket and the log; `extra` are more server options.
  explicit RedisServer(std::string dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), extra_(std::move(extra)) {}
  ~RedisServer() { Stop(SIGKILL); }

  // Starts the server and waits (up to 10 s) until it answers PING.
  bool Start() {
    std::vector<std::string> argv = {RedisServerBinary(),
                                     "--port",
                                     "0",
                                     "--unixsocket",
                                     socket(),
                                     "--unixsocketperm",
                                     "700",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir_,
                                     "--logfile",
                                     dir_ + "/redis.log"};
    argv.insert(argv.end(), extra_.begin(), extra_.end());
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], nullptr, nullptr, args.data(), environ) !=
        0) {
      pid_ = -1;
      return false;
    }
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      auto c = Connect();
      if (c.ok() && (*c)->Command({"PING"}).ok()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  // Stops the server with `sig` and reaps it.
  void Stop(int sig = SIGTERM) {
    if (pid_ <= 0) return;
    kill(pid_, sig);
    int status;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    std::filesystem::remove(socket());
  }
  void Kill() { Stop(SIGKILL); }

  std::string socket() const { return dir_ + "/redis.sock"; }
  std::string url() const { return "unix://" + socket(); }
  pid_t pid() const { return pid_; }

  // A raw connection (for planting values and checking keys).
  absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      absl::Duration timeout = absl::Seconds(5)) {
    RedisAddress a;
    a.unix_path = socket();
    return NewHiredisConnector(a, "", timeout)->Connect();
  }

 private:
  std::string dir_;
  std::vector<std::string> extra_;
  pid_t pid_ = -1;
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CACHE_REDIS_SERVER_H_
