// tpjit-nvcc's side of the Compile RPC: one NVCC compile request for a
// parsed nvcc call, sent to tpjitd, and the reply read as one of three
// outcomes. Everything that is not the compiler's own verdict (no daemon, an
// RPC error, a refused option, a daemon-side failure, a reply that does not
// hold the asked-for output) is kUnavailable: the caller then compiles
// locally (fail-open). Thread-compatible.
#ifndef TPJIT_CLIENT_NVCC_REMOTE_COMPILE_H_
#define TPJIT_CLIENT_NVCC_REMOTE_COMPILE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/nvcc/nvcc_args.h"
#include "grpcpp/channel.h"
#include "tpjit/v1/tpjit.pb.h"

namespace tpjit {

struct RemoteOutcome {
  // kQueued: a no_wait request's miss, compiling on in tpjitd.
  enum Kind { kCompiled, kCompileError, kUnavailable, kQueued };
  Kind kind = kUnavailable;
  std::string output;  // kCompiled: the cubin or PTX bytes
  // The compiler's messages as the daemon returned them (kCompiled:
  // warnings, often empty; kCompileError: the errors). Source named by its
  // base name: see RewriteSourceName.
  std::string log;
  int exit_code = 0;   // kCompileError: nvcc's exit status, >= 1
  std::string reason;  // kUnavailable: why, one line
};

struct RemoteOptions {
  std::string target;  // a gRPC target (TargetFor)
  std::string group;   // CompileRequest.group; may be empty
  // Connecting (channel READY) must take at most this long.
  absl::Duration connect_timeout = absl::Seconds(1);
  // Deadline of the Compile call (queueing plus nvcc) and of a Fetch.
  absl::Duration rpc_timeout = absl::Seconds(600);
  // CompileRequest.no_wait: a miss is answered kQueued at once.
  bool no_wait = false;
};

// The request for `call` with `source_text`: backend NVCC, arch, include
// dirs, options, output kind, return_output, one source named by the base
// name of call.source.
tpjit::v1::CompileRequest BuildCompileRequest(const NvccCompileCall& call,
                                              std::string source_text,
                                              const std::string& group);

// The outcome of a Compile reply. kCompiled with empty output means: fetch
// the output by `result.key` (daemons that do not return output inline);
// the caller then checks it with CheckOutput. A failed result is a
// kCompileError when the compiler ran and failed (exit_code > 0, or an older
// daemon's "nvcc -cubin failed (exit status N)" error), else kUnavailable.
RemoteOutcome InterpretResponse(const tpjit::v1::CompileResponse& response);

// OK when `output` is what `mode` produces: a cubin is an ELF file; PTX is
// text, never ELF (a daemon that ignores the output kind returns a cubin).
absl::Status CheckOutput(absl::string_view output, NvccMode mode);

// A channel to options.target once it is READY. UNAVAILABLE at once when no
// socket file exists or the connection is refused (no daemon behind a stale
// socket), and after connect_timeout when it is not accepted (a hung
// daemon). gRPC's own log lines are silenced unless TPJIT_NVCC_DEBUG is set.
absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToTpjitd(
    const RemoteOptions& options);

// Sends the request on `channel`, fetches the output by key when the reply
// does not hold it, checks it. Blocks up to rpc_timeout (plus a Fetch).
RemoteOutcome CompileRemotely(std::shared_ptr<grpc::Channel> channel,
                              const NvccCompileCall& call,
                              std::string source_text,
                              const RemoteOptions& options);

// ConnectToTpjitd, then CompileRemotely on that channel (kUnavailable when
// it cannot connect).
RemoteOutcome CompileRemotely(const NvccCompileCall& call,
                              std::string source_text,
                              const RemoteOptions& options);

}  // namespace tpjit

#endif  // TPJIT_CLIENT_NVCC_REMOTE_COMPILE_H_
