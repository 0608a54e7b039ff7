#include "cli/recipe_command.h"

#include <filesystem>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cli/spec_file.h"
#include "client/include/tpjit/client.h"
#include "client/rpc/proto_json.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "src/common/flags.h"
#include "src/common/status_macros.h"
#include "tpjit/v1/recipe.grpc.pb.h"

namespace tpjit::cli {
namespace {

using tpjit::v1::RecipeService;

constexpr char kPrefix[] = "tpjit recipe: ";

// A subcommand: its own flags (the common ones are added), the number of
// positional words it takes, and its body.
struct Subcommand {
  std::string name;
  std::string usage;
  std::vector<FlagDef> flags;
  size_t positional;
};

const std::vector<Subcommand>& Subcommands() {
  static const auto* subs = new std::vector<Subcommand>{
      {"ls", "tpjit recipe ls [--json]", {}, 0},
      {"show",
       "tpjit recipe show GROUP [--source] [--json]",
       {{"source", false, "also print each entry's source"}},
       1},
      {"prefetch",
       "tpjit recipe prefetch GROUP [--include-dir DIR ...] [--wait] [--json]",
       {{"include-dir", true,
         "replaces, by index, recorded include dirs missing on this node", "",
         true},
        {"wait", false, "answer when every compile has ended"}},
       1},
  };
  return *subs;
}

std::vector<FlagDef> WithCommon(std::vector<FlagDef> defs) {
  defs.push_back({"json", false, "print one JSON object"});
  defs.push_back({"socket", true, "tpjitd's Unix socket (or gRPC target)",
                  "TPJIT_SOCKET"});
  defs.push_back({"timeout", true,
                  "seconds for the call (default 30; "
                  "prefetch --wait: 3600)"});
  defs.push_back({"help", false, "show this help"});
  return defs;
}

absl::StatusOr<std::unique_ptr<RecipeService::Stub>> Connect(
    const ParsedFlags& flags, absl::Duration timeout, std::string* target) {
  *target = TargetFor(flags.Get("socket").value_or(DefaultSocketPath()));
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(
      *target, grpc::InsecureChannelCredentials(), args);
  const absl::Duration wait = std::min(timeout, absl::Seconds(10));
  if (!channel->WaitForConnected(absl::ToChronoTime(absl::Now() + wait))) {
    return absl::UnavailableError(
        absl::StrCat("tpjitd at ", *target,
                     " is not reachable (is it running? --socket / "
                     "TPJIT_SOCKET)"));
  }
  return RecipeService::NewStub(channel);
}

// Absolute, existing directories, or INVALID_ARGUMENT naming the bad one.
absl::StatusOr<std::vector<std::string>> IncludeDirs(const ParsedFlags& f) {
  std::vector<std::string> dirs;
  for (const std::string& dir : f.GetAll("include-dir")) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--include-dir: ", dir, " is not a directory"));
    }
    dirs.push_back(
        std::filesystem::absolute(dir, ec).lexically_normal().string());
  }
  return dirs;
}

std::string Short(const std::string& digest) {
  return digest.empty() ? "-" : digest.substr(0, 12);
}

void PrintGroup(const tpjit::v1::RecipeGroup& g, std::ostream& out) {
  out << absl::StrFormat("%-32s %7d %7d %10d%s\n", g.group(), g.entries(),
                         g.cached(), g.bytes(),
                         g.prefetching() ? " prefetching" : "");
}

absl::StatusOr<int> Ls(RecipeService::Stub& stub, grpc::ClientContext& ctx,
                       const std::string& target, const ParsedFlags& flags,
                       std::ostream& out) {
  tpjit::v1::ListRecipesResponse resp;
  grpc::Status s = stub.List(&ctx, tpjit::v1::ListRecipesRequest(), &resp);
  if (!s.ok()) return StatusFromGrpc(s, target, "List");
  if (flags.Has("json")) {
    out << ProtoToJson(resp).dump() << "\n";
    return 0;
  }
  out << absl::StrFormat("%-32s %7s %7s %10s\n", "GROUP", "ENTRIES", "CACHED",
                         "BYTES");
  for (const auto& g : resp.groups()) PrintGroup(g, out);
  return 0;
}

absl::StatusOr<int> Show(RecipeService::Stub& stub, grpc::ClientContext& ctx,
                         const std::string& target, const ParsedFlags& flags,
                         const std::string& group, std::ostream& out) {
  tpjit::v1::ShowRecipeRequest req;
  req.set_group(group);
  req.set_with_source(flags.Has("source"));
  tpjit::v1::ShowRecipeResponse resp;
  grpc::Status s = stub.Show(&ctx, req, &resp);
  if (!s.ok()) return StatusFromGrpc(s, target, "Show");
  if (flags.Has("json")) {
    out << ProtoToJson(resp).dump() << "\n";
    return 0;
  }
  const auto& g = resp.group();
  out << "group " << g.group() << ": " << g.entries() << " entries, "
      << g.cached() << " cached, " << g.bytes() << " bytes"
      << (g.prefetching() ? ", prefetching" : "") << "\n";
  for (const auto& e : resp.entries()) {
    if (!e.error().empty()) {
      out << Short(e.digest()) << " unreadable: " << e.error() << "\n";
      continue;
    }
    out << absl::StrFormat(
        "%s %-6s %-8s key %s %s %s (%d bytes)\n", Short(e.digest()),
        absl::AsciiStrToLower(tpjit::v1::Backend_Name(e.backend())), e.arch(),
        Short(e.key()), e.cached() ? "cached " : "missing", e.name(),
        e.source_bytes());
    if (flags.Has("source")) out << e.source() << "\n";
  }
  return 0;
}

