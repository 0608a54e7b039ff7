// The planner: a warm-up spec -> the distinct kernels it needs and, per shape,
// which kernel serves which M. Pure and deterministic: the same spec gives the
// same plan and digest on any machine. Thread-safe (no shared state).
#ifndef TPJIT_SRC_PLAN_PLANNER_H_
#define TPJIT_SRC_PLAN_PLANNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "src/plan/kernel_spec.h"
#include "tpjit/v1/spec.pb.h"

namespace tpjit {

// M values lo..hi (inclusive) run kernel `kernel` (an index into
// Plan::kernels).
struct MRange {
  int64_t lo = 0;
  int64_t hi = 0;
  int kernel = 0;
  friend bool operator==(const MRange&, const MRange&) = default;
};

struct PlannedKernel {
  KernelSpec spec;
  double est_compile_seconds = 0;
  int64_t m_values = 0;  // policy M values (over all shapes) it serves
};

struct ShapePlan {
  tpjit::v1::Shape shape;
  int64_t m_values = 0;  // values of the policy this shape is warmed for
  // Sorted, disjoint. FULL: they tile 1..m_max exactly. FAST / EXPLICIT: they
  // cover the policy's values (a range may span unlisted M in between only
  // where its ends are listed and every listed value inside maps to it).
  std::vector<MRange> ranges;
};

struct Plan {
  std::string name;
  std::string arch;
  int num_sms = 0;
  tpjit::v1::MPolicy::Kind policy = tpjit::v1::MPolicy::FULL;
  int64_t m_max = 0;
  std::vector<PlannedKernel> kernels;  // canonical order (family, n, k, ...)
  std::vector<ShapePlan> shapes;       // spec order
  std::string digest;                  // SHA-256 of the canonical plan

  // The kernel (index into `kernels`) for `m` of shape `shape`, or NOT_FOUND
  // when no range covers it. Contig shapes round m up to a multiple of 128.
  absl::StatusOr<int> Lookup(int shape, int64_t m) const;
};

// REQUIRES: ValidateSpec(spec).ok() (checked; an invalid spec is an error).
absl::StatusOr<Plan> PlanWarmup(const tpjit::v1::WarmupSpec& spec);
// As above, polling `cancelled` (may be empty) before each shape: once it
// returns true, planning stops with CANCELLED.
absl::StatusOr<Plan> PlanWarmup(const tpjit::v1::WarmupSpec& spec,
                                const std::function<bool()>& cancelled);
// As above without checking the spec again.
// REQUIRES: ValidateSpec(spec).ok(); the daemon checks a request once, at
// its edge (Daemon::Warmup), and plans with this.
absl::StatusOr<Plan> PlanValidSpec(const tpjit::v1::WarmupSpec& spec,
                                   const std::function<bool()>& cancelled);

// Share of M in 1..m_max, over all shapes, whose FULL-policy kernel is among
// `plan`'s kernels: 1.0 for a FULL plan; less for a sampled one that misses
// configurations.
double FullCoverage(const Plan& plan, const tpjit::v1::WarmupSpec& spec);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_PLANNER_H_
