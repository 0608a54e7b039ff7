// Test harness: runs the real tpjitd binary on a temp Unix socket and cache
// directory, and real client processes against it (tests/testlib
// Subprocess, TempDir, WaitUntil). Not thread-safe.
#ifndef TPJIT_TESTS_INTEGRATION_DAEMON_HARNESS_H_
#define TPJIT_TESTS_INTEGRATION_DAEMON_HARNESS_H_

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/testlib/subprocess.h"
#include "tests/testlib/temp_dir.h"
#include "tests/testlib/wait.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit::testing {

class Daemon {
 public:
  Daemon(std::string dir, std::vector<std::string> extra = {})
      : dir_(std::move(dir)), socket_(dir_ + "/tpjitd.sock") {
    std::vector<std::string> argv = {
        TPJITD_BINARY,   "--socket", socket_, "--cache-dir",
        dir_ + "/cache", "--gpus",   "0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    log_ = dir_ + "/tpjitd." + std::to_string(++starts_) + ".log";
    if (auto p = Subprocess::Spawn(argv, log_); p.ok()) proc_ = std::move(*p);
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
    return WaitUntil(
        [this] {
          return Health("") == grpc::health::v1::HealthCheckResponse::SERVING;
        },
        absl::Seconds(60));
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
    if (!proc_) return 0;
    // An idle connection holds the daemon's graceful shutdown to its
    // deadline: close ours first.
    stub_.reset();
    health_.reset();
    channel_.reset();
    proc_->Signal(SIGTERM);
    int rc = proc_->WaitForever();
    proc_.reset();
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
    if (!proc_) return 0;
    std::optional<int> code = proc_->Wait(absl::FromChrono(limit));
    if (!code) return -1;
    proc_.reset();
    return *code;
  }

  // kill -9 and reap: nothing of the daemon's own clean-up runs.
  void Kill9() {
    if (!proc_) return;
    proc_->Signal(SIGKILL);
    proc_->WaitForever();
    proc_.reset();
  }

  pid_t pid() const { return proc_ ? proc_->pid() : -1; }
  std::string Log() const { return ReadWholeFile(log_); }
  const std::string& socket() const { return socket_; }
  tpjit::v1::Tpjit::Stub& stub() { return *stub_; }

 private:
  static inline int starts_ = 0;
  std::string dir_;
  std::string socket_;
  std::string log_;
  std::optional<Subprocess> proc_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tpjit::v1::Tpjit::Stub> stub_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// A Compile of one source that must succeed (gtest failures otherwise),
// 120 s at most.
inline tpjit::v1::CompileResponse CompileOne(
    Daemon& d, const tpjit::v1::CompileRequest& r) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() +
                   std::chrono::seconds(120));
  tpjit::v1::CompileResponse out;
  grpc::Status st = d.stub().Compile(&ctx, r, &out);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(out.results_size(), 1);
  if (out.results_size() == 1) {
    EXPECT_TRUE(out.results(0).ok()) << out.results(0).error();
  }
  return out;
}

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_INTEGRATION_DAEMON_HARNESS_H_
