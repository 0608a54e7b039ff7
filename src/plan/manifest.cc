#include "src/plan/manifest.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "src/common/digest.h"
#include "src/plan/family.h"

namespace tpjit {

tpjit::v1::ManifestKernel ToManifestKernel(const KernelSpec& spec,
                                           const KernelBuild& build) {
  tpjit::v1::ManifestKernel k;
  k.set_key(build.key);
  k.set_family(std::string(Info(spec.family).id));
  k.set_n(spec.n);
  k.set_k(spec.k);
  k.set_groups(spec.groups);
  auto* c = k.mutable_config();
  c->set_block_m(spec.config.block_m);
  c->set_block_n(spec.config.block_n);
  c->set_block_k(spec.config.block_k);
  c->set_stages(spec.config.stages);
  c->set_warps_m(spec.config.warps_m);
  c->set_warps_n(spec.config.warps_n);
  k.set_arch(spec.arch);
  k.set_lowered_name(build.lowered_name);
  k.set_cubin_bytes(static_cast<int64_t>(build.cubin.size()));
  k.set_cubin_sha256(Sha256Hex(build.cubin));
  k.set_threads(spec.config.threads());
  k.set_dynamic_smem_bytes(SharedMemoryBytes(Info(spec.family), spec.config));
  k.set_load_checked(build.load_checked);
  if (build.attributes) {
    k.set_registers(build.attributes->registers());
    k.set_local_bytes(build.attributes->local_bytes());
    k.set_static_smem_bytes(build.attributes->static_smem_bytes());
  }
  return k;
}

absl::StatusOr<KernelSpec> FromManifestKernel(
    const tpjit::v1::ManifestKernel& k) {
  absl::StatusOr<Family> family = FamilyFromId(k.family());
  if (!family.ok()) return family.status();
  KernelSpec s;
  s.family = *family;
  s.n = k.n();
  s.k = k.k();
  s.groups = k.groups();
  s.config = {k.config().block_m(), k.config().block_n(), k.config().block_k(),
              k.config().stages(),  k.config().warps_m(), k.config().warps_n()};
  s.arch = k.arch();
  return s;
}

tpjit::v1::Manifest BuildManifest(const Plan& plan,
                                  const std::vector<KernelBuild>& builds) {
  tpjit::v1::Manifest m;
  m.set_plan_digest(plan.digest);
  m.set_arch(plan.arch);
  m.set_m_max(plan.m_max);
  for (size_t i = 0; i < plan.kernels.size(); ++i) {
    *m.add_kernels() = ToManifestKernel(plan.kernels[i].spec, builds[i]);
  }
  for (const ShapePlan& sp : plan.shapes) {
    auto* shape = m.add_shapes();
    *shape->mutable_shape() = sp.shape;
    absl::StatusOr<Family> family = FamilyFromId(sp.shape.family());
    shape->set_m_alignment(family.ok() ? MAlignment(*family) : 1);
    for (const MRange& r : sp.ranges) {
      auto* range = shape->add_ranges();
      range->set_lo(r.lo);
      range->set_hi(r.hi);
      range->set_kernel(r.kernel);
    }
  }
  m.set_digest(ManifestDigest(m));
  return m;
}

std::string Deterministic(const google::protobuf::Message& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

std::string ManifestDigest(const tpjit::v1::Manifest& manifest) {
  tpjit::v1::Manifest copy = manifest;
  copy.clear_digest();
  return Sha256Hex(Deterministic(copy));
}

absl::StatusOr<int> LookupKernel(const tpjit::v1::Manifest& manifest,
                                 int shape_index, int64_t m) {
  if (shape_index < 0 || shape_index >= manifest.shapes_size()) {
    return absl::InvalidArgumentError(absl::StrCat("shape index ", shape_index,
                                                   " is outside 0..",
                                                   manifest.shapes_size() - 1));
  }
  if (m < 1 || m > manifest.m_max()) {
    return absl::OutOfRangeError(
        absl::StrCat("M=", m, " is outside 1..", manifest.m_max()));
  }
  const tpjit::v1::ManifestShape& shape = manifest.shapes(shape_index);
  const int64_t align = std::max<int64_t>(1, shape.m_alignment());
  m = (m + align - 1) / align * align;
  const auto& ranges = shape.ranges();
  // The first range whose lo is above m; the one before it may cover m.
  auto it = std::upper_bound(
      ranges.begin(), ranges.end(), m,
      [](int64_t v, const tpjit::v1::MRangeProto& r) { return v < r.lo(); });
  if (it == ranges.begin() || std::prev(it)->hi() < m) {
    return absl::NotFoundError(absl::StrCat(
        "M=", m, " of shape ", shape_index, " (", shape.shape().family(),
        " n=", shape.shape().n(), " k=", shape.shape().k(),
        ") is not covered by manifest ", manifest.digest()));
  }
  const int kernel = std::prev(it)->kernel();
  if (kernel < 0 || kernel >= manifest.kernels_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest range names kernel ", kernel, " of ",
                     manifest.kernels_size()));
  }
  return kernel;
}

}  // namespace tpjit
