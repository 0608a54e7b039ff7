#include "client/nvcc/remote_compile.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "client/include/tpjit/client.h"
#include "grpc/support/log.h"
#include "grpcpp/grpcpp.h"

namespace tpjit {
namespace {

constexpr size_t kMaxReasonBytes = 400;
constexpr int kMaxMessageBytes = 512 << 20;
constexpr absl::string_view kElfMagic = "\177ELF";

RemoteOutcome Unavailable(absl::string_view reason) {
  RemoteOutcome out;
  out.kind = RemoteOutcome::kUnavailable;
  std::string line = absl::StrReplaceAll(reason, {{"\r", " "}, {"\n", " "}});
  if (line.size() > kMaxReasonBytes) {
    line = absl::StrCat(line.substr(0, kMaxReasonBytes), "...");
  }
  out.reason = std::move(line);
  return out;
}

RemoteOutcome CompileError(std::string log, int exit_code) {
  RemoteOutcome out;
  out.kind = RemoteOutcome::kCompileError;
  out.log = std::move(log);
  out.exit_code = exit_code > 0 ? exit_code : 1;
  return out;
}

// An older daemon's failed compile: "[compiling <name>: ]nvcc -cubin failed
// (exit status N)\n" then nvcc's output (daemon/nvcc.cc). False for anything
// else.
bool ParseOlderFailure(absl::string_view error, int* exit_code,
                       std::string* log) {
  const size_t newline = error.find('\n');
  absl::string_view first = error.substr(0, newline);
  const size_t nvcc = first.find("nvcc -");
  if (nvcc == absl::string_view::npos) return false;
  first.remove_prefix(nvcc);
  constexpr absl::string_view kStatus = " failed (exit status ";
  const size_t at = first.find(kStatus);
  if (at == absl::string_view::npos || !absl::ConsumeSuffix(&first, ")") ||
      !absl::SimpleAtoi(first.substr(at + kStatus.size()), exit_code)) {
    return false;
  }
  *log = newline == absl::string_view::npos
             ? ""
             : std::string(error.substr(newline + 1));
  return true;
}

RemoteOutcome FailedResult(const tpjit::v1::CompileResult& r) {
  if (r.exit_code() > 0) {
    return CompileError(r.log().empty() ? r.error() : r.log(), r.exit_code());
  }
  int exit_code = 0;
  std::string log;
  if (ParseOlderFailure(r.error(), &exit_code, &log)) {
    return CompileError(std::move(log), exit_code);
  }
  return Unavailable(absl::StrCat("tpjitd could not compile: ",
                                  r.error().empty() ? r.log() : r.error()));
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration d) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d);
}

// gRPC's own log lines would add to the one warning line; silenced unless
// TPJIT_NVCC_DEBUG is set.
void NoLog(gpr_log_func_args*) {}

}  // namespace

tpjit::v1::CompileRequest BuildCompileRequest(const NvccCompileCall& call,
                                              std::string source_text,
                                              const std::string& group) {
  tpjit::v1::CompileRequest request;
  request.set_backend(tpjit::v1::NVCC);
  request.set_arch(call.arch);
  for (const std::string& d : call.include_dirs) request.add_include_dirs(d);
  for (const std::string& o : call.options) request.add_options(o);
  auto* source = request.add_sources();
  source->set_name(call.source.substr(call.source.rfind('/') + 1));
  source->set_source(std::move(source_text));
  request.set_group(group);
  request.set_output(call.mode == NvccMode::kPtx ? tpjit::v1::PTX
                                                 : tpjit::v1::CUBIN);
  request.set_return_output(true);
  return request;
}

