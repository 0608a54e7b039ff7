// Manifest validation of client/include/tpjit/client.h (LookupKernel is
// src/plan/manifest.cc, one implementation for the daemon and clients).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "client/include/tpjit/client.h"

namespace tpjit {

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
