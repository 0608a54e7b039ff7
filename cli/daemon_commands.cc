#include "cli/daemon_commands.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/spec_file.h"
#include "client/include/tpjit/client.h"
#include "client/rpc/proto_json.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "src/common/flags.h"
#include "src/common/status_macros.h"

namespace tpjit::cli {
namespace {

using tpjit::v1::WarmupProgress;

constexpr int kExitFailure = 1;

// Connects to the daemon; bodies call it after checking their flags, so a
// bad flag exits 2 whether or not a daemon runs.
using Connector = std::function<absl::StatusOr<std::unique_ptr<Client>>()>;

// A command: its flags (the common ones are added), usage line and body. The
// body returns an exit code or an error (exit code by ExitCodeFor).
struct CommandDef {
  std::string name;
  std::string usage;
  std::vector<FlagDef> flags;
  double default_timeout_seconds;
  std::function<absl::StatusOr<int>(const ParsedFlags&, const Connector&,
                                    std::ostream& out, std::ostream& err)>
      body;
};

std::vector<FlagDef> WithCommon(std::vector<FlagDef> defs, double timeout) {
  defs.push_back({"socket", true, "tpjitd's Unix socket (or gRPC target)",
                  "TPJIT_SOCKET"});
  defs.push_back(
      {"timeout", true,
       absl::StrCat("seconds for the call (default ", timeout, ")")});
  defs.push_back({"help", false, "show this help"});
  return defs;
}

absl::StatusOr<std::unique_ptr<Client>> ConnectFor(const ParsedFlags& flags,
                                                   absl::Duration timeout) {
  ClientOptions options;
  // Wait for a daemon that is still starting, but never past the deadline.
  options.connect_timeout = std::min(timeout, absl::Seconds(10));
  options.call_timeout = timeout;
  return Client::Connect(flags.Get("socket").value_or(DefaultSocketPath()),
                         options);
}

int RunCommand(const CommandDef& def, const std::vector<std::string>& args,
               std::ostream& out, std::ostream& err) {
  const auto defs = WithCommon(def.flags, def.default_timeout_seconds);
  const std::string prefix = absl::StrCat("tpjit ", def.name, ": ");
  auto flags = ParseFlags(defs, args);
  if (flags.ok() && flags->Has("help")) {
    out << "usage: " << def.usage << "\n" << FlagHelp(defs);
    return 0;
  }
  absl::Status status = flags.status();
  if (status.ok() && !flags->positional().empty()) {
    status = absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", flags->positional().front(), "\""));
  }
  absl::StatusOr<double> seconds =
      status.ok()
          ? flags->GetDouble("timeout", def.default_timeout_seconds, 0.001, 1e7)
          : absl::StatusOr<double>(status);
  if (!seconds.ok()) {
    err << prefix << seconds.status().message() << "\nusage: " << def.usage
        << "\n";
    return 2;
  }
  // A default of 0 (compile): the call's deadline follows the request.
  const absl::Duration timeout = absl::Seconds(*seconds > 0 ? *seconds : 30);
  const ParsedFlags& parsed = *flags;
  Connector connect = [&parsed, timeout] {
    return ConnectFor(parsed, timeout);
  };
  absl::StatusOr<int> code = def.body(parsed, connect, out, err);
  if (!code.ok()) {
    err << prefix << code.status().message() << "\n";
    // A daemon that is not there is a failure, not bad input.
    return code.status().code() == absl::StatusCode::kUnavailable
               ? kExitFailure
               : ExitCodeFor(code.status());
  }
  return *code;
}

absl::Status Required(const ParsedFlags& flags,
                      std::initializer_list<const char*> names) {
  for (const char* name : names) {
    if (!flags.Get(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " is required"));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& flag,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("--", flag, ": cannot read ", path));
  }
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// --- warmup ---------------------------------------------------------------

// Progress on stderr: one redrawn bar on a terminal, else a plain line
// whenever the counts or the phase change.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& err, bool tty) : err_(err), tty_(tty) {}
  void Update(const WarmupProgress& p) {
    const std::string line = absl::StrFormat(
        "%-9s %d/%d kernels: %d hits, %d compiled, %d failed, %.1f s",
        p.phase(), p.done(), p.total(), p.cache_hits(), p.compiled(),
        p.failed(), p.elapsed_seconds());
    if (tty_) {
      constexpr int kWidth = 30;
      const int filled =
          p.total() > 0 ? std::min(kWidth, kWidth * p.done() / p.total()) : 0;
      err_ << "\r[" << std::string(filled, '#')
           << std::string(kWidth - filled, ' ') << "] " << line << "\033[K"
           << std::flush;
      drawn_ = true;
      return;
    }
    const auto key = std::make_tuple(p.phase(), p.done(), p.total());
    if (key == last_) return;
    last_ = key;
    err_ << "tpjit warmup: " << line << "\n";
  }
  void Finish() {
    if (drawn_) err_ << "\n";
    drawn_ = false;
  }

 private:
  std::ostream& err_;
  const bool tty_;
  bool drawn_ = false;
  std::tuple<std::string, int, int> last_;
};

