#include "src/plan/kernel_spec.h"

#include "absl/strings/str_format.h"

namespace tpjit {

std::string ToString(const KernelSpec& spec) {
  return absl::StrFormat("%s n=%d k=%d g=%d %s %s", Info(spec.family).id,
                         spec.n, spec.k, spec.groups, ToString(spec.config),
                         spec.arch);
}

}  // namespace tpjit