absl::StatusOr<int> Prefetch(RecipeService::Stub& stub,
                             grpc::ClientContext& ctx,
                             const std::string& target,
                             const ParsedFlags& flags, const std::string& group,
                             const std::vector<std::string>& dirs,
                             std::ostream& out, std::ostream& err) {
  tpjit::v1::PrefetchRecipeRequest req;
  req.set_group(group);
  for (const std::string& d : dirs) req.add_include_dirs(d);
  req.set_wait(flags.Has("wait"));
  tpjit::v1::PrefetchRecipeResponse r;
  grpc::Status s = stub.Prefetch(&ctx, req, &r);
  if (!s.ok()) return StatusFromGrpc(s, target, "Prefetch");
  for (const std::string& e : r.errors()) err << kPrefix << e << "\n";
  const int code = r.failed() > 0 ? 1 : 0;
  if (flags.Has("json")) {
    out << ProtoToJson(r).dump() << "\n";
    return code;
  }
  out << "group " << group << ": " << r.entries() << " entries, " << r.cached()
      << " cached, " << r.submitted() << " submitted"
      << (r.unreadable() > 0 ? absl::StrCat(", ", r.unreadable(), " unreadable")
                             : "")
      << (r.joined() ? " (joined the prefetch in flight)" : "") << "\n";
  if (flags.Has("wait") && r.submitted() > 0) {
    out << absl::StrFormat("compiled %d, cache hits %d, failed %d in %.2f s\n",
                           r.compiled(), r.cache_hits(), r.failed(),
                           r.wall_seconds());
  }
  return code;
}

int Usage(std::ostream& err, const std::string& message) {
  err << kPrefix << message << "\n" << RecipeCommandUsage();
  return 2;
}

}  // namespace

std::string RecipeCommandUsage() {
  std::string out = "usage:\n";
  for (const Subcommand& s : Subcommands()) {
    absl::StrAppend(&out, "  ", s.usage, "\n");
  }
  std::vector<FlagDef> all;
  for (const Subcommand& s : Subcommands()) {
    all.insert(all.end(), s.flags.begin(), s.flags.end());
  }
  absl::StrAppend(&out, "flags:\n", FlagHelp(WithCommon(all)));
  return out;
}

int RunRecipeCommand(const std::vector<std::string>& args, std::ostream& out,
                     std::ostream& err) {
  if (args.empty())
    return Usage(err, "missing subcommand (ls, show, prefetch)");
  if (args[0] == "--help" || args[0] == "help") {
    out << RecipeCommandUsage();
    return 0;
  }
  const Subcommand* sub = nullptr;
  for (const Subcommand& s : Subcommands()) {
    if (s.name == args[0]) sub = &s;
  }
  if (sub == nullptr) {
    return Usage(err, absl::StrCat("unknown subcommand \"", args[0], "\""));
  }
  const std::vector<FlagDef> defs = WithCommon(sub->flags);
  absl::StatusOr<ParsedFlags> flags =
      ParseFlags(defs, std::vector<std::string>(args.begin() + 1, args.end()));
  if (!flags.ok()) return Usage(err, std::string(flags.status().message()));
  if (flags->Has("help")) {
    out << "usage: " << sub->usage << "\n" << FlagHelp(defs);
    return 0;
  }
  const auto& pos = flags->positional();
  if (pos.size() < sub->positional) {
    return Usage(err, absl::StrCat(sub->name, " needs a GROUP"));
  }
  if (pos.size() > sub->positional) {
    return Usage(err, absl::StrCat("unexpected argument \"",
                                   pos[sub->positional], "\""));
  }
  if (sub->positional == 1 && pos[0].empty()) {
    return Usage(err, "GROUP is empty");
  }
  const bool long_wait = sub->name == "prefetch" && flags->Has("wait");
  absl::StatusOr<double> seconds =
      flags->GetDouble("timeout", long_wait ? 3600 : 30, 0.001, 1e7);
  if (!seconds.ok()) return Usage(err, std::string(seconds.status().message()));
  absl::StatusOr<std::vector<std::string>> dirs = IncludeDirs(*flags);
  if (!dirs.ok()) return Usage(err, std::string(dirs.status().message()));

  const absl::Duration timeout = absl::Seconds(*seconds);
  std::string target;
  absl::StatusOr<int> code = [&]() -> absl::StatusOr<int> {
    TPJIT_ASSIGN_OR_RETURN(auto stub, Connect(*flags, timeout, &target));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    if (sub->name == "ls") return Ls(*stub, ctx, target, *flags, out);
    if (sub->name == "show") {
      return Show(*stub, ctx, target, *flags, pos[0], out);
    }
    return Prefetch(*stub, ctx, target, *flags, pos[0], *dirs, out, err);
  }();
  if (!code.ok()) {
    err << kPrefix << code.status().message() << "\n";
    return code.status().code() == absl::StatusCode::kUnavailable
               ? 1
               : ExitCodeFor(code.status());
  }
  return *code;
}

}  // namespace tpjit::cli
