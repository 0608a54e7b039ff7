// Test harness: runs the real tpjitd binary on a temp Unix socket and cache
// directory, and real client processes against it. Not thread-safe.
#ifndef TPJIT_TESTS_INTEGRATION_DAEMON_HARNESS_H_
#define TPJIT_TESTS_INTEGRATION_DAEMON_HARNESS_H_

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

extern char** environ;

namespace tpjit::testing {

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Starts argv with stdout/stderr redirected to `log`; returns the pid.
inline pid_t Spawn(const std::vector<std::string>& argv,
                   const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

inline int WaitExit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class TempDir {
 public:
  TempDir() {
    std::string t = std::filesystem::temp_directory_path() / "tpjit-it-XXXXXX";
    path_ = mkdtemp(t.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class Daemon {
 public:
  Daemon(std::string dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), socket_(dir_ + "/tpjitd.sock") {
    std::vector<std::string> argv = {
        TPJITD_BINARY,   "--socket", socket_, "--cache-dir",
        dir_ + "/cache", "--gpus",   "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    log_ = dir_ + "/tpjitd." + std::to_string(++starts_) + ".log";
    pid_ = Spawn(argv, log_);
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // closed with us
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    channel_ = grpc::CreateCustomChannel(
        "unix:" + socket_, grpc::InsecureChannelCredentials(), args);
    stub_ = tpjit::v1::Tpjit::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }
  ~Daemon() { Stop(); }

  // Waits (up to 60 s) until the health service says SERVING.
  bool WaitServing() {
    for (int i = 0; i < 600; ++i) {
      if (Health("") == grpc::health::v1::HealthCheckResponse::SERVING) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  int Health(const std::string& service) {
    grpc::ClientContext ctx;
    ctx.set_wait_for_ready(true);  // ride out the channel's reconnect backoff
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(2));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    if (!health_->Check(&ctx, req, &resp).ok()) return -1;
    return resp.status();
  }

  // SIGTERM and wait: the exit code.
  int Stop() {
    if (pid_ <= 0) return 0;
    // An idle connection holds the daemon's graceful shutdown to its
    // deadline: close ours first.
    stub_.reset();
    health_.reset();
    channel_.reset();
    kill(pid_, SIGTERM);
    int rc = WaitExit(pid_);
    pid_ = -1;
    return rc;
  }

  tpjit::v1::StatsResponse Stats() {
    grpc::ClientContext ctx;
    tpjit::v1::StatsResponse resp;
    stub_->Stats(&ctx, tpjit::v1::StatsRequest(), &resp);
    return resp;
  }

  // Polls (never blocks) until the daemon exits or `limit` passes: its exit
  // code, or -1 if it still runs.
  int WaitExitWithin(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }

  // kill -9 and reap: nothing of the daemon's own clean-up runs.
  void Kill9() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    WaitExit(pid_);
    pid_ = -1;
  }

  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadFile(log_); }
  const std::string& socket() const { return socket_; }
  tpjit::v1::Tpjit::Stub& stub() { return *stub_; }

 private:
  static inline int starts_ = 0;
  std::string dir_;
  std::string socket_;
  std::string log_;
  pid_t pid_ = -1;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tpjit::v1::Tpjit::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_INTEGRATION_DAEMON_HARNESS_H_
