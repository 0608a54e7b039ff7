#include "cli/plan_command.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_format.h"
#include "cli/spec_file.h"
#include "nlohmann/json.hpp"
#include "src/common/flags.h"
#include "src/common/status_macros.h"
#include "src/plan/planner.h"
#include "src/plan/sharder.h"

namespace tpjit::cli {
namespace {

using tpjit::v1::MPolicy;

const std::vector<FlagDef>& Flags() {
  static const auto* defs = new std::vector<FlagDef>{
      {"spec", true, "warm-up spec (JSON)"},
      {"workers", true, "worker slots to shard over (default 8)"},
      {"policy", true, "override the spec's M policy: FULL or FAST"},
      {"json", false, "print one JSON object"},
      {"help", false, "show this help"},
  };
  return *defs;
}

struct Report {
  Plan plan;
  Shards shards;
  double coverage = 0;
  int64_t m_values = 0;
};

nlohmann::json ToJson(const Report& r) {
  nlohmann::json j;
  const Plan& plan = r.plan;
  j["spec"] = plan.name;
  j["arch"] = plan.arch;
  j["policy"] = MPolicy::Kind_Name(plan.policy);
  j["m_max"] = plan.m_max;
  j["plan_digest"] = plan.digest;
  j["m_values"] = r.m_values;
  j["distinct_kernels"] = plan.kernels.size();
  j["coverage"] = r.coverage;
  j["est_compile_seconds"] = 0.0;
  for (const PlannedKernel& k : plan.kernels) {
    j["est_compile_seconds"] =
        j["est_compile_seconds"].get<double>() + k.est_compile_seconds;
    j["kernels"].push_back({{"kernel", ToString(k.spec)},
                            {"family", Info(k.spec.family).id},
                            {"config", ToString(k.spec.config)},
                            {"m_values", k.m_values},
                            {"est_compile_seconds", k.est_compile_seconds}});
  }
  for (const ShapePlan& s : plan.shapes) {
    nlohmann::json js = {{"family", s.shape.family()},
                         {"n", s.shape.n()},
                         {"k", s.shape.k()},
                         {"num_groups", s.shape.num_groups()},
                         {"m_values", s.m_values}};
    std::set<int> used;
    for (const MRange& m : s.ranges) {
      used.insert(m.kernel);
      js["ranges"].push_back(
          {{"lo", m.lo}, {"hi", m.hi}, {"kernel", m.kernel}});
    }
    js["distinct_kernels"] = used.size();
    j["shapes"].push_back(js);
  }
  for (size_t w = 0; w < r.shards.members.size(); ++w) {
    j["shards"].push_back({{"slot", w},
                           {"kernels", r.shards.members[w]},
                           {"est_seconds", r.shards.cost[w]}});
  }
  return j;
}

void PrintText(const Report& r, std::ostream& out) {
  const Plan& plan = r.plan;
  out << absl::StrFormat("spec %s: %s, %d SMs, policy %s, m_max %d\n",
                         plan.name, plan.arch, plan.num_sms,
                         MPolicy::Kind_Name(plan.policy), plan.m_max);
  out << "plan digest " << plan.digest << "\n";
  for (size_t i = 0; i < plan.shapes.size(); ++i) {
    const ShapePlan& s = plan.shapes[i];
    std::set<int> used;
    for (const MRange& m : s.ranges) used.insert(m.kernel);
    out << absl::StrFormat(
        "shape %d %s n=%d k=%d g=%d: %d M values -> %d "
        "kernels\n",
        i, s.shape.family(), s.shape.n(), s.shape.k(), s.shape.num_groups(),
        s.m_values, used.size());
    for (const MRange& m : s.ranges) {
      out << absl::StrFormat("    M %6d..%-6d -> #%-3d %s\n", m.lo, m.hi,
                             m.kernel,
                             ToString(plan.kernels[m.kernel].spec.config));
    }
  }
  out << absl::StrFormat(
      "distinct kernels: %d for %d M values; coverage %.2f%% of M in "
      "1..m_max(FULL)\n",
      plan.kernels.size(), r.m_values, 100 * r.coverage);
  for (size_t w = 0; w < r.shards.members.size(); ++w) {
    out << absl::StrFormat("slot %d: %d kernels, est %.2f s\n", w,
                           r.shards.members[w].size(), r.shards.cost[w]);
  }
}

absl::StatusOr<Report> BuildReport(const ParsedFlags& flags) {
  auto path = flags.Get("spec");
  if (!path) return absl::InvalidArgumentError("--spec is required");
  TPJIT_ASSIGN_OR_RETURN(auto spec, ReadSpecFile(*path));
  if (auto policy = flags.Get("policy")) {
    MPolicy::Kind kind;
    if (!MPolicy::Kind_Parse(*policy, &kind) || kind == MPolicy::EXPLICIT ||
        kind == MPolicy::KIND_UNSPECIFIED) {
      return absl::InvalidArgumentError(
          absl::StrCat("--policy: \"", *policy, "\" is not FULL or FAST"));
    }
    spec.mutable_m_policy()->set_kind(kind);
  }
  TPJIT_ASSIGN_OR_RETURN(int64_t workers, flags.GetInt("workers", 8, 1, 4096));
  Report r;
  TPJIT_ASSIGN_OR_RETURN(r.plan, PlanWarmup(spec));
  std::vector<double> costs;
  for (const PlannedKernel& k : r.plan.kernels) {
    costs.push_back(k.est_compile_seconds);
  }
  TPJIT_ASSIGN_OR_RETURN(r.shards,
                         ShardByCost(costs, static_cast<int>(workers)));
  r.coverage = FullCoverage(r.plan, spec);
  for (const ShapePlan& s : r.plan.shapes) r.m_values += s.m_values;
  return r;
}

}  // namespace

int RunPlanCommand(const std::vector<std::string>& args, std::ostream& out,
                   std::ostream& err) {
  auto flags = ParseFlags(Flags(), args);
  if (flags.ok() && flags->Has("help")) {
    out << "usage: tpjit plan --spec FILE [--workers W] [--json]\n"
        << FlagHelp(Flags());
    return 0;
  }
  absl::StatusOr<Report> report =
      flags.ok() ? BuildReport(*flags) : absl::StatusOr<Report>(flags.status());
  if (!report.ok()) {
    err << "tpjit plan: " << report.status().message() << "\n";
    return ExitCodeFor(report.status());
  }
  if (flags->Has("json")) {
    out << ToJson(*report).dump() << "\n";
  } else {
    PrintText(*report, out);
  }
  return 0;
}

}  // namespace tpjit::cli
