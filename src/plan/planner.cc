#include "src/plan/planner.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/digest.h"
#include "src/common/status_macros.h"
#include "src/plan/m_list.h"
#include "src/plan/spec.h"

namespace tpjit {
namespace {

using tpjit::v1::MPolicy;
using tpjit::v1::Shape;
using tpjit::v1::WarmupSpec;

using KernelOrder = std::tuple<int, int, int, int, KernelConfig>;

KernelOrder OrderOf(const KernelSpec& s) {
  return {static_cast<int>(s.family), s.n, s.k, s.groups, s.config};
}

int64_t Align(int64_t m, int alignment) {
  return (m + alignment - 1) / alignment * alignment;
}

KernelSpec SpecFor(const WarmupSpec& spec, const Shape& shape, int64_t m) {
  const FamilyInfo& info = Info(*FamilyFromId(shape.family()));
  Problem p;
  p.m = Align(m, MAlignment(info.family));
  p.n = shape.n();
  p.k = shape.k();
  p.groups = info.group == GroupKind::kNone ? 1 : shape.num_groups();
  p.num_sms = spec.target().num_sms();
  p.arch = spec.target().arch();
  KernelSpec ks;
  ks.family = info.family;
  ks.n = p.n;
  ks.k = p.k;
  ks.groups = p.groups;
  ks.config = ChooseConfig(info, p);
  ks.arch = p.arch;
  return ks;
}

// Ranges over `values` (sorted) with their kernel orders. `tile` makes the
// ranges cover every integer from 1 to the last value.
struct RawRange {
  int64_t lo, hi;
  KernelOrder order;
};

std::string EncodePlan(const Plan& plan) {
  CanonicalEncoder enc;
  enc.Add("plan", int64_t{1})
      .Add("arch", plan.arch)
      .Add("num_sms", plan.num_sms)
      .Add("policy", plan.policy)
      .Add("m_max", plan.m_max);
  for (const PlannedKernel& k : plan.kernels)
    enc.Add("kernel", ToString(k.spec));
  for (const ShapePlan& s : plan.shapes) {
    enc.Add("shape", absl::StrCat(s.shape.family(), "/", s.shape.n(), "/",
                                  s.shape.k(), "/", s.shape.num_groups()));
    for (const MRange& r : s.ranges) {
      enc.Add("range", absl::StrCat(r.lo, "-", r.hi, ":", r.kernel));
    }
  }
  return enc.Sha256();
}

}  // namespace

absl::StatusOr<int> Plan::Lookup(int shape, int64_t m) const {
  if (shape < 0 || shape >= static_cast<int>(shapes.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("shape index ", shape, " is outside 0..",
                     static_cast<int>(shapes.size()) - 1));
  }
  const auto& ranges = shapes[shape].ranges;
  m = Align(m, MAlignment(*FamilyFromId(shapes[shape].shape.family())));
  auto it =
      std::upper_bound(ranges.begin(), ranges.end(), m,
                       [](int64_t v, const MRange& r) { return v < r.lo; });
  if (it == ranges.begin() || std::prev(it)->hi < m) {
    return absl::NotFoundError(absl::StrCat("M=", m, " of shape ", shape,
                                            " is not covered by the plan"));
  }
  return std::prev(it)->kernel;
}

absl::StatusOr<Plan> PlanWarmup(const WarmupSpec& spec) {
  return PlanWarmup(spec, nullptr);
}

absl::StatusOr<Plan> PlanWarmup(const WarmupSpec& spec,
                                const std::function<bool()>& cancelled) {
  TPJIT_RETURN_IF_ERROR(ValidateSpec(spec));
  return PlanValidSpec(spec, cancelled);
}

absl::StatusOr<Plan> PlanValidSpec(const WarmupSpec& spec,
                                   const std::function<bool()>& cancelled) {
  TPJIT_ASSIGN_OR_RETURN(std::vector<int64_t> all_values,
                         PolicyMValues(spec.m_policy()));
  const bool full = spec.m_policy().kind() == MPolicy::FULL;
  std::vector<std::vector<RawRange>> raw(spec.shapes_size());
  std::map<KernelOrder, KernelSpec> distinct;
  std::map<KernelOrder, int64_t> served;
  Plan plan;
  for (int i = 0; i < spec.shapes_size(); ++i) {
    if (cancelled && cancelled()) {
      return absl::CancelledError(
          "warmup: the client went away while planning");
    }
    const Shape& shape = spec.shapes(i);
    const bool contig =
        Info(*FamilyFromId(shape.family())).group == GroupKind::kContig;
    const std::vector<int64_t> values =
        contig ? KeepMultiplesOf128(all_values) : all_values;
    ShapePlan sp;
    sp.shape = shape;
    sp.m_values = static_cast<int64_t>(values.size());
    plan.shapes.push_back(sp);
    int64_t prev_hi = 0;
    for (int64_t m : values) {
      KernelSpec ks = SpecFor(spec, shape, m);
      KernelOrder order = OrderOf(ks);
      distinct.emplace(order, ks);
      ++served[order];
      auto& rs = raw[i];
      if (!rs.empty() && rs.back().order == order) {
        rs.back().hi = m;
      } else {
        rs.push_back({full ? prev_hi + 1 : m, m, order});
      }
      prev_hi = m;
    }
  }
  std::map<KernelOrder, int> index;
  for (const auto& [order, ks] : distinct) {
    index[order] = static_cast<int>(plan.kernels.size());
    PlannedKernel pk;
    pk.spec = ks;
    pk.est_compile_seconds = EstimateCompileSeconds(Info(ks.family), ks.config);
    pk.m_values = served[order];
    plan.kernels.push_back(pk);
  }
  for (int i = 0; i < spec.shapes_size(); ++i) {
    for (const RawRange& r : raw[i]) {
      plan.shapes[i].ranges.push_back({r.lo, r.hi, index[r.order]});
    }
  }
  plan.name = spec.name();
  plan.arch = spec.target().arch();
  plan.num_sms = spec.target().num_sms();
  plan.policy = spec.m_policy().kind();
  plan.m_max = PolicyMMax(spec.m_policy());
  plan.digest = EncodePlan(plan);
  return plan;
}

double FullCoverage(const Plan& plan, const WarmupSpec& spec) {
  MPolicy full_policy = spec.m_policy();
  full_policy.set_kind(MPolicy::FULL);
  full_policy.clear_m_values();
  const int64_t m_max = PolicyMMax(full_policy);
  std::set<KernelOrder> have;
  for (const PlannedKernel& k : plan.kernels) have.insert(OrderOf(k.spec));
  int64_t covered = 0, total = 0;
  for (const Shape& shape : spec.shapes()) {
    for (int64_t m = 1; m <= m_max; ++m, ++total) {
      if (have.count(OrderOf(SpecFor(spec, shape, m)))) ++covered;
    }
  }
  return total == 0 ? 0.0 : static_cast<double>(covered) / total;
}

}  // namespace tpjit