nlohmann::json SummaryJson(const WarmupResult& r) {
  const auto& s = r.summary;
  return {{"manifest_digest", r.manifest.digest()},
          {"plan_digest", r.manifest.plan_digest()},
          {"arch", r.manifest.arch()},
          {"m_max", r.manifest.m_max()},
          {"distinct_kernels", s.distinct_kernels()},
          {"compiled", s.compiled()},
          {"cache_hits", s.cache_hits()},
          {"wall_seconds", s.wall_seconds()},
          {"compile_cpu_seconds", s.compile_cpu_seconds()},
          {"attached", s.attached()}};
}

absl::StatusOr<int> Warmup(const ParsedFlags& flags, const Connector& connect,
                           std::ostream& out, std::ostream& err) {
  TPJIT_RETURN_IF_ERROR(Required(flags, {"spec", "rank", "world"}));
  TPJIT_ASSIGN_OR_RETURN(auto spec, ReadSpecFile(*flags.Get("spec")));
  TPJIT_ASSIGN_OR_RETURN(int64_t world, flags.GetInt("world", 1, 1, 1 << 16));
  TPJIT_ASSIGN_OR_RETURN(int64_t rank, flags.GetInt("rank", 0, 0, world - 1));
  TPJIT_ASSIGN_OR_RETURN(double seconds,
                         flags.GetDouble("timeout", 3600, 0.001, 1e7));
  TPJIT_ASSIGN_OR_RETURN(auto client, connect());
  ProgressPrinter printer(err, &err == &std::cerr && isatty(STDERR_FILENO));
  auto result = client->Warmup(
      spec, static_cast<int>(rank), static_cast<int>(world),
      flags.Get("group").value_or(""),
      [&printer](const WarmupProgress& p) { printer.Update(p); },
      absl::Seconds(seconds));
  printer.Finish();
  if (!result.ok()) return result.status();
  if (auto path = flags.Get("manifest")) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    auto st = google::protobuf::util::MessageToJsonString(result->manifest,
                                                          &json, options);
    if (!st.ok()) return absl::InternalError(st.ToString());
    TPJIT_RETURN_IF_ERROR(WriteFile(*path, json + "\n"));
  }
  if (flags.Has("json")) {
    out << SummaryJson(*result).dump() << "\n";
    return 0;
  }
  const auto& s = result->summary;
  out << "manifest " << result->manifest.digest() << "\n"
      << absl::StrFormat(
             "distinct kernels %d, compiled %d, cache hits %d, wall %.2f s%s\n",
             s.distinct_kernels(), s.compiled(), s.cache_hits(),
             s.wall_seconds(),
             s.attached() ? " (attached to a running job)" : "");
  return 0;
}

// --- status, stats, health --------------------------------------------------

absl::StatusOr<int> Status(const ParsedFlags& flags, const Connector& connect,
                           std::ostream& out, std::ostream&) {
  TPJIT_ASSIGN_OR_RETURN(auto client, connect());
  TPJIT_ASSIGN_OR_RETURN(auto status, client->Status());
  if (flags.Has("json")) {
    out << ProtoToJson(status).dump() << "\n";
    return 0;
  }
  out << "tpjitd at " << client->target() << ": "
      << (status.serving() ? "SERVING" : "NOT_SERVING")
      << (status.not_serving_reason().empty()
              ? ""
              : " (" + status.not_serving_reason() + ")")
      << "\n";
  out << absl::StrFormat("%-5s %-4s %-6s %-5s %-9s %-9s %-7s %s\n", "slot",
                         "gpu", "procs", "busy", "compiled", "restarts",
                         "queued", "rss_MiB");
  for (const auto& s : status.slots()) {
    out << absl::StrFormat("%-5d %-4d %-6d %-5d %-9d %-9d %-7d %.1f\n",
                           s.slot(), s.gpu(), s.procs_alive(), s.busy(),
                           s.compiled(), s.restarts(), s.queued(),
                           s.rss_bytes() / 1048576.0);
  }
  out << "jobs: " << status.jobs_size() << "\n";
  for (const auto& j : status.jobs()) {
    const auto& p = j.progress();
    out << absl::StrFormat(
        "  %s %s: %s %d/%d (hits %d, compiled %d, failed %d), %d ranks, "
        "%.1f s%s\n",
        j.job_id(), j.spec_name(), p.phase(), p.done(), p.total(),
        p.cache_hits(), p.compiled(), p.failed(), j.attached_ranks(),
        p.elapsed_seconds(), j.error().empty() ? "" : ": " + j.error());
  }
  return 0;
}

