// Test harness: a real Daemon with its real gRPC services (Tpjit, barrier,
// health) on a temp Unix socket, in this process. Worker processes are
// replaced by FakeWorkerLauncher: the self-test passes at once and every
// compile fails at once ("fake worker: no compiler"), so warm-ups and
// compiles end quickly with a clean error and no CPU is spent on NVRTC.
// Not thread-safe (the daemon and the server are).
#ifndef TPJIT_TESTS_DAEMON_IN_PROCESS_DAEMON_H_
#define TPJIT_TESTS_DAEMON_IN_PROCESS_DAEMON_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "daemon/daemon.h"
#include "daemon/service.h"
#include "daemon/services.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "src/common/child_process.h"
#include "tests/testlib/temp_dir.h"
#include "tests/testlib/wait.h"
#include "tpjit/v1/barrier.grpc.pb.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit::testing {

class FakeWorker final : public ChildProcess {
 public:
  explicit FakeWorker(int pid) : pid_(pid) {}
  absl::StatusOr<tpjit::v1::WorkerResponse> Call(
      const tpjit::v1::WorkerRequest& request, absl::Time) override {
    tpjit::v1::WorkerResponse r;
    r.set_id(request.id());
    if (request.kind() == tpjit::v1::WorkerRequest::SELF_TEST) {
      r.set_ok(true);
      r.set_version("fake-nvrtc");
    } else {
      r.set_error("fake worker: no compiler");
    }
    return r;
  }
  void Kill() override { alive_ = false; }
  void Interrupt() override {}
  int pid() const override { return pid_; }

 private:
  int pid_;
  bool alive_ = true;
};

class FakeWorkerLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(
      const std::vector<std::string>&,
      const std::vector<std::string>&) override {
    // Distinct fake pids far above pid_max, so nothing real is ever signalled.
    return std::make_unique<FakeWorker>(1 << 30 | next_pid_.fetch_add(1));
  }

 private:
  std::atomic<int> next_pid_{1};
};

// Polls `condition` until it holds or `timeout` passes; true if it held.
inline bool WaitFor(const std::function<bool()>& condition,
                    absl::Duration timeout) {
  return WaitUntil(condition, timeout);
}

class InProcessDaemon {
 public:
  // `tweak` may change the config (limits, pools) before the daemon starts.
  explicit InProcessDaemon(
      const std::function<void(DaemonConfig&)>& tweak = nullptr) {
    DaemonConfig config;
    config.socket = dir_.path() + "/tpjitd.sock";
    config.cache_dir = dir_.path() + "/cache";
    config.slots = 1;
    config.procs = 1;
    config.gpus = 0;
    config.worker_binary = "/nonexistent/tpjit-worker";
    config.nvcc = "/nonexistent/nvcc";
    if (tweak) tweak(config);
    DaemonDeps deps;
    deps.launcher = &launcher_;
    auto daemon = Daemon::Create(config, std::move(deps));
    status_ = daemon.status();
    if (!status_.ok()) return;
    daemon_ = std::move(*daemon);
    status_ = daemon_->Start();
    if (status_.ok()) StartServer();
  }
  // The shutdown order of services.h.
  ~InProcessDaemon() {
    if (server_) {
      daemon_->Stop();
      services_->BeginShutdown();
      server_->Shutdown(std::chrono::system_clock::now() +
                        std::chrono::seconds(5));
    }
    services_.reset();
  }

  const absl::Status& status() const { return status_; }
  Daemon& daemon() { return *daemon_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  tpjit::v1::Tpjit::Stub& stub() { return *stub_; }
  tpjit::v1::BarrierService::Stub& barrier() { return *barrier_; }

  // The grpc.health.v1 status of `service` ("" = readiness), or -1.
  int Health(const std::string& service) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(5));
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    if (!health_->Check(&ctx, req, &resp).ok()) return -1;
    return resp.status();
  }

 private:
  void StartServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + daemon_->config().socket,
                             grpc::InsecureServerCredentials());
    builder.SetMaxReceiveMessageSize(
        static_cast<int>(daemon_->config().max_request_bytes));
    services_ = Services::Start(builder, *daemon_);
    server_ = builder.BuildAndStart();
    if (!server_) {
      status_ = absl::UnavailableError("cannot start the test server");
      return;
    }
    server_->GetHealthCheckService()->SetServingStatus(daemon_->Serving());
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxSendMessageSize(-1);
    channel_ =
        grpc::CreateCustomChannel("unix:" + daemon_->config().socket,
                                  grpc::InsecureChannelCredentials(), args);
    stub_ = tpjit::v1::Tpjit::NewStub(channel_);
    barrier_ = tpjit::v1::BarrierService::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
  }

  TempDir dir_{"tpjit-daemon-"};
  FakeWorkerLauncher launcher_;
  absl::Status status_;
  std::unique_ptr<Daemon> daemon_;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<tpjit::v1::Tpjit::Stub> stub_;
  std::unique_ptr<tpjit::v1::BarrierService::Stub> barrier_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_DAEMON_IN_PROCESS_DAEMON_H_
