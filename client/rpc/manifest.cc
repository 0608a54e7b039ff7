// Manifest helpers of client/include/tpjit/client.h: Lookup and validation.
#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/include/tpjit/client.h"
#include "src/plan/family.h"

namespace tpjit {
namespace {

bool IsContig(const std::string& family_id) {
  auto family = FamilyFromId(family_id);
  if (family.ok()) return Info(*family).group == GroupKind::kContig;
  // A family this build does not know: go by the naming convention.
  return absl::StrContains(family_id, "_contig");
}

}  // namespace

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
  if (IsContig(shape.shape().family())) m = (m + 127) / 128 * 128;
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

absl::Status ValidateManifest(const tpjit::v1::Manifest& manifest) {
  for (int s = 0; s < manifest.shapes_size(); ++s) {
    int64_t last_hi = 0;
    for (const auto& r : manifest.shapes(s).ranges()) {
      if (r.lo() > r.hi() || r.lo() <= last_hi) {
        return absl::InvalidArgumentError(
            absl::StrCat("manifest shape ", s, ": range ", r.lo(), "..", r.hi(),
                         " is empty or overlaps the one before"));
      }
      if (r.kernel() < 0 || r.kernel() >= manifest.kernels_size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "manifest shape ", s, ": range ", r.lo(), "..", r.hi(),
            " names kernel ", r.kernel(), " of ", manifest.kernels_size()));
      }
      last_hi = r.hi();
    }
  }
  return absl::OkStatus();
}

}  // namespace tpjit