absl::StatusOr<int> Stats(const ParsedFlags& flags, const Connector& connect,
                          std::ostream& out, std::ostream&) {
  TPJIT_ASSIGN_OR_RETURN(auto client, connect());
  TPJIT_ASSIGN_OR_RETURN(auto stats, client->Stats());
  const nlohmann::json j = ProtoToJson(stats);
  if (flags.Has("json")) {
    out << j.dump() << "\n";
    return 0;
  }
  // One "name: value" line per field; a message's fields as "name.field".
  auto line = [&out](const std::string& name, const nlohmann::json& value) {
    out << name << ": "
        << (value.is_string() ? value.get<std::string>() : value.dump())
        << "\n";
  };
  for (const auto& [name, value] : j.items()) {
    if (!value.is_object()) {
      line(name, value);
      continue;
    }
    for (const auto& [field, v] : value.items()) line(name + "." + field, v);
  }
  return 0;
}

absl::StatusOr<int> Health(const ParsedFlags&, const Connector& connect,
                           std::ostream& out, std::ostream&) {
  TPJIT_ASSIGN_OR_RETURN(auto client, connect());
  TPJIT_ASSIGN_OR_RETURN(HealthReport report, client->Health());
  using grpc::health::v1::HealthCheckResponse;
  out << (report.serving() ? "SERVING" : "NOT_SERVING") << " (server "
      << HealthCheckResponse::ServingStatus_Name(report.overall) << ", "
      << Client::kServiceName << " "
      << HealthCheckResponse::ServingStatus_Name(report.tpjit) << ")\n";
  return report.serving() ? 0 : kExitFailure;
}

// --- compile ----------------------------------------------------------------

absl::StatusOr<tpjit::v1::CompileRequest> BuildCompileRequest(
    const ParsedFlags& flags) {
  TPJIT_RETURN_IF_ERROR(Required(flags, {"source"}));
  tpjit::v1::CompileRequest request;
  const std::string backend = flags.Get("backend").value_or("nvrtc");
  if (backend == "nvrtc") {
    request.set_backend(tpjit::v1::NVRTC);
  } else if (backend == "nvcc") {
    request.set_backend(tpjit::v1::NVCC);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("--backend: \"", backend, "\" is not nvrtc or nvcc"));
  }
  request.set_arch(flags.Get("arch").value_or("sm_90a"));
  request.set_group(flags.Get("group").value_or(""));
  // The daemon resolves include directories itself and wants them absolute.
  for (const auto& dir : flags.GetAll("include")) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(dir, ec);
    request.add_include_dirs(ec ? dir : abs.lexically_normal().string());
  }
  for (const auto& opt : flags.GetAll("option")) request.add_options(opt);
  TPJIT_ASSIGN_OR_RETURN(double seconds,
                         flags.GetDouble("compile-timeout", 0, 0, 1e6));
  request.set_timeout_seconds(seconds);
  for (const auto& path : flags.GetAll("source")) {
    auto* source = request.add_sources();
    source->set_name(path);
    TPJIT_ASSIGN_OR_RETURN(*source->mutable_source(), ReadFile("source", path));
    for (const auto& e : flags.GetAll("name-expression")) {
      source->add_name_expressions(e);
    }
  }
  return request;
}

