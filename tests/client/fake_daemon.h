// FakeDaemon: a real gRPC server on a temp Unix socket that serves
// tpjit.v1.Tpjit from canned data (the TestManifest, its cubins, counters)
// and the default health service. For C ABI, CLI and Python-free client
// tests that need a real channel. Thread-safe (gRPC's sync server).
#ifndef TPJIT_TESTS_CLIENT_FAKE_DAEMON_H_
#define TPJIT_TESTS_CLIENT_FAKE_DAEMON_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "tests/client/test_manifest.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit::testing {

class FakeTpjitService final : public tpjit::v1::Tpjit::Service {
 public:
  int progress_events = 3;
  // Non-OK: Warmup fails with it (after the progress events).
  grpc::Status warmup_status = grpc::Status::OK;
  tpjit::v1::WarmupRequest last_request;

  grpc::Status Warmup(
      grpc::ServerContext*, const tpjit::v1::WarmupRequest* request,
      grpc::ServerWriter<tpjit::v1::WarmupEvent>* writer) override {
    last_request = *request;
    for (int i = 1; i <= progress_events; ++i) {
      tpjit::v1::WarmupEvent e;
      auto* p = e.mutable_progress();
      p->set_job_id("job-1");
      p->set_total(3);
      p->set_done(i);
      p->set_cache_hits(1);
      p->set_compiled(i - 1);
      p->set_phase(i == progress_events ? "done" : "compiling");
      writer->Write(e);
    }
    if (!warmup_status.ok()) return warmup_status;
    tpjit::v1::WarmupEvent e;
    *e.mutable_manifest() = TestManifest();
    auto* s = e.mutable_summary();
    s->set_manifest_digest(e.manifest().digest());
    s->set_distinct_kernels(3);
    s->set_compiled(2);
    s->set_cache_hits(1);
    s->set_wall_seconds(1.5);
    writer->Write(e);
    return grpc::Status::OK;
  }

  grpc::Status Fetch(
      grpc::ServerContext*, const tpjit::v1::FetchRequest* request,
      grpc::ServerWriter<tpjit::v1::FetchChunk>* writer) override {
    std::string bytes;
    if (request->key().rfind("key", 0) == 0) {
      bytes = CubinFor(std::stoi(request->key().substr(3)));
    } else {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no cubin " + request->key());
    }
    for (size_t off = 0; off < bytes.size(); off += 1000) {  // 3 chunks
      tpjit::v1::FetchChunk c;
      c.set_data(bytes.substr(off, 1000));
      c.set_offset(static_cast<int64_t>(off));
      c.set_total_bytes(static_cast<int64_t>(bytes.size()));
      writer->Write(c);
    }
    return grpc::Status::OK;
  }

  grpc::Status Compile(grpc::ServerContext*,
                       const tpjit::v1::CompileRequest* request,
                       tpjit::v1::CompileResponse* response) override {
    for (const auto& s : request->sources()) {
      auto* r = response->add_results();
      r->set_name(s.name());
      const bool bad = s.source().find("#error") != std::string::npos;
      r->set_ok(!bad);
      if (bad) {
        r->set_error("compile failed");
        r->set_log(s.name() + "(1): error: boom");
        continue;
      }
      r->set_key("key0");
      r->set_cache_hit(request->backend() == tpjit::v1::NVCC);
      r->set_compile_seconds(0.25);
      r->set_cubin_bytes(3000);
    }
    return grpc::Status::OK;
  }

  grpc::Status Stats(grpc::ServerContext*, const tpjit::v1::StatsRequest*,
                     tpjit::v1::StatsResponse* response) override {
    response->set_compiles(7);
    response->set_cache_hits(11);
    response->set_nvrtc_version("13.0");
    response->add_target_archs("sm_90a");
    response->set_serving(true);
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const tpjit::v1::StatusRequest*,
                      tpjit::v1::StatusResponse* response) override {
    response->set_serving(true);
    auto* slot = response->add_slots();
    slot->set_slot(0);
    slot->set_gpu(-1);
    slot->set_procs_alive(2);
    auto* job = response->add_jobs();
    job->set_job_id("job-1");
    job->set_spec_name("tiny");
    job->mutable_progress()->set_phase("compiling");
    job->mutable_progress()->set_total(3);
    job->mutable_progress()->set_done(1);
    job->set_attached_ranks(2);
    return grpc::Status::OK;
  }
};

class FakeDaemon {
 public:
  explicit FakeDaemon(bool serving = true) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "tpjit-fake-XXXXXX").string();
    dir_ = mkdtemp(tmpl.data());
    socket_ = dir_ + "/tpjitd.sock";
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("unix:" + socket_,
                             grpc::InsecureServerCredentials());
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    server_->GetHealthCheckService()->SetServingStatus(serving);
    server_->GetHealthCheckService()->SetServingStatus("tpjit.v1.Tpjit",
                                                       serving);
  }
  ~FakeDaemon() {
    server_->Shutdown();
    std::filesystem::remove_all(dir_);
  }
  const std::string& socket() const { return socket_; }
  const std::string& dir() const { return dir_; }
  FakeTpjitService& service() { return service_; }

 private:
  std::string dir_;
  std::string socket_;
  FakeTpjitService service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CLIENT_FAKE_DAEMON_H_
