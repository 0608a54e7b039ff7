#include "daemon/cubin_check.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "src/compile/cubin.h"

namespace tpjit {

int ArchSm(absl::string_view arch) {
  if (!absl::ConsumePrefix(&arch, "sm_")) return 0;
  size_t digits = 0;
  while (digits < arch.size() && absl::ascii_isdigit(arch[digits])) ++digits;
  int sm = 0;
  return absl::SimpleAtoi(arch.substr(0, digits), &sm) ? sm : 0;
}

absl::Status CheckCachedCubin(
    absl::string_view cubin, absl::string_view arch,
    const std::vector<std::string>& symbols,
    std::vector<tpjit::v1::KernelAttributes>* attributes) {
  if (absl::Status s = ValidateCubin(cubin); !s.ok()) return s;
  const int want_sm = ArchSm(arch);
  attributes->clear();
  for (const std::string& symbol : symbols) {
    absl::StatusOr<CubinKernelInfo> info = InspectCubin(cubin, symbol);
    if (!info.ok()) return info.status();
    if (want_sm != 0 && info->sm != 0 && info->sm != want_sm) {
      return absl::InvalidArgumentError(
          absl::StrCat("cubin is for sm_", info->sm, ", the task for ", arch));
    }
    tpjit::v1::KernelAttributes a;
    a.set_symbol(symbol);
    a.set_registers(std::max(0, info->registers));
    a.set_local_bytes(std::max(0, info->frame_bytes));
    a.set_static_smem_bytes(static_cast<int32_t>(info->static_shared));
    attributes->push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status CheckCachedPtx(absl::string_view ptx) {
  if (ptx.find('\0') != absl::string_view::npos ||
      ptx.find(".version") == absl::string_view::npos ||
      ptx.find(".target") == absl::string_view::npos) {
    return absl::InvalidArgumentError("cached PTX is not PTX text");
  }
  return absl::OkStatus();
}

}  // namespace tpjit