absl::StatusOr<int> Compile(const ParsedFlags& flags, const Connector& connect,
                            std::ostream& out, std::ostream& err) {
  TPJIT_ASSIGN_OR_RETURN(auto request, BuildCompileRequest(flags));
  const auto out_dir = flags.Get("out");
  if (out_dir) {
    std::error_code ec;
    std::filesystem::create_directories(*out_dir, ec);
    if (ec) {
      return absl::InvalidArgumentError(
          absl::StrCat("--out: cannot create ", *out_dir, ": ", ec.message()));
    }
  }
  TPJIT_ASSIGN_OR_RETURN(double seconds,
                         flags.GetDouble("timeout", 0, 0.001, 1e7));
  TPJIT_ASSIGN_OR_RETURN(auto client, connect());
  TPJIT_ASSIGN_OR_RETURN(auto response,
                         client->Compile(request, absl::Seconds(seconds)));
  nlohmann::json results = nlohmann::json::array();
  bool all_ok = true;
  for (const auto& r : response.results()) {
    nlohmann::json j = ProtoToJson(r);
    std::string where;
    if (r.ok() && out_dir) {
      where = absl::StrCat(*out_dir, "/", r.key(), ".cubin");
      TPJIT_ASSIGN_OR_RETURN(std::string cubin, client->Fetch(r.key()));
      TPJIT_RETURN_IF_ERROR(WriteFile(where, cubin));
      j["cubin"] = where;
    }
    results.push_back(j);
    all_ok = all_ok && r.ok();
    if (!r.ok()) {
      err << "tpjit compile: " << r.name() << ": " << r.error() << "\n"
          << r.log() << (r.log().empty() || r.log().back() == '\n' ? "" : "\n");
    }
    if (flags.Has("json")) continue;
    if (!r.ok()) {
      out << r.name() << " FAILED\n";
      continue;
    }
    out << absl::StrFormat("%s %s %s %.2f s%s\n", r.name(), r.key(),
                           r.cache_hit() ? "hit" : "miss", r.compile_seconds(),
                           where.empty() ? "" : " -> " + where);
  }
  if (flags.Has("json")) {
    out << nlohmann::json{{"ok", all_ok}, {"results", results}}.dump() << "\n";
  }
  return all_ok ? 0 : kExitFailure;
}

const std::vector<FlagDef> kJsonOnly = {
    {"json", false, "print one JSON object"}};

}  // namespace

int RunWarmupCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err) {
  static const auto* def = new CommandDef{
      "warmup",
      "tpjit warmup --spec FILE --rank R --world W [--group G] [--json] "
      "[--manifest FILE] [--socket PATH] [--timeout S]",
      {{"spec", true, "warm-up spec (JSON)"},
       {"rank", true, "this rank, 0..world-1"},
       {"world", true, "ranks of the TP group"},
       {"group", true, "TP group name (ranks of one group share a job)"},
       {"manifest", true, "also write the manifest (JSON) to this file"},
       {"json", false, "print the summary as one JSON object"}},
      3600,
      Warmup};
  return RunCommand(*def, args, out, err);
}

int RunStatusCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err) {
  static const auto* def = new CommandDef{
      "status", "tpjit status [--json] [--socket PATH] [--timeout S]",
      kJsonOnly, 30, Status};
  return RunCommand(*def, args, out, err);
}

int RunStatsCommand(const std::vector<std::string>& args, std::ostream& out,
                    std::ostream& err) {
  static const auto* def = new CommandDef{
      "stats", "tpjit stats [--json] [--socket PATH] [--timeout S]", kJsonOnly,
      30, Stats};
  return RunCommand(*def, args, out, err);
}

int RunHealthCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err) {
  static const auto* def = new CommandDef{
      "health", "tpjit health [--socket PATH] [--timeout S]", {}, 3, Health};
  return RunCommand(*def, args, out, err);
}

int RunCompileCommand(const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err) {
  static const auto* def = new CommandDef{
      "compile",
      "tpjit compile --source FILE [--source FILE ...] [--backend nvrtc|nvcc] "
      "[--arch sm_90a] [--include DIR ...] [--option OPT ...] "
      "[--name-expression E ...] [--group G] [--out DIR] [--json] "
      "[--socket PATH]",
      {{"source", true, "CUDA C++ source file (repeatable)", "", true},
       {"backend", true, "nvrtc (default) or nvcc"},
       {"arch", true, "target architecture (default sm_90a)"},
       {"include", true, "include directory (repeatable; allowlisted)", "",
        true},
       {"option", true, "compiler option (repeatable)", "", true},
       {"name-expression", true, "kernel to lower, NVRTC (repeatable)", "",
        true},
       {"compile-timeout", true, "seconds per source (default: daemon's)"},
       {"group", true, "deployment whose recipe records these sources"},
       {"out", true, "write the cubins to this directory"},
       {"json", false, "print one JSON object"}},
      0,
      Compile};
  return RunCommand(*def, args, out, err);
}

}  // namespace tpjit::cli
