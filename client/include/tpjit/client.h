// tpjit::Client: the C++ client of tpjitd (service tpjit.v1.Tpjit plus the
// standard grpc.health.v1 health service), and manifest helpers.
//
// A Client wraps one gRPC channel, usually to tpjitd's Unix socket. It
// depends only on the generated StubInterfaces, so tests inject mocks. Every
// call carries a deadline; when no daemon listens a call fails with
// UNAVAILABLE or DEADLINE_EXCEEDED within that deadline, naming the target.
// Thread-safe: calls may run concurrently from several threads.
#ifndef TPJIT_CLIENT_INCLUDE_TPJIT_CLIENT_H_
#define TPJIT_CLIENT_INCLUDE_TPJIT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tpjit/v1/tpjit.grpc.pb.h"

namespace tpjit {

class CudaDriver;      // src/cuda/cuda_driver.h
class LoadedManifest;  // client/include/tpjit/loaded_manifest.h

// $TPJIT_SOCKET, else $XDG_RUNTIME_DIR/tpjit/tpjitd.sock, else
// /run/tpjit/tpjitd.sock (tpjitd's own default; defined once, in
// src/common/socket_path.cc).
std::string DefaultSocketPath();

// A gRPC target for a socket path or target: "/a/b.sock" -> "unix:/a/b.sock";
// strings that already name a scheme ("unix:", "dns:", "ipv4:", ...) or a
// "host:port" are kept.
std::string TargetFor(const std::string& socket_path_or_target);

struct ClientOptions {
  // Connect waits this long for the channel to become ready; fails with
  // UNAVAILABLE naming the target after it. Zero: connect lazily (the first
  // call finds out).
  absl::Duration connect_timeout = absl::Seconds(5);
  // Deadline of the unary calls (Stats, Status, Health) and of each Fetch.
  absl::Duration call_timeout = absl::Seconds(30);
};

struct WarmupResult {
  tpjit::v1::Manifest manifest;
  tpjit::v1::WarmupSummary summary;
};

// Health of the daemon as the grpc.health.v1 service reports it.
struct HealthReport {
  using ServingStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;
  ServingStatus overall = grpc::health::v1::HealthCheckResponse::UNKNOWN;
  ServingStatus tpjit = grpc::health::v1::HealthCheckResponse::UNKNOWN;
  // True only when both the server ("") and tpjit.v1.Tpjit are SERVING.
  bool serving() const;
};

using ProgressCallback = std::function<void(const tpjit::v1::WarmupProgress&)>;

class Client {
 public:
  static constexpr char kServiceName[] = "tpjit.v1.Tpjit";

  // A client of the daemon at `socket_path_or_target` (see TargetFor).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(
      std::string socket_path_or_target, ClientOptions options = {});

  // For tests and custom channels: `target` only names the daemon in errors.
  Client(std::shared_ptr<tpjit::v1::Tpjit::StubInterface> stub,
         std::shared_ptr<grpc::health::v1::Health::StubInterface> health,
         std::string target, ClientOptions options = {});

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Warms up `spec` as `rank` of `world` ranks of `group`. Calls
  // `on_progress` (may be empty) on the calling thread for each progress
  // event, and returns the manifest with its summary. The whole call must end
  // within `deadline` (DEADLINE_EXCEEDED otherwise). Errors are the daemon's
  // (INVALID_ARGUMENT naming the bad field, ...) or INTERNAL when the stream
  // ends without a manifest.
  absl::StatusOr<WarmupResult> Warmup(const tpjit::v1::WarmupSpec& spec,
                                      int rank, int world, std::string group,
                                      ProgressCallback on_progress,
                                      absl::Duration deadline);

  // The cubin bytes of `key`, reassembled from the Fetch stream (chunks must
  // arrive in order and add up to their total_bytes: DATA_LOSS otherwise).
  // When `expected_sha256` (hex) is given the bytes must hash to it
  // (DATA_LOSS otherwise).
  absl::StatusOr<std::string> Fetch(const std::string& key,
                                    const std::string& expected_sha256 = "");
  // Fetch of a manifest kernel: checks its cubin_sha256 and cubin_bytes.
  absl::StatusOr<std::string> Fetch(const tpjit::v1::ManifestKernel& kernel);

  absl::StatusOr<tpjit::v1::StatsResponse> Stats();
  absl::StatusOr<tpjit::v1::StatusResponse> Status();
  // grpc.health.v1 Check of "" and of tpjit.v1.Tpjit. A service the health
  // server does not know (or a server without the health service) reads
  // SERVICE_UNKNOWN; an unreachable daemon is an error.
  absl::StatusOr<HealthReport> Health();
  // A generic compile; `deadline` zero: call_timeout plus the request's
  // timeouts. Per-source failures are results with ok=false, not errors.
  absl::StatusOr<tpjit::v1::CompileResponse> Compile(
      const tpjit::v1::CompileRequest& request,
      absl::Duration deadline = absl::ZeroDuration());

  // Fetches every kernel of `manifest` (checking its sha256) and loads it
  // with `driver` (nullptr: CudaDriver::Real()) into the context current on
  // the calling thread. UNAVAILABLE without a GPU. Callers include
  // tpjit/loaded_manifest.h.
  // REQUIRES: a CUDA context is current on the calling thread.
  absl::StatusOr<std::unique_ptr<LoadedManifest>> Load(
      const tpjit::v1::Manifest& manifest, CudaDriver* driver = nullptr);

  const std::string& target() const { return target_; }

 private:
  absl::Status FromGrpc(const grpc::Status& status,
                        absl::string_view what) const;

  std::shared_ptr<tpjit::v1::Tpjit::StubInterface> stub_;
  std::shared_ptr<grpc::health::v1::Health::StubInterface> health_;
  const std::string target_;
  const ClientOptions options_;
};

// The kernel (index into manifest.kernels) that serves token count `m` of
// shape `shape_index`: OUT_OF_RANGE outside 1..m_max, INVALID_ARGUMENT for a
// bad shape index, NOT_FOUND where a sampled (FAST / EXPLICIT) manifest does
// not cover `m`. `m` is first rounded up to the shape's m_alignment (128 for
// contig-grouped families). Binary search over the shape's sorted ranges.
// Thread-safe. Defined once, in src/plan/manifest.cc (the Python client's
// lookup is tested against it).
absl::StatusOr<int> LookupKernel(const tpjit::v1::Manifest& manifest,
                                 int shape_index, int64_t m);

// Checks a manifest's structure: ranges sorted, disjoint, kernel indices in
// range. INVALID_ARGUMENT naming the first problem.
absl::Status ValidateManifest(const tpjit::v1::Manifest& manifest);

// absl::Status for a grpc::Status; UNAVAILABLE and DEADLINE_EXCEEDED get a
// hint naming `target`.
absl::Status StatusFromGrpc(const grpc::Status& status,
                            const std::string& target, absl::string_view what);

}  // namespace tpjit

#endif  // TPJIT_CLIENT_INCLUDE_TPJIT_CLIENT_H_
