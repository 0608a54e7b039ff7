// gMock stubs of tpjit.v1.Tpjit and grpc.health.v1.Health for client tests
// (gRPC's generated mocks are not built here). Only the synchronous methods
// the client uses are mocked; the async ones fail the test if called.
#ifndef TPJIT_TESTS_CLIENT_MOCK_STUB_H_
#define TPJIT_TESTS_CLIENT_MOCK_STUB_H_

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/test/mock_stream.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit::testing {

namespace v1 = ::tpjit::v1;

class MockTpjitStub : public v1::Tpjit::StubInterface {
 public:
  MOCK_METHOD(::grpc::Status, Compile,
              (::grpc::ClientContext*, const v1::CompileRequest&,
               v1::CompileResponse*),
              (override));
  MOCK_METHOD(::grpc::Status, Stats,
              (::grpc::ClientContext*, const v1::StatsRequest&,
               v1::StatsResponse*),
              (override));
  MOCK_METHOD(::grpc::Status, Status,
              (::grpc::ClientContext*, const v1::StatusRequest&,
               v1::StatusResponse*),
              (override));
  MOCK_METHOD(::grpc::ClientReaderInterface<v1::WarmupEvent>*, WarmupRaw,
              (::grpc::ClientContext*, const v1::WarmupRequest&), (override));
  MOCK_METHOD(::grpc::ClientReaderInterface<v1::FetchChunk>*, FetchRaw,
              (::grpc::ClientContext*, const v1::FetchRequest&), (override));
  MOCK_METHOD(::grpc::Status, AwaitKeys,
              (::grpc::ClientContext*, const v1::AwaitKeysRequest&,
               v1::AwaitKeysResponse*),
              (override));

 private:
  template <typename R>
  using AsyncReader = ::grpc::ClientAsyncReaderInterface<R>;
  template <typename R>
  using AsyncResponse = ::grpc::ClientAsyncResponseReaderInterface<R>;
  using Ctx = ::grpc::ClientContext;
  using Cq = ::grpc::CompletionQueue;

  AsyncReader<v1::WarmupEvent>* AsyncWarmupRaw(Ctx*, const v1::WarmupRequest&,
                                               Cq*, void*) override {
    return Unexpected<AsyncReader<v1::WarmupEvent>>();
  }
  AsyncReader<v1::WarmupEvent>* PrepareAsyncWarmupRaw(Ctx*,
                                                      const v1::WarmupRequest&,
                                                      Cq*) override {
    return Unexpected<AsyncReader<v1::WarmupEvent>>();
  }
  AsyncResponse<v1::CompileResponse>* AsyncCompileRaw(Ctx*,
                                                      const v1::CompileRequest&,
                                                      Cq*) override {
    return Unexpected<AsyncResponse<v1::CompileResponse>>();
  }
  AsyncResponse<v1::CompileResponse>* PrepareAsyncCompileRaw(
      Ctx*, const v1::CompileRequest&, Cq*) override {
    return Unexpected<AsyncResponse<v1::CompileResponse>>();
  }
  AsyncReader<v1::FetchChunk>* AsyncFetchRaw(Ctx*, const v1::FetchRequest&, Cq*,
                                             void*) override {
    return Unexpected<AsyncReader<v1::FetchChunk>>();
  }
  AsyncReader<v1::FetchChunk>* PrepareAsyncFetchRaw(Ctx*,
                                                    const v1::FetchRequest&,
                                                    Cq*) override {
    return Unexpected<AsyncReader<v1::FetchChunk>>();
  }
  AsyncResponse<v1::AwaitKeysResponse>* AsyncAwaitKeysRaw(
      Ctx*, const v1::AwaitKeysRequest&, Cq*) override {
    return Unexpected<AsyncResponse<v1::AwaitKeysResponse>>();
  }
  AsyncResponse<v1::AwaitKeysResponse>* PrepareAsyncAwaitKeysRaw(
      Ctx*, const v1::AwaitKeysRequest&, Cq*) override {
    return Unexpected<AsyncResponse<v1::AwaitKeysResponse>>();
  }
  AsyncResponse<v1::StatsResponse>* AsyncStatsRaw(Ctx*, const v1::StatsRequest&,
                                                  Cq*) override {
    return Unexpected<AsyncResponse<v1::StatsResponse>>();
  }
  AsyncResponse<v1::StatsResponse>* PrepareAsyncStatsRaw(
      Ctx*, const v1::StatsRequest&, Cq*) override {
    return Unexpected<AsyncResponse<v1::StatsResponse>>();
  }
  AsyncResponse<v1::StatusResponse>* AsyncStatusRaw(Ctx*,
                                                    const v1::StatusRequest&,
                                                    Cq*) override {
    return Unexpected<AsyncResponse<v1::StatusResponse>>();
  }
  AsyncResponse<v1::StatusResponse>* PrepareAsyncStatusRaw(
      Ctx*, const v1::StatusRequest&, Cq*) override {
    return Unexpected<AsyncResponse<v1::StatusResponse>>();
  }
  template <typename T>
  T* Unexpected() {
    ADD_FAILURE() << "the client made an async call";
    return nullptr;
  }
};

class MockHealthStub : public ::grpc::health::v1::Health::StubInterface {
 public:
  using Request = ::grpc::health::v1::HealthCheckRequest;
  using Response = ::grpc::health::v1::HealthCheckResponse;
  MOCK_METHOD(::grpc::Status, Check,
              (::grpc::ClientContext*, const Request&, Response*), (override));

 private:
  using Ctx = ::grpc::ClientContext;
  using Cq = ::grpc::CompletionQueue;
  ::grpc::ClientAsyncResponseReaderInterface<Response>* AsyncCheckRaw(
      Ctx*, const Request&, Cq*) override {
    return nullptr;
  }
  ::grpc::ClientAsyncResponseReaderInterface<Response>* PrepareAsyncCheckRaw(
      Ctx*, const Request&, Cq*) override {
    return nullptr;
  }
  ::grpc::ClientReaderInterface<Response>* WatchRaw(Ctx*,
                                                    const Request&) override {
    return nullptr;
  }
  ::grpc::ClientAsyncReaderInterface<Response>* AsyncWatchRaw(Ctx*,
                                                              const Request&,
                                                              Cq*,
                                                              void*) override {
    return nullptr;
  }
  ::grpc::ClientAsyncReaderInterface<Response>* PrepareAsyncWatchRaw(
      Ctx*, const Request&, Cq*) override {
    return nullptr;
  }
};

}  // namespace tpjit::testing

#endif  // TPJIT_TESTS_CLIENT_MOCK_STUB_H_
