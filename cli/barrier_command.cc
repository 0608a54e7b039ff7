#include "cli/barrier_command.h"

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/rpc/barrier_client.h"
#include "src/barrier/barrier.h"
#include "src/common/clock.h"
#include "src/common/flags.h"

namespace tpjit {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;
constexpr int kExitTimeout = 3;

const std::vector<FlagDef>& BarrierFlags() {
  static const auto* defs = new std::vector<FlagDef>{
      {"group", true, "the group (job) to meet in (required)"},
      {"rank", true, "this rank, 0..world-1 (required)"},
      {"world", true, "number of ranks in the group (required)"},
      {"timeout", true, "seconds to wait for the others (default 600)",
       kBarrierTimeoutEnv},
      {"on-timeout", true, "fail (default, exit 3) or continue (exit 0)",
       kBarrierOnTimeoutEnv},
      {"epoch", true, "explicit epoch (default: the daemon counts calls)"},
      {"socket", true, "tpjitd's Unix socket", "TPJIT_SOCKET"},
      {"help", false, "show this help"},
  };
  return *defs;
}

std::string Usage() {
  return absl::StrCat(
      "usage: tpjit barrier --group G --rank R --world W [--timeout SECONDS] "
      "[--socket PATH]\n",
      FlagHelp(BarrierFlags()));
}

struct Invocation {
  DaemonBarrierOptions barrier;
  BarrierOptions policy;
  std::string socket;
};

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  if (!args.empty() && args.front() == "barrier") args.erase(args.begin());
  auto flags = ParseFlags(BarrierFlags(), args);
  if (!flags.ok()) return flags.status();
  if (!flags->positional().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unexpected argument \"", flags->positional().front(), "\""));
  }
  for (const char* required : {"group", "rank", "world"}) {
    if (!flags->Get(required)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", required, " is required"));
    }
  }
  Invocation inv;
  inv.barrier.group = *flags->Get("group");
  auto world = flags->GetInt("world", 1, 1, 1 << 16);
  if (!world.ok()) return world.status();
  auto rank = flags->GetInt("rank", 0, 0, 1 << 16);
  if (!rank.ok()) return rank.status();
  if (*rank >= *world) {
    return absl::InvalidArgumentError(
        absl::StrCat("--rank ", *rank, " is out of range for --world ", *world,
                     " (want 0..", *world - 1, ")"));
  }
  inv.barrier.world = *world;
  inv.barrier.rank = *rank;
  if (flags->Get("epoch")) {
    auto epoch = flags->GetInt("epoch", 0, 0, INT64_MAX);
    if (!epoch.ok()) return epoch.status();
    inv.barrier.epoch = *epoch;
  }
  auto seconds = flags->GetDouble(
      "timeout", absl::ToDoubleSeconds(kDefaultBarrierTimeout), 0, 1e7);
  if (!seconds.ok()) return seconds.status();
  inv.policy.timeout = absl::Seconds(*seconds);
  if (auto policy = flags->Get("on-timeout")) {
    auto parsed = ParseTimeoutPolicy(*policy, "--on-timeout");
    if (!parsed.ok()) return parsed.status();
    inv.policy.on_timeout = *parsed;
  }
  inv.socket =
      flags->Get("socket").value_or(DefaultBarrierSocket(ProcessEnv()));
  return inv;
}

}  // namespace

int RunBarrierCommand(const std::vector<std::string>& args, std::ostream& out,
                      std::ostream& err) {
  for (const std::string& arg : args) {
    if (arg == "--help" || arg == "-h") {
      out << Usage();
      return kExitOk;
    }
  }
  auto inv = Parse(args);
  if (!inv.ok()) {
    err << "tpjit barrier: " << inv.status().message() << "\n" << Usage();
    return kExitUsage;
  }
  auto barrier = DaemonBarrier::Connect(inv->socket, inv->barrier);
  const absl::Time start = Clock::Real()->MonotonicNow();
  const BarrierResult result = ArriveWithPolicy(*barrier, inv->policy);
  const double waited =
      absl::ToDoubleSeconds(Clock::Real()->MonotonicNow() - start);
  if (result.status.ok()) {
    out << absl::StrFormat(
        "barrier group '%s' epoch %d: all %d ranks arrived (waited %.3fs)\n",
        inv->barrier.group, barrier->last_epoch(), inv->barrier.world, waited);
    return kExitOk;
  }
  if (result.proceed) {
    err << "tpjit barrier: warning: " << result.warning << "\n";
    return kExitOk;
  }
  err << absl::StrFormat("tpjit barrier: %s after %.3fs: %s\n",
                         result.timed_out ? "timed out" : "failed", waited,
                         result.status.message());
  return result.timed_out ? kExitTimeout : kExitFailure;
}

}  // namespace tpjit
