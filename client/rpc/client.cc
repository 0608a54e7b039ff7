#include "client/include/tpjit/client.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "src/common/digest.h"
#include "src/common/socket_path.h"

namespace tpjit {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

// What TargetFor treats as an explicit gRPC target rather than a path.
bool HasScheme(const std::string& s) {
  for (const char* scheme : {"unix:", "unix-abstract:", "dns:", "ipv4:",
                             "ipv6:", "vsock:", "localhost:"}) {
    if (absl::StartsWith(s, scheme)) return true;
  }
  return false;
}

}  // namespace

std::string TargetFor(const std::string& socket_path_or_target) {
  const std::string& s = socket_path_or_target;
  if (HasScheme(s)) return s;
  // "host:port" without a slash is a TCP target; anything else a path.
  if (s.find('/') == std::string::npos && s.find(':') != std::string::npos) {
    return s;
  }
  return absl::StrCat("unix:", s);
}

bool HealthReport::serving() const {
  return overall == HealthCheckResponse::SERVING &&
         tpjit == HealthCheckResponse::SERVING;
}

absl::Status StatusFromGrpc(const grpc::Status& status,
                            const std::string& target, absl::string_view what) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE ||
      status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::Status(
        code, absl::StrCat(what, ": tpjitd at ", target,
                           status.error_code() == grpc::StatusCode::UNAVAILABLE
                               ? " is not reachable"
                               : " did not answer in time",
                           " (is it running? --socket / TPJIT_SOCKET): ",
                           status.error_message()));
  }
  return absl::Status(code, absl::StrCat(what, ": ", status.error_message()));
}

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(
    std::string socket_path_or_target, ClientOptions options) {
  if (socket_path_or_target.empty())
    socket_path_or_target = DefaultSocketPath();
  const std::string target = TargetFor(socket_path_or_target);
  // A local daemon that is (re)starting: retry often, not with the default
  // backoff of up to two minutes.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(), args);
  if (options.connect_timeout > absl::ZeroDuration() &&
      !channel->WaitForConnected(DeadlineIn(options.connect_timeout))) {
    return absl::UnavailableError(
        absl::StrCat("tpjitd at ", target, " is not reachable within ",
                     absl::FormatDuration(options.connect_timeout),
                     " (is it running? --socket / TPJIT_SOCKET)"));
  }
  return std::make_unique<Client>(tpjit::v1::Tpjit::NewStub(channel),
                                  grpc::health::v1::Health::NewStub(channel),
                                  target, options);
}

Client::Client(std::shared_ptr<tpjit::v1::Tpjit::StubInterface> stub,
               std::shared_ptr<grpc::health::v1::Health::StubInterface> health,
               std::string target, ClientOptions options)
    : stub_(std::move(stub)),
      health_(std::move(health)),
      target_(std::move(target)),
      options_(options) {}

absl::Status Client::FromGrpc(const grpc::Status& status,
                              absl::string_view what) const {
  return StatusFromGrpc(status, target_, what);
}

absl::StatusOr<WarmupResult> Client::Warmup(const tpjit::v1::WarmupSpec& spec,
                                            int rank, int world,
                                            std::string group,
                                            ProgressCallback on_progress,
                                            absl::Duration deadline) {
  tpjit::v1::WarmupRequest request;
  *request.mutable_spec() = spec;
  request.set_rank(rank);
  request.set_world(world);
  request.set_group(std::move(group));
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(deadline));
  std::unique_ptr<grpc::ClientReaderInterface<tpjit::v1::WarmupEvent>> reader(
      stub_->Warmup(&context, request));
  tpjit::v1::WarmupEvent event;
  std::optional<WarmupResult> result;
  while (reader->Read(&event)) {
    if (event.has_progress()) {
      if (on_progress) on_progress(event.progress());
    } else if (event.has_manifest()) {
      result.emplace();
      result->manifest = std::move(*event.mutable_manifest());
      result->summary = std::move(*event.mutable_summary());
    }
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status, "warmup");
  if (!result) {
    return absl::InternalError(absl::StrCat(
        "warmup: tpjitd at ", target_, " ended the stream without a manifest"));
  }
  return *std::move(result);
}

