// The manifest (proto tpjit.v1.Manifest): what every rank of a warm-up
// loads, and the one place that converts between the plan's KernelSpec and
// the manifest's fields, both ways, and looks a kernel up by (shape, M).
// The daemon builds manifests here (daemon/job.cc); the C++ client
// (client/include/tpjit/client.h: LookupKernel) and, by the same rule, the
// Python client (client/python/tpjit/client.py: lookup, tested against this
// one on the same manifests) look kernels up. Each shape carries its M
// alignment, so no client guesses it from a family name. Pure and
// thread-safe.
#ifndef TPJIT_SRC_PLAN_MANIFEST_H_
#define TPJIT_SRC_PLAN_MANIFEST_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "src/plan/kernel_spec.h"
#include "src/plan/planner.h"
#include "tpjit/v1/tpjit.pb.h"
#include "tpjit/v1/worker.pb.h"

namespace tpjit {

// What compiling one planned kernel produced, as the manifest records it.
struct KernelBuild {
  std::string key;  // cache key (hex SHA-256)
  std::string cubin;
  std::string lowered_name;  // entry symbol; empty when unknown
  bool load_checked = false;
  // Registers, local and static shared bytes of the entry (from the load
  // check, or the ELF); absent when unknown.
  std::optional<tpjit::v1::KernelAttributes> attributes;
};

// KernelSpec + build -> manifest kernel (every field but the build's are
// derived from the spec: family id, n, k, groups, config, arch, threads,
// dynamic shared memory).
tpjit::v1::ManifestKernel ToManifestKernel(const KernelSpec& spec,
                                           const KernelBuild& build);
// Manifest kernel -> KernelSpec (for launching it). INVALID_ARGUMENT for an
// unknown family id.
absl::StatusOr<KernelSpec> FromManifestKernel(
    const tpjit::v1::ManifestKernel& kernel);

// The manifest of `plan`, whose kernel i was built as builds[i], with its
// digest. REQUIRES: builds.size() == plan.kernels.size().
tpjit::v1::Manifest BuildManifest(const Plan& plan,
                                  const std::vector<KernelBuild>& builds);

// Deterministic serialization (stable bytes for digests).
std::string Deterministic(const google::protobuf::Message& message);
// SHA-256 over the deterministic serialization with `digest` cleared.
std::string ManifestDigest(const tpjit::v1::Manifest& manifest);

// The index into manifest.kernels of the kernel serving `m` for shape
// `shape_index` (M rounded up to the shape's m_alignment first).
// INVALID_ARGUMENT for a bad shape index or a range naming no kernel,
// OUT_OF_RANGE for m outside 1..m_max, NOT_FOUND when no range covers it (a
// sampled policy). Also declared in client/include/tpjit/client.h.
absl::StatusOr<int> LookupKernel(const tpjit::v1::Manifest& manifest,
                                 int shape_index, int64_t m);

}  // namespace tpjit

#endif  // TPJIT_SRC_PLAN_MANIFEST_H_