RemoteOutcome InterpretResponse(const tpjit::v1::CompileResponse& response) {
  if (response.results_size() != 1) {
    return Unavailable(absl::StrCat("tpjitd answered with ",
                                    response.results_size(),
                                    " results for one source"));
  }
  const tpjit::v1::CompileResult& r = response.results(0);
  if (r.queued()) {
    RemoteOutcome out;
    out.kind = RemoteOutcome::kQueued;
    out.reason = absl::StrCat("queued in tpjitd (key ", r.key(), ")");
    return out;
  }
  if (!r.ok()) return FailedResult(r);
  if (r.output().empty() && r.key().empty()) {
    return Unavailable("tpjitd returned neither the output nor its key");
  }
  RemoteOutcome out;
  out.kind = RemoteOutcome::kCompiled;
  out.output = r.output();
  out.log = r.log();
  return out;
}

absl::Status CheckOutput(absl::string_view output, NvccMode mode) {
  const bool elf = absl::StartsWith(output, kElfMagic);
  if (mode == NvccMode::kCubin && !elf) {
    return absl::DataLossError("tpjitd's output is not a cubin (ELF)");
  }
  if (mode == NvccMode::kPtx && (elf || output.empty())) {
    return absl::DataLossError(
        "tpjitd's output is not PTX (does it support -ptx?)");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ConnectToTpjitd(
    const RemoteOptions& options) {
  if (absl::StartsWith(options.target, "unix:")) {
    struct stat st;
    const std::string path = options.target.substr(5);
    if (stat(path.c_str(), &st) != 0) {
      return absl::UnavailableError(absl::StrCat("no tpjitd socket at ", path));
    }
  }
  if (getenv("TPJIT_NVCC_DEBUG") == nullptr) gpr_set_log_function(NoLog);
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  args.SetMaxSendMessageSize(kMaxMessageBytes);
  auto channel = grpc::CreateCustomChannel(
      options.target, grpc::InsecureChannelCredentials(), args);
  const auto deadline = DeadlineIn(options.connect_timeout);
  for (auto state = channel->GetState(true);;) {
    if (state == GRPC_CHANNEL_READY) return channel;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE ||
        state == GRPC_CHANNEL_SHUTDOWN) {
      return absl::UnavailableError(absl::StrCat("tpjitd at ", options.target,
                                                 " refused the connection"));
    }
    if (!channel->WaitForStateChange(state, deadline)) {
      return absl::UnavailableError(absl::StrCat(
          "tpjitd at ", options.target, " did not accept a connection within ",
          absl::FormatDuration(options.connect_timeout)));
    }
    state = channel->GetState(false);
  }
}

RemoteOutcome CompileRemotely(const NvccCompileCall& call,
                              std::string source_text,
                              const RemoteOptions& options) {
  auto channel = ConnectToTpjitd(options);
  if (!channel.ok()) return Unavailable(channel.status().message());
  return CompileRemotely(*channel, call, std::move(source_text), options);
}

RemoteOutcome CompileRemotely(std::shared_ptr<grpc::Channel> channel,
                              const NvccCompileCall& call,
                              std::string source_text,
                              const RemoteOptions& options) {
  ClientOptions client_options;
  client_options.connect_timeout = absl::ZeroDuration();
  client_options.call_timeout = options.rpc_timeout;
  Client client(tpjit::v1::Tpjit::NewStub(channel), nullptr, options.target,
                client_options);
  tpjit::v1::CompileRequest request =
      BuildCompileRequest(call, std::move(source_text), options.group);
  request.set_no_wait(options.no_wait);
  auto response = client.Compile(request, options.rpc_timeout);
  if (!response.ok()) return Unavailable(response.status().message());
  RemoteOutcome out = InterpretResponse(*response);
  if (out.kind != RemoteOutcome::kCompiled) return out;
  if (out.output.empty()) {
    auto fetched = client.Fetch(response->results(0).key());
    if (!fetched.ok()) return Unavailable(fetched.status().message());
    out.output = std::move(*fetched);
  }
  if (absl::Status s = CheckOutput(out.output, call.mode); !s.ok()) {
    return Unavailable(s.message());
  }
  return out;
}

}  // namespace tpjit