absl::StatusOr<std::string> Client::Fetch(const std::string& key,
                                          const std::string& expected_sha256) {
  tpjit::v1::FetchRequest request;
  request.set_key(key);
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(options_.call_timeout));
  std::unique_ptr<grpc::ClientReaderInterface<tpjit::v1::FetchChunk>> reader(
      stub_->Fetch(&context, request));
  std::string bytes;
  int64_t total = -1;
  absl::Status problem;
  tpjit::v1::FetchChunk chunk;
  while (reader->Read(&chunk)) {
    if (!problem.ok()) continue;  // drain, keep the first problem
    if (chunk.offset() != static_cast<int64_t>(bytes.size()) ||
        (total >= 0 && chunk.total_bytes() != total)) {
      problem = absl::DataLossError(
          absl::StrCat("fetch ", key, ": chunk at offset ", chunk.offset(),
                       " (total ", chunk.total_bytes(), ") after ",
                       bytes.size(), " bytes (total ", total, ")"));
      continue;
    }
    total = chunk.total_bytes();
    bytes.append(chunk.data());
  }
  const grpc::Status status = reader->Finish();
  if (!status.ok()) return FromGrpc(status, absl::StrCat("fetch ", key));
  if (!problem.ok()) return problem;
  if (total < 0 || static_cast<int64_t>(bytes.size()) != total) {
    return absl::DataLossError(absl::StrCat("fetch ", key, ": got ",
                                            bytes.size(), " bytes of ",
                                            total < 0 ? 0 : total));
  }
  if (!expected_sha256.empty()) {
    const std::string actual = Sha256Hex(bytes);
    if (actual != expected_sha256) {
      return absl::DataLossError(absl::StrCat("fetch ", key, ": sha256 ",
                                              actual, " != expected ",
                                              expected_sha256));
    }
  }
  return bytes;
}

absl::StatusOr<std::string> Client::Fetch(
    const tpjit::v1::ManifestKernel& kernel) {
  auto bytes = Fetch(kernel.key(), kernel.cubin_sha256());
  if (bytes.ok() && kernel.cubin_bytes() > 0 &&
      static_cast<int64_t>(bytes->size()) != kernel.cubin_bytes()) {
    return absl::DataLossError(
        absl::StrCat("fetch ", kernel.key(), ": ", bytes->size(),
                     " bytes, manifest says ", kernel.cubin_bytes()));
  }
  return bytes;
}

absl::StatusOr<tpjit::v1::StatsResponse> Client::Stats() {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(options_.call_timeout));
  tpjit::v1::StatsResponse response;
  grpc::Status status =
      stub_->Stats(&context, tpjit::v1::StatsRequest(), &response);
  if (!status.ok()) return FromGrpc(status, "stats");
  return response;
}

absl::StatusOr<tpjit::v1::StatusResponse> Client::Status() {
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(options_.call_timeout));
  tpjit::v1::StatusResponse response;
  grpc::Status status =
      stub_->Status(&context, tpjit::v1::StatusRequest(), &response);
  if (!status.ok()) return FromGrpc(status, "status");
  return response;
}

absl::StatusOr<HealthReport> Client::Health() {
  HealthReport report;
  for (const char* service : {"", kServiceName}) {
    grpc::ClientContext context;
    context.set_deadline(DeadlineIn(options_.call_timeout));
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = health_->Check(&context, request, &response);
    HealthReport::ServingStatus value = response.status();
    // NOT_FOUND: an unknown service; UNIMPLEMENTED: no health service.
    if (status.error_code() == grpc::StatusCode::NOT_FOUND ||
        status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
      value = HealthCheckResponse::SERVICE_UNKNOWN;
    } else if (!status.ok()) {
      return FromGrpc(status, absl::StrCat("health check \"", service, "\""));
    }
    (*service == '\0' ? report.overall : report.tpjit) = value;
  }
  return report;
}

absl::StatusOr<tpjit::v1::CompileResponse> Client::Compile(
    const tpjit::v1::CompileRequest& request, absl::Duration deadline) {
  if (deadline <= absl::ZeroDuration()) {
    // Sources may queue behind each other: allow each its own time limit.
    const double per_source =
        request.timeout_seconds() > 0 ? request.timeout_seconds() : 600;
    deadline = options_.call_timeout +
               absl::Seconds(per_source * std::max(1, request.sources_size()));
  }
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(deadline));
  tpjit::v1::CompileResponse response;
  grpc::Status status = stub_->Compile(&context, request, &response);
  if (!status.ok()) return FromGrpc(status, "compile");
  return response;
}

}  // namespace tpjit
