// tpjit-nvcc: a drop-in nvcc for JIT libraries (DeepGEMM's
// DG_JIT_NVCC_COMPILER) that has tpjitd compile single-source -cubin / -ptx
// calls, and runs the real nvcc for everything else.
//
// Contract, per call:
//  - Not a single-source -cubin/-ptx compile for one sm_ arch (--version,
//    -E, -c, several sources, ...): exec the real nvcc with the same
//    arguments (client/nvcc/real_nvcc.h), silently.
//  - tpjitd compiled it: the output file is written atomically, the
//    compiler's messages go to stderr, exit status 0.
//  - The compiler failed: its messages go to stderr as nvcc prints them,
//    exit with nvcc's status.
//  - Anything else (no daemon, an RPC error, a refused option, a daemon-side
//    failure, an output that cannot be written): one line
//    "tpjit-nvcc: warning: <reason>; compiling locally with <real nvcc>" on
//    stderr, then exec the real nvcc with the original arguments (fail-open).
// Environment: TPJIT_SOCKET (daemon socket), TPJIT_GROUP (the deployment
// recorded with the compile), TPJIT_NVCC_TIMEOUT (seconds for the compile
// call, default 600), TPJIT_NVCC_CONNECT_TIMEOUT (seconds, default 1),
// TPJIT_REAL_NVCC, CUDA_HOME, TPJIT_NVCC_DEBUG (say why a call runs locally).
// TPJIT_NVCC_NO_WAIT=1 (kernel discovery ahead of use, tpjit.deep_gemm's
// warm-up): a hit is served as usual; a miss is queued in tpjitd (it compiles
// on and publishes to the cache) and the call exits 75 (EX_TEMPFAIL) with one
// line and no output, as it does when tpjitd cannot take it: never a local
// compile in this mode.
// A call compiles locally (with the warning) when NVCC_PREPEND_FLAGS,
// NVCC_APPEND_FLAGS, CPATH, C_INCLUDE_PATH or CPLUS_INCLUDE_PATH is set, or
// the source includes a quoted header from its own directory.
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "client/include/tpjit/client.h"
#include "client/nvcc/nvcc_args.h"
#include "client/nvcc/output_file.h"
#include "client/nvcc/real_nvcc.h"
#include "client/nvcc/remote_compile.h"

namespace tpjit {
namespace {

std::string Env(const char* name) {
  const char* v = getenv(name);
  return v == nullptr ? "" : v;
}

absl::Duration SecondsFromEnv(const char* name, double fallback) {
  double seconds = 0;
  if (!absl::SimpleAtod(Env(name), &seconds) || seconds <= 0) {
    seconds = fallback;
  }
  return absl::Seconds(seconds);
}

// Fail-open: one warning line, then the real nvcc on the original arguments.
[[noreturn]] void CompileLocally(const std::vector<std::string>& args,
                                 absl::string_view reason) {
  auto real = FindRealNvcc();
  if (!real.ok()) RunRealNvcc(args);  // prints the error, exits 127
  const std::string line =
      absl::StrReplaceAll(reason, {{"\n", " "}, {"\r", " "}});
  fprintf(stderr, "tpjit-nvcc: warning: %s; compiling locally with %s\n",
          line.c_str(), real->c_str());
  ExecRealNvcc(*real, args);
}

// Why tpjitd cannot stand in for nvcc on this call, or "" when it can.
std::string LocalReason(const NvccCompileCall& call,
                        const std::string& source) {
  // Variables that change what the local nvcc (or its host preprocessor)
  // does but never reach tpjitd.
  for (const char* v : {"NVCC_PREPEND_FLAGS", "NVCC_APPEND_FLAGS", "CPATH",
                        "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH"}) {
    if (!Env(v).empty()) return absl::StrCat(v, " is set");
  }
  const std::string dir = call.source_abs.substr(0, call.source_abs.rfind('/'));
  for (const std::string& name : QuotedIncludes(source)) {
    if (access(absl::StrCat(dir, "/", name).c_str(), F_OK) == 0) {
      return absl::StrCat("the source includes \"", name,
                          "\" from its own directory");
    }
  }
  return "";
}

// Ends the process with `status` without tearing gRPC down: the channel
// (still referenced by the caller) and gRPC's threads end with the process,
// which saves about 5 ms of a call that took 10. Output is flushed first.
[[noreturn]] void ExitNow(int status) {
  fflush(nullptr);
  _exit(status);
}

void PrintLog(const NvccCompileCall& call, const std::string& log) {
  if (log.empty()) return;
  const std::string name = call.source.substr(call.source.rfind('/') + 1);
  const std::string text = RewriteSourceName(log, name, call.source);
  fwrite(text.data(), 1, text.size(), stderr);
}

constexpr int kNotCompiledHere = 75;  // EX_TEMPFAIL

// Never returns: execs the real nvcc or exits.
[[noreturn]] void Run(const std::vector<std::string>& args) {
  char cwd[PATH_MAX];
  if (getcwd(cwd, sizeof(cwd)) == nullptr) RunRealNvcc(args);
  auto call = ParseNvccArgs(args, cwd);
  if (!call.ok()) {
    if (!Env("TPJIT_NVCC_DEBUG").empty()) {
      fprintf(stderr, "tpjit-nvcc: running nvcc: %s\n",
              std::string(call.status().message()).c_str());
    }
    RunRealNvcc(args);
  }
  auto source = ReadWholeFile(call->source_abs);
  if (!source.ok()) RunRealNvcc(args);  // nvcc names the problem itself
  if (std::string why = LocalReason(*call, *source); !why.empty()) {
    CompileLocally(args, why);
  }
  RemoteOptions options;
  options.target = TargetFor(DefaultSocketPath());
  options.group = Env("TPJIT_GROUP");
  options.connect_timeout = SecondsFromEnv("TPJIT_NVCC_CONNECT_TIMEOUT", 1);
  options.rpc_timeout = SecondsFromEnv("TPJIT_NVCC_TIMEOUT", 600);
  options.no_wait = Env("TPJIT_NVCC_NO_WAIT") == "1";
  auto channel = ConnectToTpjitd(options);
  RemoteOutcome out;
  if (!channel.ok()) {
    out.reason = std::string(channel.status().message());
  } else {
    out = CompileRemotely(*channel, *call, *std::move(source), options);
  }
  if (options.no_wait && (out.kind == RemoteOutcome::kQueued ||
                          out.kind == RemoteOutcome::kUnavailable)) {
    const std::string line =
        absl::StrReplaceAll(out.reason, {{"\n", " "}, {"\r", " "}});
    fprintf(stderr,
            "tpjit-nvcc: %s (TPJIT_NVCC_NO_WAIT=1): not compiled here\n",
            line.c_str());
    ExitNow(kNotCompiledHere);
  }
  if (out.kind == RemoteOutcome::kUnavailable ||
      out.kind == RemoteOutcome::kQueued) {
    CompileLocally(args, out.reason);
  }
  if (out.kind == RemoteOutcome::kCompileError) {
    PrintLog(*call, out.log);
    ExitNow(out.exit_code);
  }
  // Written before the messages: a failed write compiles locally, and the
  // real nvcc then prints them once.
  if (absl::Status s = WriteFileAtomically(call->output, out.output); !s.ok()) {
    CompileLocally(args, s.message());
  }
  PrintLog(*call, out.log);
  ExitNow(0);
}

}  // namespace
}  // namespace tpjit

int main(int argc, char** argv) {
  tpjit::Run(std::vector<std::string>(argv + 1, argv + argc));
}
