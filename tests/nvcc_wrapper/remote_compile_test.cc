// CompileRemotely against a scripted tpjitd on a temp Unix socket: what the
// wrapper sends, and how each kind of reply (inline output, output by key,
// compiler error, RPC error, wrong output kind, no daemon) is read. The
// intended daemon contract (inline output, exit_code) is tested here
// independently of tpjitd's NVCC back end.
#include "client/nvcc/remote_compile.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCubin[] = "\177ELF cubin bytes";

// Answers Compile with `reply` (recording the request) and Fetch with
// `fetched` under any key.
class ScriptedTpjit final : public tpjit::v1::Tpjit::Service {
 public:
  std::function<grpc::Status(tpjit::v1::CompileResponse*)> reply;
  std::string fetched = kCubin;

  grpc::Status Compile(grpc::ServerContext*,
                       const tpjit::v1::CompileRequest* request,
                       tpjit::v1::CompileResponse* response) override {
    {
      absl::MutexLock lock(&mu_);
      last_ = *request;
    }
    return reply(response);
  }

  grpc::Status Fetch(grpc::ServerContext*, const tpjit::v1::FetchRequest*,
                     grpc::ServerWriter<tpjit::v1::FetchChunk>* w) override {
    tpjit::v1::FetchChunk chunk;
    chunk.set_data(fetched);
    chunk.set_total_bytes(static_cast<int64_t>(fetched.size()));
    w->Write(chunk);
    return grpc::Status::OK;
  }

  tpjit::v1::CompileRequest last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }

 private:
  absl::Mutex mu_;
  tpjit::v1::CompileRequest last_ ABSL_GUARDED_BY(mu_);
};

class RemoteCompileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tpjit-nvcc-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + dir_ + "/tpjitd.sock",
                             grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    options_.target = "unix:" + dir_ + "/tpjitd.sock";
    options_.group = "dsv3-tp8";
    call_.source = "/c/tmp/u/kernel.cu";
    call_.arch = "sm_90a";
    call_.include_dirs = {"/opt/dg/include"};
    call_.options = {"-std=c++20", "-O3"};
  }
  void TearDown() override {
    release_.Notify();
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }

  // A reply of one result, built by `fill`.
  void Reply(std::function<void(tpjit::v1::CompileResult*)> fill) {
    service_.reply = [fill](tpjit::v1::CompileResponse* response) {
      fill(response->add_results());
      return grpc::Status::OK;
    };
  }

  std::string dir_;
  ScriptedTpjit service_;
  std::unique_ptr<grpc::Server> server_;
  RemoteOptions options_;
  NvccCompileCall call_;
  absl::Notification release_;
};

TEST_F(RemoteCompileTest, InlineOutput) {
  Reply([](tpjit::v1::CompileResult* r) {
    r->set_ok(true);
    r->set_key(std::string(64, 'a'));
    r->set_output(kCubin);
    r->set_log("kernel.cu(3): warning: w\n");
  });
  service_.fetched = "not used";
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  ASSERT_EQ(out.kind, RemoteOutcome::kCompiled) << out.reason;
  EXPECT_EQ(out.output, kCubin);
  EXPECT_EQ(out.log, "kernel.cu(3): warning: w\n");
  tpjit::v1::CompileRequest sent = service_.last();
  EXPECT_EQ(sent.backend(), tpjit::v1::NVCC);
  EXPECT_EQ(sent.arch(), "sm_90a");
  EXPECT_EQ(sent.group(), "dsv3-tp8");
  EXPECT_EQ(sent.output(), tpjit::v1::CUBIN);
  EXPECT_TRUE(sent.return_output());
  ASSERT_EQ(sent.sources_size(), 1);
  EXPECT_EQ(sent.sources(0).name(), "kernel.cu");
  EXPECT_EQ(sent.sources(0).source(), "int x;");
}

TEST_F(RemoteCompileTest, OutputByKeyFromOlderDaemons) {
  Reply([](tpjit::v1::CompileResult* r) {
    r->set_ok(true);
    r->set_key(std::string(64, 'b'));
  });
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  ASSERT_EQ(out.kind, RemoteOutcome::kCompiled) << out.reason;
  EXPECT_EQ(out.output, kCubin);
}

TEST_F(RemoteCompileTest, CompilerErrorKeepsLogAndStatus) {
  Reply([](tpjit::v1::CompileResult* r) {
    r->set_ok(false);
    r->set_exit_code(2);
    r->set_log("kernel.cu(1): error: boom\n");
    r->set_error("nvcc failed");
  });
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  ASSERT_EQ(out.kind, RemoteOutcome::kCompileError);
  EXPECT_EQ(out.exit_code, 2);
  EXPECT_EQ(out.log, "kernel.cu(1): error: boom\n");
}

TEST_F(RemoteCompileTest, RefusedOptionFailsOpenWithOneLine) {
  service_.reply = [](tpjit::v1::CompileResponse*) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "options: \"-ccbin\" is not allowed\n(it runs programs)");
  };
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  ASSERT_EQ(out.kind, RemoteOutcome::kUnavailable);
  EXPECT_THAT(out.reason, HasSubstr("\"-ccbin\" is not allowed"));
  EXPECT_THAT(out.reason, Not(HasSubstr("\n")));
}

TEST_F(RemoteCompileTest, PtxRequestAnsweredWithCubinFailsOpen) {
  call_.mode = NvccMode::kPtx;
  Reply([](tpjit::v1::CompileResult* r) {
    r->set_ok(true);
    r->set_key(std::string(64, 'c'));
    r->set_output(kCubin);
  });
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  EXPECT_EQ(service_.last().output(), tpjit::v1::PTX);
  ASSERT_EQ(out.kind, RemoteOutcome::kUnavailable);
  EXPECT_THAT(out.reason, HasSubstr("not PTX"));
}

TEST_F(RemoteCompileTest, SlowDaemonMeetsTheDeadline) {
  service_.reply = [this](tpjit::v1::CompileResponse*) {
    release_.WaitForNotificationWithTimeout(absl::Seconds(30));
    return grpc::Status::OK;
  };
  options_.rpc_timeout = absl::Milliseconds(300);
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  ASSERT_EQ(out.kind, RemoteOutcome::kUnavailable);
  EXPECT_THAT(out.reason, HasSubstr("did not answer in time"));
}

TEST_F(RemoteCompileTest, NoDaemon) {
  options_.target = "unix:" + dir_ + "/absent.sock";
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  ASSERT_EQ(out.kind, RemoteOutcome::kUnavailable);
  EXPECT_THAT(out.reason, HasSubstr("no tpjitd socket"));
}

// A socket that listens but never answers (a hung daemon): the connect
// deadline, not the compile deadline, bounds the wait.
TEST_F(RemoteCompileTest, HungDaemonMeetsTheConnectDeadline) {
  const std::string path = dir_ + "/hung.sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof(addr.sun_path));
  path.copy(addr.sun_path, path.size());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 8), 0);
  options_.target = "unix:" + path;
  options_.connect_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  RemoteOutcome out = CompileRemotely(call_, "int x;", options_);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  close(fd);
  ASSERT_EQ(out.kind, RemoteOutcome::kUnavailable);
  EXPECT_THAT(out.reason, HasSubstr("did not accept a connection"));
}

}  // namespace
}  // namespace tpjit
