#include "src/compile/kernel_key.h"

#include "src/common/digest.h"
#include "src/compile/kernel_source.h"

namespace tpjit {

std::string KernelKey(const KernelSpec& spec, const Toolchain& toolchain) {
  return KernelKey(spec, FamilySourceDigest(spec.family), toolchain);
}

std::string KernelKey(const KernelSpec& spec, absl::string_view family_digest,
                      const Toolchain& toolchain) {
  const KernelConfig& c = spec.config;
  CanonicalEncoder enc;
  enc.Add("key_version", int64_t{1})
      .Add("family", Info(spec.family).id)
      .Add("family_digest", family_digest)
      .Add("n", spec.n)
      .Add("k", spec.k)
      .Add("groups", spec.groups)
      .Add("block_m", c.block_m)
      .Add("block_n", c.block_n)
      .Add("block_k", c.block_k)
      .Add("stages", c.stages)
      .Add("warps_m", c.warps_m)
      .Add("warps_n", c.warps_n)
      .Add("arch", spec.arch)
      .Add("nvrtc_version", toolchain.nvrtc_version)
      .Add("options", static_cast<int64_t>(toolchain.options.size()));
  for (const std::string& option : toolchain.options) enc.Add("option", option);
  enc.Add("salt", toolchain.salt);
  return enc.Sha256();
}

}  // namespace tpjit
